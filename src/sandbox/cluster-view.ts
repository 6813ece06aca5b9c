/**
 * What the sandbox needs on top of the shared CLUSTER NODES / INFO parsers
 * (src/redis/cluster-nodes.ts) to tell whether a freshly formed cluster has
 * converged: a comparable signature of a node's view, and its slot count.
 */
import { parseClusterNodes, parseInfo, type ClusterNodeLine } from '../redis/cluster-nodes.js';
import { countSlots, formatRanges } from '../redis/slots.js';

export { parseClusterNodes, parseInfo };

/**
 * One node's view of who owns what and who replicates whom, as a string that
 * is equal on two nodes exactly when they agree. Transient flags (pfail,
 * handshake) are left out; only the role counts.
 */
export function topologySignature(nodes: ClusterNodeLine[]): string {
  return nodes
    .map(
      (n) =>
        `${n.id} ${n.flags.includes('master') ? 'master' : n.flags.includes('slave') ? 'replica' : '?'} ${n.masterId ?? '-'} ${formatRanges(n.slots)}`,
    )
    .sort()
    .join('\n');
}

/** Number of slots a node's view assigns to any master. */
export function assignedSlots(nodes: ClusterNodeLine[]): number {
  return nodes.reduce((n, node) => n + countSlots(node.slots), 0);
}
