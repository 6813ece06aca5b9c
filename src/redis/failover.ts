import { preconditionError, usageError } from '../errors.js';
import { parseClusterNodes, parseInfo, isMaster } from './cluster-nodes.js';
import type { ClusterPool } from './connect.js';
import { findNode, replicasOf, type Topology, type TopologyNode } from './topology.js';
import { parseAddress } from '../inventory/load.js';

export type FailoverMode = 'default' | 'force' | 'takeover';

export interface NodeRef {
  id: string;
  address: string;
}

/** Which replica is promoted and which master it replaces. */
export interface FailoverPair {
  candidate: NodeRef;
  master: NodeRef;
  mode: FailoverMode;
}

export function parseMode(raw: string | undefined): FailoverMode {
  const m = raw ?? 'default';
  if (m !== 'default' && m !== 'force' && m !== 'takeover') {
    throw usageError('E_PARAM', `mode=${m} is not a failover mode`, 'use mode=default, mode=force or mode=takeover');
  }
  return m;
}

/**
 * Resolve `node=HOST:PORT` against a topology (pure). A replica is promoted
 * itself; for a master, its best replica is chosen: reachable, link up,
 * highest replication offset (the one an automatic election would rank first).
 */
export function resolveFailoverPair(t: Topology, node: string | undefined, mode: FailoverMode): FailoverPair {
  if (!node)
    throw usageError(
      'E_PARAM',
      'the node parameter is missing',
      'pass --param node=HOST:PORT (a replica to promote, or a master)',
    );
  if (!parseAddress(node))
    throw usageError(
      'E_PARAM',
      `node=${node} is not HOST:PORT`,
      'pass --param node=HOST:PORT as CLUSTER NODES shows it',
    );
  const n = findNode(t, node);
  if (!n) {
    throw usageError(
      'E_NODE_UNKNOWN',
      `${node} is not a node of cluster ${t.cluster} (nodes: ${t.nodes.map((x) => x.address).join(', ')})`,
      'pass one of the listed addresses',
    );
  }
  if (n.role === 'replica') {
    const m = t.nodes.find((x) => x.id === n.masterId);
    if (!m)
      throw preconditionError(
        'E_NO_MASTER',
        `${node} replicates ${n.masterId ?? 'nothing'}, which is not in the cluster`,
        'check the cluster with `redis-runbook check`',
      );
    return { candidate: ref(n), master: ref(m), mode };
  }
  if (n.slots.length === 0) {
    throw preconditionError(
      'E_NO_SLOTS',
      `${node} is a master with no slots; there is nothing to fail over`,
      'pick a master that owns slots, or one of its replicas',
    );
  }
  const best = bestReplica(t, n);
  if (!best) {
    throw preconditionError(
      'E_NO_REPLICA',
      `master ${node} has no replica that could take over`,
      'add a replica first (CLUSTER REPLICATE), or move its slots away',
    );
  }
  return { candidate: ref(best), master: ref(n), mode };
}

export function bestReplica(t: Topology, master: TopologyNode): TopologyNode | undefined {
  const usable = replicasOf(t, master.id).filter((r) => r.reachable && !r.flags.some((f) => f.startsWith('fail')));
  usable.sort(
    (a, b) =>
      Number(b.self?.masterLinkUp ?? false) - Number(a.self?.masterLinkUp ?? false) ||
      (b.self?.replOffset ?? 0) - (a.self?.replOffset ?? 0) ||
      a.address.localeCompare(b.address),
  );
  return usable[0];
}

const ref = (n: TopologyNode): NodeRef => ({ id: n.id, address: n.address });

/** A node's replication state, from INFO replication. */
export async function replicationOf(pool: ClusterPool, address: string) {
  const info = parseInfo(await pool.node(address).text('INFO', 'replication'));
  return {
    role: info.role === 'master' ? ('master' as const) : ('replica' as const),
    masterHost: info.master_host,
    masterPort: info.master_port ? Number(info.master_port) : undefined,
    linkUp: info.master_link_status === 'up',
    offset: Number(info.role === 'master' ? info.master_repl_offset : info.slave_repl_offset) || 0,
    masterOffset: Number(info.master_repl_offset) || 0,
  };
}

/**
 * Does every reachable node agree that the candidate is a master owning the
 * old master's slots, and that the old master (if it answers at all) is its
 * replica? Returns the addresses that still disagree.
 */
export async function disagreeingNodes(pool: ClusterPool, addresses: string[], pair: FailoverPair): Promise<string[]> {
  const out: string[] = [];
  await Promise.all(
    addresses.map(async (a) => {
      try {
        const view = parseClusterNodes(await pool.node(a).text('CLUSTER', 'NODES'));
        const cand = view.find((l) => l.id === pair.candidate.id);
        const old = view.find((l) => l.id === pair.master.id);
        const candOk = !!cand && isMaster(cand) && cand.slots.length > 0;
        // A node may have forgotten the old master, or see it failed; both are fine.
        const oldOk =
          !old ||
          old.flags.includes('fail') ||
          (!isMaster(old) && old.masterId === pair.candidate.id) ||
          (isMaster(old) && old.slots.length === 0 && old.flags.includes('fail?'));
        if (!candOk || !oldOk) out.push(a);
      } catch {
        // Unreachable nodes cannot disagree; the caller decides whether they must answer.
      }
    }),
  );
  return out.sort();
}
