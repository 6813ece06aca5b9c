import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseRdb,
  RdbParser,
  decodeRaw,
  objectBytes,
  type BigPiece,
  type HashField,
  type RawEntry,
  type RdbValue,
} from '../../src/data/protocol/rdb.js';
import type { Redis } from 'ioredis';
import { dumpPayload } from '../../src/data/protocol/crc64.js';
import { pieceCommands } from '../../src/data/writer/apply.js';
import { availableBuilds, resolveServer, BUILDS_ENV } from '../../src/sandbox/servers.js';
import { startStandalone } from '../support/standalone.js';
import { hasFieldTtls, normalize, writeEveryEncoding, type WrittenKey } from '../support/rdb-keys.js';

// The RDB parser on files each server wrote itself: the default redis-server and every build in
// REDIS_BUILDS (Redis 6.2, 7.2, 7.4, Valkey 8.0 on this machine's CI). Each writes keys of every
// type in every encoding it has (test/support/rdb-keys.ts; each key's OBJECT ENCODING checked, so
// the encoding really is in the file), saves, and the file parses back to what was written, whole
// and raw (the sync's mode), TTLs included. One server at a time, on 16400 + its index.
const BASE = 16400;
const BUILDS = process.env.REDIS_BUILDS ?? process.env[BUILDS_ENV];
if (BUILDS) process.env[BUILDS_ENV] = BUILDS;
const builds = BUILDS && existsSync(BUILDS) ? availableBuilds(BUILDS) : [];
if (!builds.length)
  console.log('rdb-servers: REDIS_BUILDS is not set (a directory of server builds): the default redis-server only');
const servers = ['default', ...builds].slice(0, 6);

servers.forEach((name, i) => {
  test(`${name}: every type and encoding it writes parses back from its own RDB, values and TTLs; a module type stops with a clear error`, async () => {
    const server = await resolveServer(name === 'default' ? undefined : name);
    const s = await startStandalone({ port: BASE + i, dirPrefix: 'rr-rdb-servers-', binary: server.binary });
    let written: WrittenKey[];
    let file: Buffer;
    try {
      const r = await s.client();
      try {
        written = await writeEveryEncoding(r, server);
        for (const w of written)
          assert.equal(String(await r.call('OBJECT', 'ENCODING', w.key)), w.encoding, `${name}: encoding of ${w.key}`);
        await r.call('SAVE');
        file = readFileSync(join(s.dir, 'dump.rdb'));
        if (hasFieldTtls(server)) {
          await preGaForms(r, file, written, name);
          await piecesWrittenBack(r, file, written, name);
        }
      } finally {
        r.disconnect();
      }
    } finally {
      await s.stop();
    }
    const types = parsesBack(file, written, name);
    console.log(
      `${name} (${server.flavor} ${server.version}): RDB ${file.subarray(5, 9).toString()}, ${written.length} keys, ` +
        `encodings ${[...new Set(written.map((w) => w.encoding))].join(', ')}; RDB object types ${types.join(', ')}`,
    );
    // Redis 7.4: both forms of a hash with field TTLs (listpack-ex 25, hashtable with metadata 24).
    if (hasFieldTtls(server)) assert.ok(types.includes(24) && types.includes(25), `${name}: types ${types.join(', ')}`);
    const inPieces = piecesAddUp(file, written, name);
    if (hasFieldTtls(server)) assert.ok(inPieces.includes('hx:big'), `${name}: read in pieces: ${inPieces.join(', ')}`);
    moduleTypeStops(file, name);
  });
});

/** Whole and raw (each raw value decoded on its own, as the sync's rebuild does): exactly what was written. */
function parsesBack(file: Buffer, written: WrittenKey[], name: string): number[] {
  const parsed = parseRdb(file);
  assert.equal(parsed.aux['redis-ver'] !== undefined || parsed.aux['valkey-ver'] !== undefined, true);
  const byKey = new Map(parsed.entries.map((e) => [e.key.toString(), e]));
  assert.deepEqual([...byKey.keys()].sort(), written.map((w) => w.key).sort(), `${name}: the keys in the file`);
  const raw = new RdbParser({ raw: true });
  const raws = new Map(([...raw.push(file), ...raw.end()] as RawEntry[]).map((e) => [e.key.toString(), e]));
  for (const w of written) {
    const e = byKey.get(w.key)!;
    assert.deepEqual(normalize(e.value), w.value, `${name}: value of ${w.key} (${w.encoding})`);
    assert.equal(e.expireAtMs, w.expireAtMs, `${name}: TTL of ${w.key}`);
    const re = raws.get(w.key)!;
    assert.deepEqual(normalize(decodeRaw(re)), w.value, `${name}: raw value of ${w.key} (RDB type ${re.type})`);
    assert.equal(re.expireAtMs, w.expireAtMs);
  }
  return [...new Set([...raws.values()].map((e) => e.type))].sort((a, b) => a - b);
}

/**
 * Fed as a replication link delivers it (chunks of 1000 bytes), with a small bigBytes: each big
 * value comes in pieces (rdb-big.ts), and a key's pieces together are what was written (a hash's
 * field TTLs too, which the big reader takes from the hash's header). Returns the keys read so.
 */
function piecesAddUp(file: Buffer, written: WrittenKey[], name: string): string[] {
  const p = new RdbParser({ raw: true, bigBytes: 2048 });
  const pieces = new Map<string, BigPiece[]>();
  for (let i = 0; i <= file.length; i += 1000) {
    const got = i < file.length ? p.push(file.subarray(i, i + 1000)) : p.end();
    for (const x of got) if ('piece' in x) pieces.set(x.key.toString(), [...(pieces.get(x.key.toString()) ?? []), x]);
  }
  for (const [key, ps] of pieces) {
    const w = written.find((x) => x.key === key)!;
    assert.ok(ps[0]!.first && ps.at(-1)!.last, `${name}: ${key} pieces marked`);
    assert.equal(ps[0]!.expireAtMs, w.expireAtMs, `${name}: TTL of ${key} in pieces`);
    const kind = ps[0]!.piece.type;
    if (kind === 'stream') continue; // its pieces' shape is the stream tests' (rdb.test.ts)
    const whole: RdbValue =
      kind === 'string'
        ? { type: 'string', value: Buffer.concat(ps.map((x) => x.piece.value as Buffer)) }
        : ({ type: kind, value: ps.flatMap((x) => x.piece.value as unknown[]) } as RdbValue);
    assert.deepEqual(normalize(whole), w.value, `${name}: ${key} from ${ps.length} pieces`);
  }
  return [...pieces.keys()];
}

/** An RDB length (rdbSaveLen): 6 bits, 14 bits, 32 bits or 64 bits, big-endian past the first byte. */
function rdbLength(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(n < 2 ** 32 ? 5 : 9);
  b[0] = n < 2 ** 32 ? 0x80 : 0x81;
  if (n < 2 ** 32) b.writeUInt32BE(n, 1);
  else b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}
const rdbString = (x: Buffer): Buffer => Buffer.concat([rdbLength(x.length), x]);

/**
 * The 7.4 release candidates' forms of a hash with field TTLs (types 22 and 23), which no server
 * here writes but 7.4 still loads: made from the GA forms this server wrote (23: the listpack-ex
 * without its earliest expiry; 22: count, then absolute TTL, field, value), parsed by the parser to
 * the same fields and TTLs, and RESTOREd into the 7.4 server itself, which must read the same.
 */
async function preGaForms(r: Redis, file: Buffer, written: WrittenKey[], name: string): Promise<void> {
  const p = new RdbParser({ raw: true });
  const raws = new Map(([...p.push(file), ...p.end()] as RawEntry[]).map((e) => [e.key.toString(), e]));
  const small = raws.get('hx:small')!;
  const big = raws.get('hx:big')!;
  assert.deepEqual([small.type, big.type], [25, 24], `${name}: the GA forms`);
  const fields = (decodeRaw(big).value as HashField[]).map(([f, x, at]) =>
    Buffer.concat([rdbLength(at ?? 0), rdbString(f), rdbString(x)]),
  );
  const made = [
    { from: 'hx:small', type: 23, value: small.value.subarray(8) },
    { from: 'hx:big', type: 22, value: Buffer.concat([rdbLength(fields.length), ...fields]) },
  ];
  for (const m of made) {
    const want = written.find((w) => w.key === m.from)!.value as Array<[string, string, number | null]>;
    const e: RawEntry = { db: 0, key: Buffer.from(`pre-ga:${m.from}`), expireAtMs: null, type: m.type, value: m.value };
    assert.deepEqual(normalize(decodeRaw(e)), want, `${name}: type ${m.type} parsed`);
    await r.callBuffer('RESTORE', e.key, '0', dumpPayload(objectBytes(e), p.version));
    const names = want.map(([f]) => f);
    const times = (await r.call('HPEXPIRETIME', e.key, 'FIELDS', String(names.length), ...names)) as number[];
    const values = (await r.call('HMGET', e.key, ...names)) as string[];
    assert.deepEqual(
      names.map((f, j) => [f, values[j], times[j] === -1 ? null : times[j]]),
      want,
      `${name}: type ${m.type} as the server loads it`,
    );
  }
}

/**
 * The sync's path for a big hash with field TTLs: read in pieces as it arrives, each piece written
 * by pieceCommands (HSET, then HPEXPIREAT per expiry, the key's PEXPIREAT with the last piece),
 * into the 7.4 server under another name: the same fields, field TTLs and key TTL.
 */
async function piecesWrittenBack(r: Redis, file: Buffer, written: WrittenKey[], name: string): Promise<void> {
  const p = new RdbParser({ raw: true, bigBytes: 2048 });
  let n = 0;
  for (let i = 0; i <= file.length; i += 1000)
    for (const x of i < file.length ? p.push(file.subarray(i, i + 1000)) : p.end()) {
      if (!('piece' in x) || x.key.toString() !== 'hx:big') continue;
      n++;
      for (const [cmd, ...args] of pieceCommands({ ...x, key: Buffer.from('copy:hx:big') }))
        await r.callBuffer(cmd, ...args);
    }
  assert.ok(n > 1, `${name}: hx:big in ${n} pieces`);
  const want = written.find((w) => w.key === 'hx:big')!;
  const names = (want.value as Array<[string]>).map(([f]) => f);
  const times = (await r.call('HPEXPIRETIME', 'copy:hx:big', 'FIELDS', String(names.length), ...names)) as number[];
  const values = (await r.call('HMGET', 'copy:hx:big', ...names)) as string[];
  assert.deepEqual(
    names.map((f, j) => [f, values[j], times[j] === -1 ? null : times[j]]),
    want.value,
    `${name}: hx:big written back from its pieces`,
  );
  assert.equal(await r.call('PEXPIRETIME', 'copy:hx:big'), want.expireAtMs);
}

/**
 * A module's value (RDB_TYPE_MODULE_2) is opaque: the parser must stop on it, saying so, not
 * misread the bytes after it. Made by turning a string key's type byte into 7 (the parser does not
 * check the file's CRC, which the EOF carries: only a loading server does).
 */
function moduleTypeStops(file: Buffer, name: string): void {
  const key = Buffer.from('s:emb');
  const at = file.indexOf(Buffer.concat([Buffer.from([0x00, key.length]), key]));
  assert.ok(at > 0, `${name}: the string key s:emb in the file`);
  const patched = Buffer.from(file);
  patched[at] = 7;
  assert.throws(() => parseRdb(patched), /RDB at byte \d+: a module type .* cannot be carried/);
  const raw = new RdbParser({ raw: true });
  assert.throws(() => [...raw.push(patched), ...raw.end()], /a module type .* cannot be carried/);
}
