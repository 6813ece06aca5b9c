import { failedError, messageOf, RunbookError } from '../errors.js';
import { parseClusterNodes, parseInfo, type ClusterNodeLine } from './cluster-nodes.js';
import { serverIdentity } from './server-identity.js';
import type { ClusterPool } from './connect.js';
import type { NodeRef } from './failover.js';
import { scrub } from './audit.js';
import { formatRanges, toRanges } from './slots.js';
import type { Topology } from './topology.js';
import { hostOf, portOf } from '../address.js';

/** One slot to move from one master to another. */
export interface SlotMove {
  slot: number;
  from: NodeRef;
  to: NodeRef;
}

/**
 * Spread `slots` over `targets` so that their slot counts end up as even as
 * possible, in contiguous blocks (few ranges per master, as redis-cli
 * rebalance leaves them). Pure.
 */
export function spreadSlots(
  slots: readonly number[],
  from: NodeRef,
  targets: ReadonlyArray<{ node: NodeRef; slots: number }>,
): SlotMove[] {
  if (!targets.length) return [];
  const quota = new Map(targets.map((t) => [t.node.id, 0]));
  for (let i = 0; i < slots.length; i++) {
    // Give the next slot to the target that would end with the fewest slots.
    const t = [...targets].sort(
      (a, b) =>
        a.slots + quota.get(a.node.id)! - (b.slots + quota.get(b.node.id)!) ||
        a.node.address.localeCompare(b.node.address),
    )[0]!;
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
      const [[err, reply]] = (await lostIfUnreachable(address, node.pipeline([cmd]))) as [[Error | null, unknown]];
      // ioredis errors can carry the command (MIGRATE ... AUTH password): only the scrubbed text goes on.
      if (err && /Connection is closed|ECONNRESET|EPIPE|ECONNREFUSED/i.test(err.message))
        throw nodeLost(address, scrub(err.message, pool.secrets()));
      if (err) throw slotMoveError(address, scrub(err.message, pool.secrets()));
      return reply;
    },
  };
}

function myself(text: string): ClusterNodeLine {
  const me = parseClusterNodes(text).find((l) => l.flags.includes('myself'));
  if (!me) throw new Error('CLUSTER NODES has no myself line');
  return me;
}

/** Does this CLUSTER NODES line claim the slot? */
export const ownsSlot = (l: ClusterNodeLine, slot: number): boolean => l.slots.some(([a, b]) => a <= slot && slot <= b);

export interface MoveOptions {
  /** Keys per GETKEYSINSLOT / MIGRATE round. */
  batch: number;
  migrateTimeoutMs: number;
  /** Every master that must learn the new owner (SETSLOT NODE), source and target included. */
  masters: string[];
  signal?: AbortSignal;
  /** Connections per node for a phase of SETSLOTs on Valkey 8+ (default SETSLOT_LANES; 1: one, as on Redis). */
  setslotLanes?: number;
  /** Valkey 8+: how long a master waits for its replicas' acknowledgement of a SETSLOT (ms). */
  setslotTimeoutMs?: number;
}

function migrateError(pool: ClusterPool, m: SlotMove, n: number, err: unknown): Error {
  return failedError(
    'E_MIGRATE',
    `MIGRATE of ${n} key(s) of slot ${m.slot} to ${m.to.address} failed: ${scrub(messageOf(err), pool.secrets())}`,
    'the slot stays open (MIGRATING/IMPORTING), served through ASK redirects; fix the cause (the target may be down or unreachable from the source, out of memory, or a key is too big for the timeout: raise migrateTimeoutMs) and retry the step once the target, or the replica promoted in its place, answers',
  );
}

/**
 * Send commands to one node in one round trip; each reply or error, scrubbed of secrets. With
 * `lanes` > 1 the commands are cut into that many runs, each pipelined on a connection of its own
 * (see setslotLanes); the replies come back in the commands' order, and every run has answered
 * before anything is thrown.
 */
async function pipelined(
  pool: ClusterPool,
  address: string,
  cmds: Array<[string, ...(string | number | Buffer)[]]>,
  lanes = 1,
): Promise<Array<{ err?: Error; reply?: unknown }>> {
  if (!cmds.length) return [];
  const per = Math.ceil(cmds.length / Math.max(1, lanes));
  const runs = Array.from({ length: Math.ceil(cmds.length / per) }, (_, i) => cmds.slice(i * per, (i + 1) * per));
  const settled = await Promise.allSettled(
    runs.map((run, i) => lostIfUnreachable(address, pool.lane(address, i).pipeline(run))),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const res = settled.flatMap((r) => (r as PromiseFulfilledResult<Array<[Error | null, unknown]>>).value);
  // A node that dies under a pipeline fails each queued command with the bare client text
  // ("Connection is closed."): say which node went away and what the open slots need.
  const lost = res.find(([err]) => err && /Connection is closed|ECONNRESET|EPIPE|ECONNREFUSED/i.test(err.message));
  if (lost) throw nodeLost(address, scrub(lost[0]!.message, pool.secrets()));
  return res.map(([err, reply]) =>
    err ? { err: slotMoveError(address, scrub(err.message, pool.secrets())) } : { reply },
  );
}

/**
 * Every node of a move answered when the step began (its check asks them):
 * one that refuses a new connection now went away mid-move, and the operator
 * needs the open-slot remedy of E_NODE_LOST, not "check the inventory".
 */
async function lostIfUnreachable<T>(address: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof RunbookError && err.code === 'E_NODE_UNREACHABLE')
      throw nodeLost(address, err.message.replace(/^.* is unreachable \((.*)\)$/, '$1'));
    throw err;
  }
}

/**
 * A node's refusal during a move, named when the cause is known: a node that
 * was a master when the step began and is a replica now (its replica took
 * over, or it came back after a crash and was demoted) refuses SETSLOT and
 * writes. A resume re-reads the cluster and follows the new master.
 */
export function slotMoveError(address: string, msg: string): Error {
  if (/SETSLOT only with masters|^READONLY\b/.test(msg)) {
    return failedError(
      'E_NODE_DEMOTED',
      `${address} is no longer a master (${msg}): a failover happened during the slot move`,
      'wait until the cluster agrees on the new master (`redis-runbook check`), then resume: the move re-reads the cluster, follows the master that replaced it, and finishes what is missing',
    );
  }
  return new Error(`${address}: ${msg}`);
}

function nodeLost(address: string, msg: string): Error {
  return failedError(
    'E_NODE_LOST',
    `${address} stopped answering in the middle of a slot move (${msg})`,
    'the slots being moved may stay open (MIGRATING/IMPORTING, served through ASK redirects); once the node, or the replica promoted in its place, answers and the cluster is ok again, retry the step: the move reads both sides and finishes what is missing',
  );
}

function firstError(rs: Array<{ err?: Error }>): void {
  const e = rs.find((r) => r.err);
  if (e) throw e.err;
}

type Command = [string, ...(string | number | Buffer)[]];

/**
 * Connections a phase of SETSLOTs is spread over, per node.
 *
 * Valkey 8 replicates CLUSTER SETSLOT (IMPORTING, MIGRATING, NODE, STABLE) to the node's replicas
 * before applying it, and holds the client until every online replica has acknowledged it
 * (cluster_legacy.c, clusterCommandSetSlot: blockClientForReplicaAck, then the command runs again;
 * the wait is bounded by SETSLOT's TIMEOUT, 2 s by default, and ends in an error). A held client
 * reads nothing more, so a pipeline of 64 SETSLOTs on one connection costs 64 replication round
 * trips one after the other, where Redis (which does not replicate SETSLOT) answers them all at
 * once. Held clients on different connections wait for the same acknowledgement, so spreading a
 * phase over several connections lets their waits overlap: one round trip moves up to one
 * SETSLOT per lane. Nothing else changes: a phase is still awaited whole before the next one
 * starts (IMPORTING before MIGRATING, the target's NODE before the source's), each SETSLOT is
 * still one slot's own command, and the replies and errors are the same.
 *
 * Measured on a shared 2-core machine (medians; ratios taken against Redis in the same run):
 * - One SETSLOT (`npm run bench -- setslot`, 256 slots, master with one replica): Valkey 8.0.1
 *   0.77-0.81 ms on one connection, 0.07-0.09 ms over 32; Redis 7.2 0.006-0.010 ms either way,
 *   and Valkey 8.0.1 without a replica 0.011-0.013 ms: the replica's acknowledgement is the cost.
 * - migrate-consolidate-reshard, Redis 7.2 source, 3x1 target, 3000 keys, 3 rounds: with a
 *   Valkey 8.0.1 target, consolidate-target 103 s -> 13.6 s and reshard-target 92 s -> 13.0 s
 *   (the whole run 248 s -> 68 s); per round, 12x -> 2.1x and 12x -> 2.7x the time with a
 *   Redis 7.2.6 target. Lanes 8/16/32/64 for 512 slots moved there and back: 2.5/2.2/2.0/1.6 s,
 *   11.6 s on one connection, 1.0 s on Redis.
 *
 * Redis and Valkey before 8.0 keep the single connection of before: nothing there waits.
 */
export const SETSLOT_LANES = 32;

/** Per pool and address: does the node hold SETSLOT for its replicas (Valkey 8+)? */
const holdsCache = new WeakMap<ClusterPool, Map<string, boolean>>();

/** How many connections a phase of SETSLOTs to `address` is spread over: SETSLOT_LANES on Valkey 8+, else 1. */
export async function setslotLanes(pool: ClusterPool, address: string, valkeyLanes = SETSLOT_LANES): Promise<number> {
  return (await holdsForReplicas(pool, address)) ? valkeyLanes : 1;
}

/** Does the node hold each SETSLOT until its replicas have it (Valkey 8+)? Asked once per pool and address. */
async function holdsForReplicas(pool: ClusterPool, address: string): Promise<boolean> {
  let known = holdsCache.get(pool);
  if (!known) holdsCache.set(pool, (known = new Map()));
  const had = known.get(address);
  if (had !== undefined) return had;
  let info: Record<string, string>;
  try {
    const [[err, reply]] = (await pool.node(address).pipeline([['INFO', 'server']])) as [[Error | null, unknown]];
    if (err) return false;
    info = parseInfo(String(reply));
  } catch {
    // Unreachable now: the SETSLOTs themselves say so, with the open-slot remedy.
    return false;
  }
  const id = serverIdentity(info);
  const holds = id.flavor === 'valkey' && Number(id.version.split('.')[0]) >= 8;
  known.set(address, holds);
  return holds;
}

/**
 * How long a Valkey 8+ master may wait for its replicas' acknowledgement of one SETSLOT, sent
 * as the command's TIMEOUT. Valkey's own default is 2 s, and past it the master answers
 * NOREPLICAS and does not apply the command: on a loaded machine (a replica busy with a
 * fork, a full sync, a slow disk, or only a busy CPU) a replica can take longer than that, and
 * a move then failed although nothing was wrong (seen in CI, three test files at a time on
 * 2 cores). A longer wait costs nothing when the replicas are quick.
 */
export const SETSLOT_REPLICA_TIMEOUT_MS = 10_000;
/** SETSLOTs refused with NOREPLICAS are sent again this many times in all before the move stops. */
export const SETSLOT_ATTEMPTS = 3;
const NOREPLICAS = /\bNOREPLICAS\b/;

/**
 * One phase of SETSLOTs to one node: spread over lanes on Valkey 8+, each with its TIMEOUT
 * there, and those its replicas did not acknowledge in time (NOREPLICAS: the master did not
 * apply them, a replica may have) sent again, which is harmless, as every SETSLOT states an
 * end state. Still refused after SETSLOT_ATTEMPTS: the error says which master's replicas.
 */
async function setslots(
  pool: ClusterPool,
  address: string,
  cmds: Command[],
  o: Pick<MoveOptions, 'setslotLanes' | 'setslotTimeoutMs'>,
): Promise<Array<{ err?: Error; reply?: unknown }>> {
  const holds = await holdsForReplicas(pool, address);
  const lanes = holds ? (o.setslotLanes ?? SETSLOT_LANES) : 1;
  const timeoutMs = o.setslotTimeoutMs ?? SETSLOT_REPLICA_TIMEOUT_MS;
  const sent: Command[] = holds ? cmds.map((c) => [...c, 'TIMEOUT', timeoutMs]) : cmds;
  const out = await pipelined(pool, address, sent, lanes);
  for (let attempt = 1; attempt < SETSLOT_ATTEMPTS; attempt++) {
    const again = out.flatMap((r, i) => (r.err && NOREPLICAS.test(r.err.message) ? [i] : []));
    if (!again.length) break;
    const replies = await pipelined(
      pool,
      address,
      again.map((i) => sent[i]!),
      lanes,
    );
    again.forEach((i, k) => (out[i] = replies[k]!));
  }
  return out.map((r) => (r.err && NOREPLICAS.test(r.err.message) ? { err: replicasLate(address, timeoutMs) } : r));
}

function replicasLate(address: string, timeoutMs: number): Error {
  return failedError(
    'E_SETSLOT_REPLICAS',
    `${address} did not apply CLUSTER SETSLOT: its replicas did not acknowledge it within ${timeoutMs} ms, ` +
      `${SETSLOT_ATTEMPTS} times (Valkey 8+ applies a SETSLOT only once its replicas have it)`,
    `look at the replicas of ${address} (INFO replication there: a replica paused, stuck or far behind ` +
      'holds every SETSLOT); the slots being moved stay open, served through ASK redirects; once the replicas ' +
      'keep up, retry the step: the move reads both sides and finishes what is missing',
  );
}

/**
 * Read where the group stands on both nodes: the slots the target does not
 * own yet are still to move, and each of those must still be the source's.
 */
async function readMoveSides(
  pool: ClusterPool,
  from: NodeRef,
  to: NodeRef,
  slots: readonly number[],
): Promise<{ srcMe: ClusterNodeLine; dstMe: ClusterNodeLine; pending: number[] }> {
  const [srcMe, dstMe] = await Promise.all([
    bulk(pool, from.address)
      .call('CLUSTER', 'NODES')
      .then((t) => myself(String(t))),
    bulk(pool, to.address)
      .call('CLUSTER', 'NODES')
      .then((t) => myself(String(t))),
  ]);
  const pending = slots.filter((slot) => !ownsSlot(dstMe, slot));
  const lost = pending.filter((slot) => !ownsSlot(srcMe, slot));
  if (lost.length) {
    throw failedError(
      'E_SLOT_OWNER',
      `slots ${formatRanges(toRanges(lost))} are owned by neither ${from.address} nor ${to.address}`,
      'the cluster changed under the run: check it (`redis-runbook check`) and make a new plan',
    );
  }
  return { srcMe, dstMe, pending };
}

/** IMPORTING on the target, then MIGRATING on the source, for each pending slot not marked so already. */
async function markSlotsOpen(
  pool: ClusterPool,
  from: NodeRef,
  to: NodeRef,
  pending: readonly number[],
  srcMe: ClusterNodeLine,
  dstMe: ClusterNodeLine,
  o: MoveOptions,
): Promise<void> {
  firstError(
    await setslots(
      pool,
      to.address,
      pending
        .filter((slot) => !dstMe.importing.some((x) => x.slot === slot && x.from === from.id))
        .map((slot) => ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id]),
      o,
    ),
  );
  firstError(
    await setslots(
      pool,
      from.address,
      pending
        .filter((slot) => !srcMe.migrating.some((x) => x.slot === slot && x.to === to.id))
        .map((slot) => ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id]),
      o,
    ),
  );
}

/** A builder of MIGRATE commands towards `to`, carrying the pool's credentials. */
function migrateTo(pool: ClusterPool, to: NodeRef): (keys: Buffer[], timeoutMs: number) => Command {
  const { username, password } = pool.credentials();
  const auth = password === undefined ? [] : username ? ['AUTH2', username, password] : ['AUTH', password];
  const host = hostOf(to.address);
  const port = portOf(to.address);
  // REPLACE: a key on both sides is a copy left by a MIGRATE cut off after the target
  // stored it (the BUSYKEY case); the source's copy is the live one while the slot is migrating.
  return (keys, timeoutMs) => ['MIGRATE', host, port, '', 0, timeoutMs, 'REPLACE', ...auth, 'KEYS', ...keys];
}

/**
 * Send one round of MIGRATEs (one per slot's chunk, all in one pipeline) and
 * retry a timed-out chunk key by key. Returns the number of keys moved.
 */
async function migrateChunks(
  pool: ClusterPool,
  from: NodeRef,
  to: NodeRef,
  chunks: Array<Array<{ slot: number; key: Buffer }>>,
  migrate: (keys: Buffer[], timeoutMs: number) => Command,
  o: MoveOptions,
): Promise<number> {
  let moved = 0;
  const results = await pipelined(
    pool,
    from.address,
    chunks.map((c) =>
      migrate(
        c.map((x) => x.key),
        o.migrateTimeoutMs,
      ),
    ),
  );
  for (let i = 0; i < chunks.length; i++) {
    const err = results[i]!.err;
    if (err) {
      // A chunk holding a big key (a 20 MB list) can time out as a whole: move its keys
      // one at a time with a longer timeout before giving up.
      if (!/IOERR|timeout/i.test(err.message))
        throw migrateError(pool, { slot: chunks[i]![0]!.slot, from, to }, chunks[i]!.length, err);
      for (const x of chunks[i]!) {
        const [one] = await pipelined(pool, from.address, [migrate([x.key], o.migrateTimeoutMs * 5)]);
        if (one!.err) throw migrateError(pool, { slot: x.slot, from, to }, 1, one!.err);
      }
    }
    moved += chunks[i]!.length;
  }
  return moved;
}

/** Move the keys of the pending slots from source to target, a batch per slot per round. Returns the keys moved. */
async function migrateSlotKeys(
  pool: ClusterPool,
  from: NodeRef,
  to: NodeRef,
  pending: readonly number[],
  o: MoveOptions,
): Promise<number> {
  const migrate = migrateTo(pool, to);
  let moved = 0;
  let left = [...pending];
  while (left.length) {
    if (o.signal?.aborted)
      throw failedError(
        'E_STOPPED',
        'stopped while moving slots',
        'resume the run: the move continues where it stopped',
      );
    const listed = await pipelined(
      pool,
      from.address,
      left.map((slot) => ['CLUSTER', 'GETKEYSINSLOT', slot, o.batch]),
    );
    firstError(listed);
    const work = left.map((slot, i) => ({ slot, keys: listed[i]!.reply as Buffer[] })).filter((w) => w.keys.length > 0);
    if (!work.length) break;
    // One MIGRATE per slot (Redis refuses a MIGRATE whose keys span slots: CROSSSLOT);
    // the MIGRATEs of the whole group go out in one pipeline.
    const chunks = work.map((w) => w.keys.map((k) => ({ slot: w.slot, key: k })));
    moved += await migrateChunks(pool, from, to, chunks, migrate, o);
    // Slots that still had keys are listed again (more may be left); empty ones are done.
    left = work.map((w) => w.slot);
  }
  return moved;
}

/** SETSLOT NODE on the target, then the source, then every other master (best effort). */
async function announceNewOwner(
  pool: ClusterPool,
  from: NodeRef,
  to: NodeRef,
  slots: readonly number[],
  o: MoveOptions,
): Promise<void> {
  // The new owner learns it first, so each slot always has an owner someone agrees with.
  firstError(
    await setslots(
      pool,
      to.address,
      slots.map((slot) => ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]),
      o,
    ),
  );
  const srcReplies = await setslots(
    pool,
    from.address,
    slots.map((slot) => ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]),
    o,
  );
  if (srcReplies.some((r) => r.err)) {
    // The source may have learned the new owner from gossip already, and a master that
    // lost its last slot turns itself into a replica (Redis 7, cluster-allow-replica-migration),
    // which then refuses SETSLOT. Either way it must no longer claim the slot: that is the goal.
    const now = myself(String(await bulk(pool, from.address).call('CLUSTER', 'NODES')));
    const still = slots.filter((slot) => ownsSlot(now, slot));
    if (still.length) firstError(srcReplies);
  }
  await Promise.all(
    o.masters
      .filter((x) => x !== from.address && x !== to.address)
      .map((a) =>
        // Gossip carries the new owner's higher epoch to a master we could not reach.
        setslots(
          pool,
          a,
          slots.map((slot) => ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]),
          o,
        ).catch(() => []),
      ),
  );
}

/**
 * Move a group of slots that share a source and a target, convergently, with
 * one round trip per phase for the whole group instead of one per slot:
 * look at both nodes first and do only what is missing, so that a move cut
 * off at any point (IMPORTING set, half the keys moved, the owner changed on
 * one node only) is finished by running it again. The order per slot is
 * redis-cli's: IMPORTING on the target, MIGRATING on the source, MIGRATE the
 * keys, then SETSLOT NODE on the target first, the source next, then every
 * other master. Returns the number of keys moved.
 */
export async function moveSlotGroup(
  pool: ClusterPool,
  from: NodeRef,
  to: NodeRef,
  slots: readonly number[],
  o: MoveOptions,
): Promise<number> {
  const { srcMe, dstMe, pending } = await readMoveSides(pool, from, to, slots);
  let moved = 0;
  if (pending.length) {
    await markSlotsOpen(pool, from, to, pending, srcMe, dstMe, o);
    moved = await migrateSlotKeys(pool, from, to, pending, o);
  }
  await announceNewOwner(pool, from, to, slots, o);
  return moved;
}

/** Move one slot (a group of one): see moveSlotGroup. */
export function moveSlot(pool: ClusterPool, m: SlotMove, o: MoveOptions): Promise<number> {
  return moveSlotGroup(pool, m.from, m.to, [m.slot], o);
}

export interface MoveManyOptions extends MoveOptions {
  /** Groups of slots moved at once. */
  concurrency: number;
  /** Slots per group (one pipeline per phase). */
  groupSize?: number;
  /** Called after each round of groups (for progress and one audit summary per group). */
  onGroup?(group: SlotMove[], keys: number, done: number): void;
  /** Test hook, after each round. */
  afterGroup?(): void;
  /** A group met a transient refusal (CLUSTERDOWN, TRYAGAIN) and is moved again after `delayMs`. */
  onRetry?(group: SlotMove[], attempt: number, delayMs: number, reason: string): void;
  /** How long a group keeps retrying transient refusals before the error stands (default 60 s). */
  retryForMs?: number;
}

/**
 * Refusals that pass by themselves: CLUSTERDOWN while the nodes still flag a
 * node that just came back, TRYAGAIN while a multi-key command meets a slot
 * that is moving. A group's move reads the real state first, so moving it
 * again after one of these is safe.
 */
export const isTransientRefusal = (err: unknown): boolean => /\b(CLUSTERDOWN|TRYAGAIN)\b/.test(messageOf(err));

/** The line an operator reads when a group is retried. */
export function describeRetry(g: readonly SlotMove[], attempt: number, delayMs: number, reason: string): string {
  const word = /\b(CLUSTERDOWN|TRYAGAIN)\b/.exec(reason)?.[1] ?? 'a transient refusal';
  return `slots ${formatRanges(toRanges(g.map((m) => m.slot)))} (${g[0]!.from.address} -> ${g[0]!.to.address}): ${word}, the cluster is still settling; attempt ${attempt + 1} in ${delayMs} ms`;
}

/** Move one group, retrying transient refusals with backoff, bounded. */
async function moveGroupRetrying(pool: ClusterPool, g: SlotMove[], o: MoveManyOptions): Promise<number> {
  const firstAt = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await moveSlotGroup(
        pool,
        g[0]!.from,
        g[0]!.to,
        g.map((m) => m.slot),
        o,
      );
    } catch (err) {
      const delayMs = Math.min(4000, 250 * 2 ** (attempt - 1));
      if (!isTransientRefusal(err) || o.signal?.aborted || Date.now() - firstAt + delayMs > (o.retryForMs ?? 60_000))
        throw err;
      o.onRetry?.(g, attempt, delayMs, messageOf(err));
      await new Promise<void>((r) => {
        const t = setTimeout(done, delayMs);
        function done() {
          clearTimeout(t);
          o.signal?.removeEventListener('abort', done);
          r();
        }
        o.signal?.addEventListener('abort', done, { once: true });
      });
      if (o.signal?.aborted)
        throw failedError(
          'E_STOPPED',
          'stopped while moving slots',
          'resume the run: the move continues where it stopped',
        );
    }
  }
}

/**
 * Move many slots: consecutive moves with the same source and target form
 * groups, and `concurrency` groups move at once. On the first error every
 * worker stops taking groups, and the error is raised only once all have
 * returned: nothing keeps moving behind a failed (then retried) step.
 */
export async function moveSlots(
  pool: ClusterPool,
  moves: readonly SlotMove[],
  o: MoveManyOptions,
): Promise<{ keys: number; slots: number }> {
  const size = o.groupSize ?? 64;
  const groups: SlotMove[][] = [];
  for (const m of moves) {
    const g = groups.at(-1);
    if (g && g.length < size && g[0]!.from.id === m.from.id && g[0]!.to.id === m.to.id) g.push(m);
    else groups.push([m]);
  }
  let keys = 0;
  let done = 0;
  let next = 0;
  let failed = false;
  const results = await Promise.allSettled(
    Array.from({ length: Math.max(1, o.concurrency) }, async () => {
      while (next < groups.length && !failed) {
        if (o.signal?.aborted)
          throw failedError(
            'E_STOPPED',
            'stopped while moving slots',
            'resume the run: the move continues where it stopped',
          );
        const g = groups[next++]!;
        let n: number;
        try {
          n = await moveGroupRetrying(pool, g, o);
        } catch (err) {
          failed = true;
          throw err;
        }
        keys += n;
        done += g.length;
        o.onGroup?.(g, n, done);
        o.afterGroup?.();
      }
    }),
  );
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return { keys, slots: done };
}

/**
 * Is a slot's open mark one of these moves, in their direction (MIGRATING on
 * the source towards the target, IMPORTING on the target from the source)?
 * A mark on the same slot between other nodes is someone else's move.
 */
export function isOwnOpenSlot(
  moves: readonly SlotMove[],
  slot: number,
  nodeId: string,
  state: 'migrating' | 'importing',
  peerId: string,
): boolean {
  return moves.some(
    (m) =>
      m.slot === slot &&
      (state === 'migrating' ? m.from.id === nodeId && m.to.id === peerId : m.to.id === nodeId && m.from.id === peerId),
  );
}

/**
 * Open slots (MIGRATING/IMPORTING) not of `moves`, per node, from a topology
 * (pure): someone else's reshard in flight, which a step must not "fix".
 */
export function foreignOpenSlots(t: Topology, moves: readonly SlotMove[]): string[] {
  return t.nodes.flatMap((n) => {
    const me = n.self?.view.find((l) => l.flags.includes('myself'));
    const open = [
      ...(me?.migrating ?? []).filter((x) => !isOwnOpenSlot(moves, x.slot, n.id, 'migrating', x.to)),
      ...(me?.importing ?? []).filter((x) => !isOwnOpenSlot(moves, x.slot, n.id, 'importing', x.from)),
    ].map((x) => x.slot);
    return open.length ? [`${n.address}: ${formatRanges(toRanges([...new Set(open)].sort((a, b) => a - b)))}`] : [];
  });
}

/** A slot left MIGRATING or IMPORTING on some node (a reshard cut off), as the nodes report it. */
export interface OpenSlot {
  slot: number;
  node: NodeRef;
  state: 'migrating' | 'importing';
  peer: string;
}

export async function findOpenSlots(pool: ClusterPool, nodes: readonly string[]): Promise<OpenSlot[]> {
  const out: OpenSlot[] = [];
  for (const n of nodes) {
    const me = myself(String(await bulk(pool, n).call('CLUSTER', 'NODES')));
    for (const x of me.migrating)
      out.push({ slot: x.slot, node: { id: me.id, address: n }, state: 'migrating', peer: x.to });
    for (const x of me.importing)
      out.push({ slot: x.slot, node: { id: me.id, address: n }, state: 'importing', peer: x.from });
  }
  return out;
}

const keysIn = async (pool: ClusterPool, address: string, slot: number) =>
  Number(await bulk(pool, address).call('CLUSTER', 'COUNTKEYSINSLOT', slot));

/**
 * One side of a move is marked, the other not: look at both before choosing.
 * - The peer already claims the slot (its SETSLOT NODE went out, ours did not):
 *   tell the marked node the new owner, if it holds none of the slot's keys.
 * - The peer holds keys of the slot (the receiving master failed over mid-move,
 *   and IMPORTING is not replicated): mark both sides again and finish the move.
 * - Nobody but the owner holds keys: the mark is simply cleared (STABLE).
 * Anything else (keys on both sides, an importing node holding keys its
 * source still owns) is refused for a human.
 */
async function closeLoneMark(
  pool: ClusterPool,
  slot: number,
  lone: OpenSlot,
  byId: Map<string, string>,
  o: MoveOptions,
): Promise<void> {
  const peerAddr = byId.get(lone.peer);
  const here = await keysIn(pool, lone.node.address, slot);
  const setHere = async (...to: Array<string | number>) =>
    firstError(await setslots(pool, lone.node.address, [['CLUSTER', 'SETSLOT', slot, ...to]], o));
  const refuse = (why: string) =>
    failedError(
      'E_OPEN_SLOT',
      `slot ${slot} is ${lone.state.toUpperCase()} on ${lone.node.address} ${lone.state === 'migrating' ? 'to' : 'from'} ${peerAddr ?? lone.peer}: ${why}`,
      'decide which copy wins and fix it by hand (redis-cli --cluster fix), then retry',
    );
  if (!peerAddr) {
    if (here > 0 && lone.state === 'importing') throw refuse(`the peer is unknown and ${here} keys are here`);
    await setHere('STABLE');
    return;
  }
  let peerMe = myself(String(await bulk(pool, peerAddr).call('CLUSTER', 'NODES')));
  let peer = { id: lone.peer, address: peerAddr };
  // The peer failed over since the mark was set (killed, its replica promoted, back as that
  // replica's replica): the move's other side is now the master it follows, which holds the
  // keys the peer had received. A replica refuses SETSLOT.
  const promoted = peerMe.flags.includes('slave') && peerMe.masterId ? byId.get(peerMe.masterId) : undefined;
  if (promoted) {
    peer = { id: peerMe.masterId!, address: promoted };
    peerMe = myself(String(await bulk(pool, promoted).call('CLUSTER', 'NODES')));
  }
  const there = await keysIn(pool, peer.address, slot);
  const meNow = myself(String(await bulk(pool, lone.node.address).call('CLUSTER', 'NODES')));
  if (lone.state === 'migrating') {
    if (ownsSlot(peerMe, slot)) {
      if (here > 0) throw refuse(`${peerAddr} already owns it, yet ${here} keys are still here`);
      await setHere('NODE', peer.id);
      return;
    }
    if (there > 0 && ownsSlot(meNow, slot)) {
      await moveSlotGroup(pool, lone.node, peer, [slot], o);
      return;
    }
    if (here > 0 && !ownsSlot(meNow, slot)) throw refuse(`it no longer owns the slot but holds ${here} of its keys`);
    await setHere('STABLE');
    return;
  }
  // importing
  if (here === 0) {
    await setHere('STABLE');
    return;
  }
  if (ownsSlot(peerMe, slot)) {
    // The source still owns it and some keys already arrived here: finish the move.
    await moveSlotGroup(pool, peer, lone.node, [slot], o);
    return;
  }
  throw refuse(`${here} keys are here and the source no longer owns the slot`);
}

/**
 * Close open slots before anything else moves: a slot MIGRATING from A to B
 * (and IMPORTING on B) is finished towards B, as redis-cli --cluster fix
 * does when both sides agree. A one-sided mark is settled by looking at both
 * nodes (see closeLoneMark).
 */
export async function closeOpenSlots(
  pool: ClusterPool,
  nodes: readonly string[],
  masters: string[],
  o: Omit<MoveOptions, 'masters'>,
): Promise<number[]> {
  const open = await findOpenSlots(pool, nodes);
  const byId = new Map<string, string>();
  for (const n of nodes) byId.set(myself(String(await bulk(pool, n).call('CLUSTER', 'NODES'))).id, n);
  const closed: number[] = [];
  for (const slot of [...new Set(open.map((x) => x.slot))].sort((a, b) => a - b)) {
    const mig = open.find((x) => x.slot === slot && x.state === 'migrating');
    const imp = open.find((x) => x.slot === slot && x.state === 'importing');
    if (mig && imp && mig.peer === imp.node.id && imp.peer === mig.node.id) {
      await moveSlot(pool, { slot, from: mig.node, to: imp.node }, { ...o, masters });
    } else {
      await closeLoneMark(pool, slot, (mig ?? imp)!, byId, { ...o, masters });
    }
    closed.push(slot);
  }
  return closed;
}
