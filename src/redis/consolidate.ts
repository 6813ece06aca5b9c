import { usageError } from '../errors.js';
import { evenRanges, rangesToSlots } from './slots.js';
import type { SlotMove } from './slot-move.js';
import { findNode, masters, type Topology, type TopologyNode } from './topology.js';

const ref = (n: TopologyNode) => ({ id: n.id, address: n.address });

/**
 * The master that collects every slot: the one given, else the one with the
 * most memory headroom (maxmemory - used_memory; no maxmemory counts as the
 * most, with the smallest dataset first, so the least data moves). Pure.
 */
export function chooseCollector(t: Topology, given?: string): TopologyNode {
  if (given) {
    const n = findNode(t, given);
    if (!n || n.role !== 'master')
      throw usageError(
        'E_PARAM',
        `${given} is not a master of cluster ${t.cluster}`,
        `pass one of: ${masters(t)
          .map((m) => m.address)
          .join(', ')}`,
      );
    return n;
  }
  const headroom = (n: TopologyNode) =>
    n.self && n.self.maxmemory > 0
      ? n.self.maxmemory - n.self.usedMemory
      : Number.MAX_SAFE_INTEGER - (n.self?.usedMemory ?? 0);
  const all = t.nodes.filter((n) => n.role === 'master');
  return [...all].sort((a, b) => headroom(b) - headroom(a) || a.address.localeCompare(b.address))[0]!;
}

/** Every slot not owned by `onto` moves to it. */
export function consolidationMoves(t: Topology, onto: TopologyNode): SlotMove[] {
  return masters(t)
    .filter((m) => m.id !== onto.id)
    .flatMap((m) => rangesToSlots(m.slots).map((slot) => ({ slot, from: ref(m), to: ref(onto) })));
}

/**
 * From one master holding all 16384 slots to an even spread over every
 * master (redis-cli's allocation: contiguous ranges of 16384 / n), the
 * collecting master keeping the first range. Pure.
 */
export function spreadMoves(t: Topology, from: TopologyNode): SlotMove[] {
  const all = t.nodes.filter((n) => n.role === 'master');
  const order = [
    from,
    ...all.filter((m) => m.id !== from.id).sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true })),
  ];
  const ranges = evenRanges(order.length);
  return order
    .slice(1)
    .flatMap((m, i) => rangesToSlots([ranges[i + 1]!]).map((slot) => ({ slot, from: ref(from), to: ref(m) })));
}

/** Back to the layout of the plan-time topology: each slot from `from` to its original owner. */
export function restoreMoves(t: Topology, from: TopologyNode): SlotMove[] {
  return masters(t)
    .filter((m) => m.id !== from.id)
    .flatMap((m) => rangesToSlots(m.slots).map((slot) => ({ slot, from: ref(from), to: ref(m) })));
}

/** The collecting master and its replicas: the only target nodes a consolidated copy touches. */
export function collectorGroup(t: Topology, given?: string): TopologyNode[] {
  const c = chooseCollector(t, given);
  return [c, ...t.nodes.filter((n) => n.masterId === c.id)];
}

/**
 * Even out any layout with the fewest slot moves, as redis-cli rebalance
 * does: each master's share is 16384 / n (the first ones get the spare
 * slot); masters above it give the slots at the end of their ranges to
 * those below it. Nothing moves when every master is within `thresholdPct`
 * of its share (redis-cli's 2%). Pure.
 */
export function rebalanceMoves(t: Topology, thresholdPct = 2): SlotMove[] {
  const all = [...t.nodes.filter((n) => n.role === 'master')].sort((a, b) =>
    a.address.localeCompare(b.address, 'en', { numeric: true }),
  );
  const base = Math.floor(16384 / all.length);
  const want = all.map((_, i) => base + (i < 16384 % all.length ? 1 : 0));
  const have = all.map((m) => rangesToSlots(m.slots));
  if (all.every((_, i) => Math.abs(have[i]!.length - want[i]!) <= (want[i]! * thresholdPct) / 100)) return [];
  const receivers = all.map((m, i) => ({ m, need: want[i]! - have[i]!.length })).filter((r) => r.need > 0);
  const moves: SlotMove[] = [];
  all.forEach((donor, i) => {
    const surplus = have[i]!.length - want[i]!;
    // The tail of the donor's slots: what stays with it remains one block where it was one.
    for (const slot of have[i]!.slice(have[i]!.length - Math.max(0, surplus))) {
      const r = receivers.find((x) => x.need > 0)!;
      moves.push({ slot, from: ref(donor), to: ref(r.m) });
      r.need--;
    }
  });
  return moves;
}
