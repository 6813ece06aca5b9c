import { parseClusterNodes, parseInfo, isMaster, type ClusterNodeLine } from './cluster-nodes.js';
import type { ClusterPool } from './connect.js';

/** Does the node answer PING? (Any error, refused or timed out, is "no".) */
export async function answers(pool: ClusterPool, address: string): Promise<boolean> {
  try {
    await pool.node(address).call('PING');
    return true;
  } catch {
    return false;
  }
}

/** The first reachable node's CLUSTER NODES, parsed, and who said it; undefined when none answers. */
export async function clusterView(
  pool: ClusterPool,
  nodes: readonly string[],
): Promise<{ from: string; view: ClusterNodeLine[] } | undefined> {
  for (const n of nodes) {
    try {
      return { from: n, view: parseClusterNodes(await pool.node(n).text('CLUSTER', 'NODES')) };
    } catch {
      // next node
    }
  }
  return undefined;
}

/** The master that owns `slot` in this view. */
export function ownerIn(view: readonly ClusterNodeLine[], slot: number): ClusterNodeLine | undefined {
  return view.find((l) => isMaster(l) && l.slots.some(([a, b]) => a <= slot && slot <= b));
}

/** cluster_state of one node, or undefined when it does not answer. */
export async function clusterState(pool: ClusterPool, address: string): Promise<string | undefined> {
  try {
    return parseInfo(await pool.node(address).text('CLUSTER', 'INFO')).cluster_state;
  } catch {
    return undefined;
  }
}

/**
 * Is the node down for sure: does its port refuse connections? A node that
 * answers LOADING, refuses our password or times out is not down, and its
 * files are not touched nor is it started a second time.
 */
export async function refusesConnections(pool: ClusterPool, address: string, attempts = 3): Promise<boolean> {
  for (let i = 1; ; i++) {
    try {
      await pool.node(address).call('PING');
      return false;
    } catch (err) {
      const message = (err as Error).message;
      if (/ECONNREFUSED/.test(message)) return true;
      // A lossy link can drop the SYN or the refusal (an RST is never sent again): a connect
      // that timed out proves nothing either way, so it is asked again before the node is
      // taken for one that may be running.
      if (i >= attempts || !/ETIMEDOUT/.test(message)) return false;
    }
  }
}
