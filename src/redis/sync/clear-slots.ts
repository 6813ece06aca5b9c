import type { NodeClient } from '../connect.js';
import type { Endpoint } from '../verify/endpoint.js';
import { slotKey, type SlotRange } from '../slots.js';

/**
 * Delete the target's keys in some slots: before a full sync of one source
 * shard, what the target holds in that shard's slots is stale (keys deleted
 * on the source since an earlier sync would otherwise stay). This is what a
 * Redis replica does to itself on a full resync, limited to the slots the
 * shard owns. Returns the number of keys deleted.
 */
export async function clearSlots(target: Endpoint, ranges: readonly SlotRange[], signal?: AbortSignal): Promise<number> {
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
  for (const [node, slots] of byOwner) {
    const counts = await node.pipeline(slots.map((s) => ['CLUSTER', 'COUNTKEYSINSLOT', String(s)] as const));
    for (let i = 0; i < slots.length; i++) {
      if (signal?.aborted) throw new Error('stopped');
      const [err, n] = counts[i]!;
      if (err) throw new Error(`counting keys of slot ${slots[i]} on ${node.address}: ${err.message}`);
      if (Number(n) === 0) continue;
      for (;;) {
        const keys = (await node.call('CLUSTER', 'GETKEYSINSLOT', String(slots[i]), '1000')) as Buffer[];
        if (!keys.length) break;
        await node.call('UNLINK', ...keys);
        deleted += keys.length;
      }
    }
  }
  return deleted;
}

