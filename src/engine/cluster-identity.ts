import { preconditionError, RunbookError, usageError } from '../errors.js';
import { parseInfo } from '../redis/cluster-nodes.js';
import type { Topology } from '../redis/topology.js';
import type { StepEnv } from './step-contract.js';
import type { ClusterNodes } from './store.js';
import { clustersOf, type Runbook } from './runbook.js';

/**
 * A cluster is known by what it is, not by what an inventory calls it: its
 * node ids, from the live topology (stable: kept in each node's nodes.conf).
 * A standalone server (a sync or comparison endpoint) has no node id; its
 * `run_id` names the running server instead.
 */
export async function nodesOf(
  env: StepEnv,
  name: string,
  known?: Topology,
): Promise<Array<{ id: string; address: string }>> {
  if (known) return known.nodes.map((n) => ({ id: n.id, address: n.address }));
  try {
    return (await env.topology(name)).nodes.map((n) => ({ id: n.id, address: n.address }));
  } catch (err) {
    if (!(err instanceof RunbookError && err.code === 'E_NOT_CLUSTER')) throw err;
  }
  const pool = env.pool(name);
  let lastError: unknown;
  for (const seed of pool.config.seeds) {
    try {
      const info = parseInfo(await pool.node(seed).text('INFO', 'server'));
      if (info.run_id) return [{ id: `standalone:${info.run_id}`, address: seed }];
    } catch (err) {
      if (err instanceof RunbookError && err.code === 'E_AUTH') throw err;
      lastError = err;
    }
  }
  throw preconditionError(
    'E_CLUSTER_UNREACHABLE',
    `no seed of ${name} answered (${(lastError as Error | undefined)?.message ?? 'no seeds'})`,
    `check clusters.${name}.seeds and that the nodes are running`,
  );
}

/** The nodes of every inventory cluster and endpoint a run of this runbook acts on. */
export async function clusterNodes(
  rb: Runbook,
  params: Record<string, string>,
  env: StepEnv,
  known: Record<string, Topology> = {},
): Promise<ClusterNodes> {
  const out: ClusterNodes = {};
  for (const name of new Set(clustersOf(rb, params, true))) out[name] = await nodesOf(env, name, known[name]);
  return out;
}

/**
 * A runbook with two clusters (a source and a target) must be given two
 * different clusters: the same nodes under two inventory names (or one name
 * twice) would have a migration overwrite or delete its own source, and a
 * comparison compare a cluster with itself. Refused at plan time, naming the
 * shared nodes.
 */
export function assertDistinct(rb: Runbook, params: Record<string, string>, nodes: ClusterNodes): void {
  const roles = Object.entries(rb.params)
    .filter(([, s]) => s.type === 'cluster' || s.type === 'endpoint')
    .map(([k]) => k)
    .filter((k) => params[k]);
  for (let i = 0; i < roles.length; i++) {
    for (let j = i + 1; j < roles.length; j++) {
      const a = roles[i]!;
      const b = roles[j]!;
      // One name given twice is bad input, known without asking any node.
      if (params[a] === params[b])
        throw usageError(
          'E_SAME_CLUSTER',
          `${a} and ${b} are both \`${params[a]}\`: a runbook with a ${a} and a ${b} needs two different clusters`,
          `pass --param ${b}=NAME of another cluster of the inventory`,
        );
      const bIds = new Set((nodes[params[b]!] ?? []).map((n) => n.id));
      const shared = (nodes[params[a]!] ?? []).filter((n) => bIds.has(n.id));
      if (!shared.length) continue;
      const same =
        params[a] === params[b] ? `both \`${params[a]}\`` : `\`${params[a]}\` and \`${params[b]}\` in the inventory`;
      throw preconditionError(
        'E_SAME_CLUSTER',
        `${a} and ${b} are the same cluster (${same}): they share ${shared.length} node(s): ${shared.map((n) => `${n.address} (${n.id.replace(/^standalone:/, '').slice(0, 8)})`).join(', ')}`,
        `give ${a} and ${b} two different clusters; check the seeds of each in the inventory`,
      );
    }
  }
}
