import { preconditionError } from '../errors.js';
import { formatRanges } from './slots.js';
import { masters, replicasOf, type Topology, type TopologyNode } from './topology.js';

/** A source master and the target master that owns exactly the same slots. */
export interface ShardPair {
  ranges: string;
  source: { id: string; address: string };
  target: { id: string; address: string };
  targetReplicas: Array<{ id: string; address: string }>;
}

const ref = (n: TopologyNode) => ({ id: n.id, address: n.address });

/**
 * Map each source master to the target master with the same slots: by slots,
 * never by port or position. A file copied to a node that owns other slots
 * is data loss (Valkey 8 deletes keys of slots a node does not own), so any
 * difference refuses the plan and says exactly which ranges differ. Pure.
 */
export function pairShards(source: Topology, target: Topology): ShardPair[] {
  const byRanges = new Map(masters(target).map((m) => [formatRanges(m.slots), m]));
  const srcRanges = masters(source).map((m) => formatRanges(m.slots));
  const differ: string[] = [];
  for (const r of srcRanges)
    if (!byRanges.has(r)) differ.push(`source slots ${r} have no target master with exactly those slots`);
  for (const r of byRanges.keys())
    if (!srcRanges.includes(r)) differ.push(`target slots ${r} have no source master with exactly those slots`);
  if (differ.length) {
    throw preconditionError(
      'E_STRUCTURE',
      `${source.cluster} and ${target.cluster} are not sharded the same way: ${differ.join('; ')}`,
      'a file copy needs identical slot ranges per master; use `migrate-consolidate-reshard` for clusters shaped differently',
    );
  }
  return masters(source)
    .map((m) => {
      const t = byRanges.get(formatRanges(m.slots))!;
      return {
        ranges: formatRanges(m.slots),
        source: ref(m),
        target: ref(t),
        targetReplicas: replicasOf(target, t.id).map(ref),
      };
    })
    .sort((a, b) => a.ranges.localeCompare(b.ranges));
}
