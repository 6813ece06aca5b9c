import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';
import type { BigPiece, HashField, RdbEntry, RdbStream } from '../protocol/rdb.js';

export type Command = [string, ...Array<string | Buffer>];

const num = (x: number) => (x === Infinity ? 'inf' : x === -Infinity ? '-inf' : String(x));

function chunked<T>(xs: T[], size: number, f: (part: T[]) => Command): Command[] {
  const out: Command[] = [];
  for (let i = 0; i < xs.length; i += size) out.push(f(xs.slice(i, i + size)));
  return out;
}

/**
 * The commands that rebuild one RDB entry in the target, big values in
 * chunks (no single command carries a 200k-element list). The key is
 * deleted first, so a stale copy in the target never merges with it. A key
 * whose expiry has passed is not written at all. Pure.
 */
export function entryCommands(e: RdbEntry, now = Date.now(), chunk = 500): Command[] {
  if (e.expireAtMs !== null && e.expireAtMs <= now) return [];
  const k = e.key;
  const out: Command[] = [['DEL', k]];
  const v = e.value;
  switch (v.type) {
    case 'string':
      out.push(['SET', k, v.value]);
      break;
    case 'list':
      out.push(...chunked(v.value, chunk, (p) => ['RPUSH', k, ...p]));
      break;
    case 'set':
      out.push(...chunked(v.value, chunk, (p) => ['SADD', k, ...p]));
      break;
    case 'zset':
      out.push(...chunked(v.value, chunk, (p) => ['ZADD', k, ...p.flatMap(([m, s]) => [num(s), m])]));
      break;
    case 'hash':
      out.push(...hashCommands(k, v.value, now, chunk));
      break;
    case 'stream': {
      const s = v.value;
      for (const en of s.entries) out.push(['XADD', k, en.id, ...en.fields]);
      out.push(...streamTail(k, s, s.entries.length === 0, now));
      break;
    }
  }
  if (e.expireAtMs !== null) out.push(['PEXPIREAT', k, String(e.expireAtMs)]);
  return out;
}

/**
 * A hash's fields, then the TTLs of those that have one (Redis 7.4): HSET,
 * then HPEXPIREAT key <ms> FIELDS n f... per expiry time, the absolute time
 * the source's file holds (what the source replicates too, so a field's
 * expiry never drifts by the sync's own delay). A field whose TTL has passed
 * is not written: the source has dropped it or is about to (and replicates
 * the HDEL), and an HPEXPIREAT in the past would only delete it again. Only
 * a hash with field TTLs emits HPEXPIREAT, so a target before 7.4 takes
 * every other hash as before.
 */
function hashCommands(k: Buffer, fields: HashField[], now: number, chunk: number): Command[] {
  const live = fields.filter(([, , at]) => at === undefined || at > now);
  const out = chunked(live, chunk, (p) => ['HSET', k, ...p.flatMap(([f, x]) => [f, x])] as Command);
  const byExpiry = new Map<number, Buffer[]>();
  for (const [f, , at] of live) {
    if (at === undefined) continue;
    const names = byExpiry.get(at);
    if (names) names.push(f);
    else byExpiry.set(at, [f]);
  }
  for (const [at, names] of byExpiry)
    out.push(
      ...chunked(names, chunk, (p) => ['HPEXPIREAT', k, String(at), 'FIELDS', String(p.length), ...p] as Command),
    );
  return out;
}

/** After a stream's entries: its ids (an empty stream is created, then trimmed), its groups, consumers and pending entries. */
function streamTail(k: Buffer, s: RdbStream, empty: boolean, now: number): Command[] {
  const out: Command[] = [];
  if (empty) {
    // An empty stream still exists (and keeps its last id): create it, then trim it empty.
    out.push(['XADD', k, 'MAXLEN', '0', s.lastId === '0-0' ? '0-1' : s.lastId, 'f', 'v']);
  }
  out.push([
    'XSETID',
    k,
    s.lastId,
    ...(s.entriesAdded !== undefined
      ? ['ENTRIESADDED', String(s.entriesAdded), 'MAXDELETEDID', s.maxDeletedId ?? '0-0']
      : []),
  ]);
  for (const g of s.groups) {
    out.push([
      'XGROUP',
      'CREATE',
      k,
      g.name,
      g.lastId,
      ...(g.entriesRead !== undefined ? ['ENTRIESREAD', String(g.entriesRead)] : []),
    ]);
    for (const c of g.consumers) {
      out.push(['XGROUP', 'CREATECONSUMER', k, g.name, c.name]);
      for (const id of c.pending) {
        const p = g.pending.find((x) => x.id === id);
        // FORCE creates the pending entry; TIME and RETRYCOUNT keep delivery time and count.
        out.push([
          'XCLAIM',
          k,
          g.name,
          c.name,
          '0',
          id,
          'TIME',
          String(p?.deliveryTimeMs ?? now),
          'RETRYCOUNT',
          String(p?.deliveryCount ?? 1),
          'FORCE',
          'JUSTID',
        ]);
      }
    }
  }
  return out;
}

/**
 * The commands that write one piece of a big value (rdb-big.ts) into the
 * target: the first piece empties the key, a string's later pieces APPEND,
 * a collection's elements are added in chunks, and the last piece brings
 * the expiry (and a stream's ids and groups). The pieces of a key go in
 * order over one connection, before any command of the replication stream.
 */
export function pieceCommands(p: BigPiece, now = Date.now(), chunk = 500): Command[] {
  const k = p.key;
  const out: Command[] = p.first ? [['DEL', k]] : [];
  const v = p.piece;
  switch (v.type) {
    case 'string':
      out.push([p.first ? 'SET' : 'APPEND', k, v.value]);
      break;
    case 'list':
      out.push(...chunked(v.value, chunk, (x) => ['RPUSH', k, ...x]));
      break;
    case 'set':
      out.push(...chunked(v.value, chunk, (x) => ['SADD', k, ...x]));
      break;
    case 'zset':
      out.push(...chunked(v.value, chunk, (x) => ['ZADD', k, ...x.flatMap(([m, s]) => [num(s), m])]));
      break;
    case 'hash':
      out.push(...hashCommands(k, v.value, now, chunk));
      break;
    case 'stream':
      for (const en of v.value.entries) out.push(['XADD', k, en.id, ...en.fields]);
      if (p.last) out.push(...streamTail(k, v.value, v.value.length === 0, now));
      break;
  }
  if (p.last && p.expireAtMs !== null) out.push(['PEXPIREAT', k, String(p.expireAtMs)]);
  return out;
}

const KEY_AT: Record<string, number> = { XGROUP: 2, BITOP: 2, OBJECT: 2 };

/** What a command from the replication stream means for a cluster target. */
export type StreamAction =
  { kind: 'skip' } | { kind: 'key'; key: Buffer } | { kind: 'everywhere' } | { kind: 'multi' } | { kind: 'exec' };

/**
 * Route a replicated write: by its first key (a cluster master only
 * replicates commands whose keys share one slot), except what does not apply
 * in a cluster target (SELECT, PING, REPLCONF) and what concerns every
 * master (FLUSHALL, FLUSHDB, SCRIPT, FUNCTION). MULTI/EXEC blocks are kept
 * together. Pure.
 */
export function classify(args: Buffer[]): StreamAction {
  const name = args[0]!.toString().toUpperCase();
  if (name === 'PING' || name === 'SELECT' || name === 'REPLCONF') return { kind: 'skip' };
  if (name === 'MULTI') return { kind: 'multi' };
  if (name === 'EXEC') return { kind: 'exec' };
  if (name === 'FLUSHALL' || name === 'FLUSHDB' || name === 'SCRIPT' || name === 'FUNCTION')
    return { kind: 'everywhere' };
  if (name === 'PUBLISH' || name === 'SPUBLISH') return { kind: 'skip' }; // messages, not data
  // The few writes whose first key is not the first argument.
  const at = KEY_AT[name] ?? 1;
  if (args.length <= at) return { kind: 'skip' };
  return { kind: 'key', key: args[at]! };
}

/** DEL/UNLINK/TOUCH of several keys, MSET/MSETNX of several pairs: one command per key. */
export function splitMultiKey(c: Command): Command[] {
  const name = c[0].toUpperCase();
  if ((name === 'DEL' || name === 'UNLINK' || name === 'TOUCH') && c.length > 2)
    return c.slice(1).map((k) => [c[0], k] as Command);
  if ((name === 'MSET' || name === 'MSETNX') && c.length > 3) {
    const out: Command[] = [];
    for (let i = 1; i + 1 < c.length; i += 2) out.push([name === 'MSET' ? 'SET' : 'SETNX', c[i]!, c[i + 1]!]);
    return out;
  }
  return [c];
}

export const asBuffers = (c: Command): Buffer[] => c.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x)));

/**
 * Send a pipeline to one target node and raise the first error: a sync that
 * cannot write must stop, not drift silently. A MOVED (the target's layout
 * changed under us) is followed once.
 */
export async function sendChecked(target: Endpoint, node: NodeClient, cmds: Command[]): Promise<unknown[]> {
  const replies = await node.pipeline(cmds);
  const out: unknown[] = [];
  for (let i = 0; i < replies.length; i++) {
    const [err, reply] = replies[i]!;
    if (!err) {
      out.push(reply);
      continue;
    }
    const moved = /^MOVED \d+ (\S+)/.exec(err.message);
    const to = moved && target.masters.find((m) => m.address === moved[1]);
    if (to) {
      const [[err2, reply2]] = (await to.pipeline([cmds[i]!])) as [[Error | null, unknown]];
      if (!err2) {
        out.push(reply2);
        continue;
      }
      throw new Error(`writing to ${to.address}: ${cmds[i]![0]} failed: ${err2.message}`);
    }
    throw new Error(`writing to ${node.address}: ${cmds[i]![0]} failed: ${err.message}`);
  }
  return out;
}
