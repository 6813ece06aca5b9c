import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';
import { slotKey, type SlotRange } from '../../redis/slots.js';

/**
 * Delete the target's keys in some slots: before a full sync of one source
 * shard, what the target holds in that shard's slots is stale (keys deleted
 * on the source since an earlier sync would otherwise stay). This is what a
 * Redis replica does to itself on a full resync, limited to the slots the
 * shard owns. Returns the number of keys deleted.
 */
export async function clearSlots(
  target: Endpoint,
  ranges: readonly SlotRange[],
  signal?: AbortSignal,
  onDeleted?: (node: string, keys: number) => void,
): Promise<number> {
  const byOwner = new Map<NodeClient, number[]>();
  for (const [a, b] of ranges) {
    for (let s = a; s <= b; s++) {
      const owner = target.route(slotKey(s));
      const list = byOwner.get(owner) ?? [];
      list.push(s);
      byOwner.set(owner, list);
    }
  }
  let deleted = 0;
  // An empty master (INFO keyspace) has nothing to clear: no need to count slot by slot.
  const empty = new Set(
    await Promise.all(
      [...byOwner.keys()].map(async (n) => (/^db0:keys=/m.test(await n.text('INFO', 'keyspace')) ? undefined : n)),
    ),
  );
  for (const [node, slots] of byOwner) {
    if (empty.has(node)) continue;
    const counts = await node.pipeline(slots.map((s) => ['CLUSTER', 'COUNTKEYSINSLOT', String(s)] as const));
    let left = slots.filter((s, i) => {
      const [err, n] = counts[i]!;
      if (err) throw new Error(`counting keys of slot ${s} on ${node.address}: ${err.message}`);
      return Number(n) > 0;
    });
    // Many slots per round trip: a target holding keys in every slot is cleared in seconds, not minutes.
    while (left.length) {
      if (signal?.aborted) throw new Error('stopped');
      const part = left.slice(0, 256);
      const found = await node.pipeline(part.map((s) => ['CLUSTER', 'GETKEYSINSLOT', String(s), '1000'] as const));
      const unlinks: Array<[string, ...Buffer[]]> = [];
      const more: number[] = [];
      part.forEach((s, i) => {
        const [err, keys] = found[i]!;
        if (err) throw new Error(`listing keys of slot ${s} on ${node.address}: ${err.message}`);
        const ks = keys as Buffer[];
        if (ks.length) unlinks.push(['UNLINK', ...ks]);
        if (ks.length === 1000) more.push(s);
      });
      const res = await node.pipeline(unlinks);
      let n = 0;
      for (const [err, k] of res) {
        if (err) throw new Error(`deleting keys on ${node.address}: ${err.message}`);
        n += Number(k);
      }
      deleted += n;
      if (n) onDeleted?.(node.address, n);
      left = [...more, ...left.slice(256)];
    }
  }
  return deleted;
}
