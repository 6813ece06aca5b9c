import { failedError, messageOf } from '../errors.js';
import { parseClusterNodes, type ClusterNodeLine } from './cluster-nodes.js';
import type { ClusterPool } from './connect.js';
import type { NodeRef } from './failover.js';
import { scrub } from './audit.js';

/** One slot to move from one master to another. */
export interface SlotMove { slot: number; from: NodeRef; to: NodeRef }

/**
 * Spread `slots` over `targets` so that their slot counts end up as even as
 * possible, in contiguous blocks (few ranges per master, as redis-cli
 * rebalance leaves them). Pure.
 */
export function spreadSlots(slots: readonly number[], from: NodeRef, targets: ReadonlyArray<{ node: NodeRef; slots: number }>): SlotMove[] {
  if (!targets.length) return [];
  const quota = new Map(targets.map((t) => [t.node.id, 0]));
  for (let i = 0; i < slots.length; i++) {
    // Give the next slot to the target that would end with the fewest slots.
    const t = [...targets].sort((a, b) => a.slots + quota.get(a.node.id)! - (b.slots + quota.get(b.node.id)!) || a.node.address.localeCompare(b.node.address))[0]!;
    quota.set(t.node.id, quota.get(t.node.id)! + 1);
  }
  const sorted = [...slots].sort((a, b) => a - b);
  const moves: SlotMove[] = [];
  let i = 0;
  for (const t of [...targets].sort((a, b) => a.node.address.localeCompare(b.node.address))) {
    for (let n = quota.get(t.node.id)!; n > 0; n--) moves.push({ slot: sorted[i++]!, from, to: t.node });
  }
  return moves;
}

/**
 * Slot moves send thousands of small commands. They go out unjournaled, one
 * summary per batch of slots is recorded instead (the caller's), because the
 * cluster itself records where each slot's move stands (owner, MIGRATING,
 * IMPORTING) and `moveSlot` reads that before acting: an fsync'd journal row
 * per SETSLOT would make a move of 5461 slots take minutes for nothing.
 * Access control still applies (a read-only session refuses these).
 */
function bulk(pool: ClusterPool, address: string) {
  const node = pool.node(address);
  return {
    async call(...cmd: [string, ...(string | number | Buffer)[]]): Promise<unknown> {
      const [[err, reply]] = (await node.pipeline([cmd])) as [[Error | null, unknown]];
      // ioredis errors can carry the command (MIGRATE ... AUTH password): only the scrubbed text goes on.
      if (err) throw new Error(`${address}: ${scrub(err.message, pool.secrets())}`);
      return reply;
    },
  };
}

function myself(text: string): ClusterNodeLine {
  const me = parseClusterNodes(text).find((l) => l.flags.includes('myself'));
  if (!me) throw new Error('CLUSTER NODES has no myself line');
  return me;
}

const owns = (l: ClusterNodeLine, slot: number) => l.slots.some(([a, b]) => a <= slot && slot <= b);

export interface MoveOptions {
  /** Keys per GETKEYSINSLOT / MIGRATE round. */
  batch: number;
  migrateTimeoutMs: number;
  /** Every master that must learn the new owner (SETSLOT NODE), source and target included. */
  masters: string[];
  signal?: AbortSignal;
}

/**
 * Move one slot, convergently: look at both nodes first and do only what is
 * missing, so that a move cut off at any point (IMPORTING set, half the keys
 * moved, the owner changed on one node only) is finished by running it again.
 * The order is redis-cli's: IMPORTING on the target, MIGRATING on the source,
 * MIGRATE the keys, then SETSLOT NODE on the target first, the source next,
 * then every other master. Returns the number of keys moved.
 */
export async function moveSlot(pool: ClusterPool, m: SlotMove, o: MoveOptions): Promise<number> {
  const src = bulk(pool, m.from.address);
  const dst = bulk(pool, m.to.address);
  const [srcMe, dstMe] = await Promise.all([src.call('CLUSTER', 'NODES').then((t) => myself(String(t))), dst.call('CLUSTER', 'NODES').then((t) => myself(String(t)))]);
  let moved = 0;
  if (!owns(dstMe, m.slot)) {
    if (!owns(srcMe, m.slot)) {
      throw failedError('E_SLOT_OWNER', `slot ${m.slot} is owned by neither ${m.from.address} nor ${m.to.address}`, 'the cluster changed under the run: check it (`redis-runbook check`) and make a new plan');
    }
    if (!dstMe.importing.some((x) => x.slot === m.slot && x.from === m.from.id)) await dst.call('CLUSTER', 'SETSLOT', m.slot, 'IMPORTING', m.from.id);
    if (!srcMe.migrating.some((x) => x.slot === m.slot && x.to === m.to.id)) await src.call('CLUSTER', 'SETSLOT', m.slot, 'MIGRATING', m.to.id);
    const { username, password } = pool.credentials();
    const auth = password === undefined ? [] : username ? ['AUTH2', username, password] : ['AUTH', password];
    const [host, port] = [m.to.address.slice(0, m.to.address.lastIndexOf(':')).replace(/^\[|\]$/g, ''), m.to.address.slice(m.to.address.lastIndexOf(':') + 1)];
    for (;;) {
      if (o.signal?.aborted) throw failedError('E_STOPPED', `stopped while moving slot ${m.slot}`, 'resume the run: the move continues where it stopped');
      const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', m.slot, o.batch)) as Buffer[];
      if (!keys.length) break;
      try {
        // REPLACE: a key on both sides is a copy left by a MIGRATE cut off after the target
        // stored it; the source's copy is the live one while the slot is migrating.
        await src.call('MIGRATE', host, port, '', 0, o.migrateTimeoutMs, 'REPLACE', ...auth, 'KEYS', ...keys);
      } catch (err) {
        throw failedError('E_MIGRATE', `MIGRATE of ${keys.length} keys of slot ${m.slot} to ${m.to.address} failed: ${scrub(messageOf(err), pool.secrets())}`,
          'the slot stays open (MIGRATING/IMPORTING), served through ASK redirects; fix the cause (a big key needs a longer timeout, the target may be out of memory) and retry the step');
      }
      moved += keys.length;
    }
  }
  // The new owner learns it first, so the slot always has an owner someone agrees with.
  await dst.call('CLUSTER', 'SETSLOT', m.slot, 'NODE', m.to.id);
  try {
    await src.call('CLUSTER', 'SETSLOT', m.slot, 'NODE', m.to.id);
  } catch (err) {
    // The source may have learned the new owner from gossip already, and a master that
    // lost its last slot turns itself into a replica (Redis 7, cluster-allow-replica-migration),
    // which then refuses SETSLOT. Either way it no longer claims the slot: that is the goal.
    const now = myself(String(await src.call('CLUSTER', 'NODES')));
    if (owns(now, m.slot)) throw err;
  }
  for (const a of o.masters.filter((x) => x !== m.from.address && x !== m.to.address)) {
    try {
      await bulk(pool, a).call('CLUSTER', 'SETSLOT', m.slot, 'NODE', m.to.id);
    } catch {
      // Gossip carries the new owner's higher epoch to a master we could not reach.
    }
  }
  return moved;
}
