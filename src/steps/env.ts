import { ClusterPool, type Access } from '../redis/connect.js';
import { discoverTopology } from '../redis/topology.js';
import { consensusTimeoutMs, settleCluster, settleTimeoutMs, waitForConsensus } from '../redis/agreement.js';
import type { AuditSink } from '../redis/audit.js';
import type { Inventory } from '../inventory/types.js';
import { usageError } from '../errors.js';
import { registerSecrets } from '../inventory/secret.js';
import type { StepEnv } from './kind.js';
import { fileAccess, hostAccess } from './host-access.js';

export interface ClosableEnv extends StepEnv {
  close(): Promise<void>;
  secrets(): string[];
}

/**
 * The one way steps reach clusters: a pool per inventory cluster, all sharing
 * the access mode (read-only for `plan`) and the audit sink (the run journal).
 */
export function createStepEnv(inventory: Inventory, access: Access, audit?: AuditSink): ClosableEnv {
  // Known to the scrubber before anything runs, not only once a cluster is first contacted.
  registerSecrets(inventory.clusters);
  const pools = new Map<string, ClusterPool>();
  const pool = (name: string) => {
    let p = pools.get(name);
    if (!p) {
      const config = inventory.clusters[name];
      if (!config)
        throw usageError(
          'E_PARAM',
          `cluster \`${name}\` is not in the inventory ${inventory.file}`,
          `use one of: ${Object.keys(inventory.clusters).join(', ')}`,
        );
      p = new ClusterPool(config, { access, audit });
      pools.set(name, p);
    }
    return p;
  };
  return {
    inventory,
    pool,
    // A check decides on a view the nodes agree on: while a change is still spreading by
    // gossip it waits briefly for the reachable nodes to agree, then reads.
    topology: async (name) => {
      const p = pool(name);
      await consensus(p);
      return discoverTopology(p);
    },
    consensus: (name) => consensus(pool(name)),
    async settle(name, o) {
      const p = pool(name);
      const timeoutMs = settleTimeoutMs(await nodeTimeoutOf(p));
      const r = await settleCluster(p, p.config.seeds, { ...o, timeoutMs });
      p.recordSummary(`cluster ${name}`, 'AGREEMENT', [
        `${r.nodes} nodes agree, healthy`,
        `${r.polls} polls of CLUSTER NODES + CLUSTER INFO`,
        `${r.ms} ms`,
      ]);
      return r;
    },
    files: fileAccess(inventory, access, audit),
    host: (address) =>
      hostAccess(inventory, access, audit, address, () => [...pools.values()].flatMap((p) => p.secrets())),
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
    secrets: () => [...pools.values()].flatMap((p) => p.secrets()),
  };
}

// Clusters whose nodes did not agree within the last wait, and when: a cluster that stays split
// (a bus partition) is waited for once a minute, not once per check of every step.
const splitSince = new WeakMap<ClusterPool, number>();
const nodeTimeouts = new WeakMap<ClusterPool, number>();

/** Wait briefly for the reachable nodes to agree (see waitForConsensus), bounded by the node timeout. */
async function consensus(p: ClusterPool): Promise<boolean> {
  const split = splitSince.get(p);
  if (!nodeTimeouts.has(p)) nodeTimeouts.set(p, await nodeTimeoutOf(p));
  const timeoutMs = split !== undefined && Date.now() - split < 60_000 ? 0 : consensusTimeoutMs(nodeTimeouts.get(p)!);
  const agreed = await waitForConsensus(p, p.config.seeds, { timeoutMs });
  if (agreed) splitSince.delete(p);
  else if (split === undefined || timeoutMs > 0) splitSince.set(p, Date.now());
  return agreed;
}

/** cluster-node-timeout, from the first seed that answers (15000, Redis' default, when none does). */
async function nodeTimeoutOf(pool: ClusterPool): Promise<number> {
  for (const seed of pool.config.seeds) {
    try {
      const [[err, reply]] = (await pool.node(seed).pipeline([['CONFIG', 'GET', 'cluster-node-timeout']])) as [
        [Error | null, unknown],
      ];
      if (!err && Array.isArray(reply) && reply[1] !== undefined) return Number(String(reply[1])) || 15000;
    } catch {
      // the next seed
    }
  }
  return 15000;
}
