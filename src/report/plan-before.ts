import type { StepEnv } from '../engine/step-contract.js';
import type { Topology } from '../redis/topology.js';
import type { SlotRange } from '../redis/slots.js';
import { parseInfo } from '../redis/cluster-nodes.js';

/**
 * The clusters as the plan found them, for the reviewer: what the plan's own
 * structure has (ids, roles, slots) plus what changes all the time and the
 * plan leaves out (keys, memory, replication lag). Read once, while planning.
 */
export interface NodeBefore {
  id: string;
  address: string;
  role: 'master' | 'replica';
  masterId?: string;
  slots: SlotRange[];
  reachable: boolean;
  keys?: number;
  usedMemory?: number;
  /** aof_current_size when the node has appendonly yes (INFO persistence). */
  aofBytes?: number;
  /** A replica: master_link_status. */
  linkUp?: boolean;
  /** A replica: its master's replication offset minus its own, in bytes. */
  lagBytes?: number;
  version?: string;
}

export interface ClusterBefore {
  cluster: string;
  takenAt: string;
  fingerprint: string;
  nodes: NodeBefore[];
}

/** Pure: the reviewer's view of a topology snapshot. */
export function beforeOf(t: Topology, aof: Record<string, number> = {}): ClusterBefore {
  const byId = new Map(t.nodes.map((n) => [n.id, n]));
  return {
    cluster: t.cluster,
    takenAt: t.takenAt,
    fingerprint: t.fingerprint,
    nodes: t.nodes.map((n): NodeBefore => {
      const master = n.masterId ? byId.get(n.masterId) : undefined;
      const lag =
        n.role === 'replica' && n.self && master?.self
          ? Math.max(0, master.self.replOffset - n.self.replOffset)
          : undefined;
      return {
        id: n.id,
        address: n.address,
        role: n.role,
        masterId: n.masterId,
        slots: n.slots,
        reachable: n.reachable,
        keys: n.self?.keys,
        usedMemory: n.self?.usedMemory,
        aofBytes: aof[n.address],
        linkUp: n.self?.masterLinkUp,
        lagBytes: lag,
        version: n.self?.version,
      };
    }),
  };
}

/**
 * The env a plan is made with, remembering the first topology it read of each
 * cluster: the very snapshot the plan was built from (later reads by checks
 * are passed through, not kept). Nothing else changes: it is still read-only.
 */
export function recordingTopologies<E extends StepEnv>(env: E): { env: E; seen: Map<string, Topology> } {
  const seen = new Map<string, Topology>();
  const wrapped: E = {
    ...env,
    topology: async (name: string) => {
      const t = await env.topology(name);
      if (!seen.has(name)) seen.set(name, t);
      return t;
    },
  };
  return { env: wrapped, seen };
}

/** aof_current_size of each reachable master with appendonly on (INFO persistence, a read); best effort. */
export async function aofSizes(env: StepEnv, t: Topology): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const pool = env.pool(t.cluster);
  for (const n of t.nodes) {
    if (n.role !== 'master' || !n.reachable || !n.self?.persistence.appendonly) continue;
    try {
      const info = parseInfo(await pool.node(n.address).text('INFO', 'persistence'));
      if (info.aof_current_size !== undefined) out[n.address] = Number(info.aof_current_size);
    } catch {
      // A size that cannot be read leaves used_memory as the stand-in, labelled as such.
    }
  }
  return out;
}
