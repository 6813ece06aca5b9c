import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RdbValue } from '../../src/data/protocol/rdb.js';

/**
 * Keys of every type in every encoding a server writes into its RDB, written
 * through the server itself, with what each must parse back to. Shared by the
 * parser's tests (rdb.test.ts on the default server, rdb-servers.test.ts on
 * every build) so that "every encoding" means the same list everywhere.
 *
 * Why the encodings are asserted: a key written "as a listpack" that the
 * server stored otherwise (a threshold of another version, a renamed config)
 * would make a parser test pass without ever reading that encoding. Each key
 * names the OBJECT ENCODING it must have on this server, and the test checks
 * it before it saves.
 */
export interface ServerKind {
  flavor: 'redis' | 'valkey';
  /** X.Y.Z, the server's own version (Valkey's, not the Redis version it reports). */
  version: string;
}

export interface WrittenKey {
  key: string;
  /** OBJECT ENCODING the server must report for it. */
  encoding: string;
  /** The parsed value, normalized (normalize()): what the RDB must hold. */
  value: unknown;
  /** Absolute key expiry in ms, or null. */
  expireAtMs: number | null;
}

/** Redis 7.0 (or Valkey) and later: listpacks instead of ziplists. */
const atLeast = (s: ServerKind, major: number, minor: number): boolean => {
  if (s.flavor === 'valkey') return true; // Valkey 7.2+: every Redis 7.2 encoding
  const [a, b] = s.version.split('.').map(Number) as [number, number];
  return a > major || (a === major && b >= minor);
};

/** Whether this server has hash fields with their own TTL (Redis 7.4 HEXPIRE; not Valkey 8.0). */
export const hasFieldTtls = (s: ServerKind): boolean => s.flavor === 'redis' && atLeast(s, 7, 4);

const text = (b: Buffer): string => b.toString('latin1');
const byFirst = <T extends unknown[]>(a: T, b: T): number => String(a[0]).localeCompare(String(b[0]));

/**
 * A parsed value in a form deepEqual can compare with what was written:
 * strings as latin1 text, sets and hashes sorted (their order is the
 * server's), a hash field as [field, value, expiry ms or null].
 */
export function normalize(v: RdbValue): unknown {
  switch (v.type) {
    case 'string':
      return text(v.value);
    case 'list':
      return v.value.map(text);
    case 'set':
      return v.value.map(text).sort();
    case 'zset':
      return v.value.map(([m, s]) => [text(m), s]).sort(byFirst);
    case 'hash':
      return v.value.map(([f, x, at]) => [text(f), text(x), at ?? null]).sort(byFirst);
    case 'stream':
      return {
        entries: v.value.entries.map((e) => [e.id, e.fields.map(text)]),
        lastId: v.value.lastId,
        groups: v.value.groups.map((g) => ({
          name: text(g.name),
          lastId: g.lastId,
          pending: g.pending.map((p) => [p.id, p.deliveryCount, p.consumer ? text(p.consumer) : null]),
        })),
      };
  }
}

/** Write every key this server can hold (see the file comment); returns what each must parse back to. */
export async function writeEveryEncoding(r: Redis, s: ServerKind): Promise<WrittenKey[]> {
  const out: WrittenKey[] = [];
  const v7 = atLeast(s, 7, 0);
  const add = (key: string, encoding: string, value: unknown, expireAtMs: number | null = null) =>
    out.push({ key, encoding, value, expireAtMs });

  // Strings: integers (written as int-encoded strings), short (embstr), long compressible (LZF in
  // the RDB), long random (written raw: LZF cannot shrink it).
  for (const [k, x] of [
    ['s:int', '12345'],
    ['s:neg', '-7'],
    ['s:big', '123456789012'],
  ] as const) {
    await r.set(k, x);
    add(k, 'int', x);
  }
  await r.set('s:emb', 'hello');
  add('s:emb', 'embstr', 'hello');
  const long = 'abc'.repeat(400);
  await r.set('s:lzf', long);
  add('s:lzf', 'raw', long);
  const rand = text(randomBytes(300));
  await r.set('s:rand', Buffer.from(rand, 'latin1'));
  add('s:rand', 'raw', rand);
  const ttlAt = Date.now() + 3_600_000;
  await r.set('s:ttl', 'x', 'PXAT', ttlAt);
  add('s:ttl', 'embstr', 'x', ttlAt);

  // Lists: small (a listpack object from 7.2; before, a quicklist of one node), and a quicklist of
  // many nodes (of ziplists before 7.0, of listpacks since).
  const smallList = ['a', '1', '-200', '70000', '5000000000'];
  await r.rpush('l:small', ...smallList);
  add('l:small', atLeast(s, 7, 2) ? 'listpack' : 'quicklist', smallList);
  const bigList = Array.from({ length: 3000 }, (_, i) =>
    i % 3 === 0 ? String(i * 1000) : `v${i}-${'y'.repeat(i % 20)}`,
  );
  for (let i = 0; i < bigList.length; i += 500) await r.rpush('l:quick', ...bigList.slice(i, i + 500));
  add('l:quick', 'quicklist', bigList);

  // Sets: integers (intset, 64-bit members too), a few strings (listpack from 7.2), many (hashtable).
  const ints = ['1', '2', '3', '-5', '100000', '5000000000'];
  await r.sadd('set:ints', ...ints);
  add('set:ints', 'intset', [...ints].sort());
  const few = Array.from({ length: 30 }, (_, i) => `m${i}`);
  await r.sadd('set:small', ...few);
  add('set:small', atLeast(s, 7, 2) ? 'listpack' : 'hashtable', [...few].sort());
  const many = Array.from({ length: 300 }, (_, i) => `member-${i}`);
  await r.sadd('set:big', ...many);
  add('set:big', 'hashtable', [...many].sort());

  // Sorted sets: small (listpack, ziplist before 7), big (skiplist); infinite and fractional scores.
  const zSmall: Array<[string, number]> = [
    ['a', 1.5],
    ['b', -2],
    ['c', Infinity],
    ['d', -Infinity],
  ];
  await r.zadd('z:small', ...zSmall.flatMap(([m, x]) => [x === Infinity ? '+inf' : x === -Infinity ? '-inf' : x, m]));
  add('z:small', v7 ? 'listpack' : 'ziplist', [...zSmall].sort(byFirst));
  const zBig = Array.from({ length: 300 }, (_, i): [string, number] => [`m${i}`, i / 4]);
  await r.zadd('z:big', ...zBig.flatMap(([m, x]) => [x, m]));
  add('z:big', 'skiplist', [...zBig].sort(byFirst));

  // Hashes: small (listpack, ziplist before 7), big (hashtable: over hash-max-listpack-entries, 512).
  await r.hset('h:small', 'f1', 'v1', 'n', '42');
  add('h:small', v7 ? 'listpack' : 'ziplist', [
    ['f1', 'v1', null],
    ['n', '42', null],
  ]);
  const hBig = Array.from({ length: 600 }, (_, i): [string, string, null] => [`f${i}`, `v${i}`, null]);
  await r.hset('h:big', ...hBig.flatMap(([f, x]) => [f, x]));
  add('h:big', 'hashtable', [...hBig].sort(byFirst));

  // A stream with a deleted entry, a consumer group and pending entries.
  await r.call('XADD', 'st', '1-1', 'f', 'v1', 'g', 'w1');
  await r.call('XADD', 'st', '1-2', 'f', 'v2', 'g', 'w2');
  await r.call('XADD', 'st', '2-0', 'other', 'x');
  await r.call('XDEL', 'st', '1-2');
  await r.call('XGROUP', 'CREATE', 'st', 'grp', '0');
  await r.call('XREADGROUP', 'GROUP', 'grp', 'alice', 'COUNT', '1', 'STREAMS', 'st', '>');
  add('st', 'stream', {
    entries: [
      ['1-1', ['f', 'v1', 'g', 'w1']],
      ['2-0', ['other', 'x']],
    ],
    lastId: '2-0',
    groups: [{ name: 'grp', lastId: '1-1', pending: [['1-1', 1, 'alice']] }],
  });

  if (hasFieldTtls(s)) await writeFieldTtlHashes(r, add);
  return out;
}

/**
 * Redis 7.4: hashes with fields of their own TTL, in both encodings it writes
 * them in: listpack-ex (RDB type 25) and a hashtable with metadata (24), TTLs
 * far apart (multi-byte relative TTLs), fields without one, a key TTL beside
 * them, and a listpack-ex whose TTLs were all removed (still type 25).
 */
async function writeFieldTtlHashes(
  r: Redis,
  add: (key: string, encoding: string, value: unknown, expireAtMs?: number | null) => void,
): Promise<void> {
  const at = Date.now() + 3_600_000;
  await r.hset('hx:small', 'a', '1', 'b', '2', 'c', '3', 'd', '4');
  await r.call('HPEXPIREAT', 'hx:small', String(at), 'FIELDS', '1', 'b');
  await r.call('HPEXPIREAT', 'hx:small', String(at + 123_456), 'FIELDS', '2', 'c', 'd');
  add('hx:small', 'listpackex', [
    ['a', '1', null],
    ['b', '2', at],
    ['c', '3', at + 123_456],
    ['d', '4', at + 123_456],
  ]);
  const big: Array<[string, string, number | null]> = Array.from({ length: 600 }, (_, i) => [
    `f${i}`,
    `v${i}`,
    i % 3 === 0 ? at + i * 1_000_003 : null,
  ]);
  await r.hset('hx:big', ...big.flatMap(([f, x]) => [f, x]));
  for (const [f, , t] of big) if (t !== null) await r.call('HPEXPIREAT', 'hx:big', String(t), 'FIELDS', '1', f);
  const keyAt = at + 7_200_000;
  await r.pexpireat('hx:big', keyAt);
  add('hx:big', 'hashtable', [...big].sort(byFirst), keyAt);
  await r.hset('hx:persisted', 'a', '1', 'b', '2');
  await r.call('HPEXPIREAT', 'hx:persisted', String(at), 'FIELDS', '1', 'b');
  await r.call('HPERSIST', 'hx:persisted', 'FIELDS', '1', 'b');
  add('hx:persisted', 'listpackex', [
    ['a', '1', null],
    ['b', '2', null],
  ]);
}
