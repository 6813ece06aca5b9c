import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { parseRdb, RdbParser, decodeRaw, objectBytes, type RdbEntry, type RawEntry } from '../../src/redis/sync/rdb.js';
import { restoreFrame } from '../../src/redis/sync/resp-pipe.js';
import { crc64, dumpPayload, payloadVersion } from '../../src/redis/sync/crc64.js';
import { lzfDecompress } from '../../src/redis/sync/lzf.js';

// A standalone redis-server on 7695 writes the RDB; the parser must read back exactly what was written.
const PORT = 7695;
const dir = mkdtempSync(join(tmpdir(), 'rr-rdb-'));
let r: Redis;

before(async () => {
  await execa('redis-server', ['--port', String(PORT), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', join(dir, 'pid'), '--logfile', join(dir, 'log'),
    // Small thresholds: several quicklist nodes, and both encodings of each type.
    '--list-max-listpack-size', '4', '--zset-max-listpack-entries', '16', '--hash-max-listpack-entries', '16', '--set-max-intset-entries', '16']);
  r = new Redis({ port: PORT, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  for (let i = 0; i < 50; i++) { try { await r.connect(); break; } catch { await new Promise((s) => setTimeout(s, 100)); } }
});
after(async () => {
  await r.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
  r.disconnect();
});

const str = (b: Buffer) => b.toString();

test('every encoding Redis 7 writes for strings, lists, sets, sorted sets and hashes parses back to the written data', async () => {
  const long = 'abc'.repeat(400); // compressible: written LZF-compressed
  await r.set('s:raw', 'hello');
  await r.set('s:int', '12345');
  await r.set('s:neg', '-7');
  await r.set('s:big', '123456789012');
  await r.set('s:lzf', long);
  await r.set('s:ttl', 'x', 'PX', 3_600_000);
  await r.rpush('l:small', 'a', '1', '-200', '70000');
  const big = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? String(i * 1000) : `v${i}-${'y'.repeat(i)}`));
  await r.rpush('l:quick', ...big);
  await r.sadd('set:ints', 1, 2, 3, -5, 100000, 5000000000);
  await r.sadd('set:strs', ...Array.from({ length: 30 }, (_, i) => `m${i}`));
  await r.zadd('z:small', 1.5, 'a', -2, 'b', 3, 'c');
  await r.zadd('z:big', ...Array.from({ length: 40 }, (_, i) => [i / 4, `m${i}`]).flat());
  await r.hset('h:small', 'f1', 'v1', 'n', '42');
  await r.hset('h:big', ...Array.from({ length: 40 }, (_, i) => [`f${i}`, `v${i}`]).flat());
  const enc = async (k: string) => String(await r.call('OBJECT', 'ENCODING', k));
  // The test covers what it claims: each of these encodings is really in the file.
  assert.deepEqual(
    [await enc('s:int'), await enc('l:quick'), await enc('set:ints'), await enc('set:strs'), await enc('z:small'), await enc('z:big'), await enc('h:small'), await enc('h:big')],
    ['int', 'quicklist', 'intset', 'hashtable', 'listpack', 'skiplist', 'listpack', 'hashtable'],
  );
  await r.call('SAVE');
  const file = parseRdb(readFileSync(join(dir, 'dump.rdb')));
  assert.ok(file.version >= 9);
  assert.match(file.aux['redis-ver'] ?? '', /^\d+\.\d+/);
  const byKey = new Map<string, RdbEntry>(file.entries.map((e) => [str(e.key), e]));
  assert.equal(byKey.size, 14);
  const v = (k: string) => byKey.get(k)!.value;
  assert.equal(str(v('s:raw').value as Buffer), 'hello');
  assert.equal(str(v('s:int').value as Buffer), '12345');
  assert.equal(str(v('s:neg').value as Buffer), '-7');
  assert.equal(str(v('s:big').value as Buffer), '123456789012');
  assert.equal(str(v('s:lzf').value as Buffer), long);
  const ttl = byKey.get('s:ttl')!.expireAtMs!;
  assert.ok(ttl > Date.now() + 3_500_000 && ttl <= Date.now() + 3_600_000);
  assert.equal(byKey.get('s:raw')!.expireAtMs, null);
  assert.deepEqual((v('l:small').value as Buffer[]).map(str), ['a', '1', '-200', '70000']);
  assert.deepEqual((v('l:quick').value as Buffer[]).map(str), big);
  assert.deepEqual((v('set:ints').value as Buffer[]).map(str).sort(), ['-5', '1', '100000', '2', '3', '5000000000'].sort());
  assert.deepEqual((v('set:strs').value as Buffer[]).map(str).sort(), Array.from({ length: 30 }, (_, i) => `m${i}`).sort());
  assert.deepEqual((v('z:small').value as Array<[Buffer, number]>).map(([m, s]) => [str(m), s]).sort(), [['a', 1.5], ['b', -2], ['c', 3]].sort());
  assert.deepEqual(new Map((v('z:big').value as Array<[Buffer, number]>).map(([m, s]) => [str(m), s])), new Map(Array.from({ length: 40 }, (_, i) => [`m${i}`, i / 4])));
  assert.deepEqual(new Map((v('h:small').value as Array<[Buffer, Buffer]>).map(([f, x]) => [str(f), str(x)])), new Map([['f1', 'v1'], ['n', '42']]));
  assert.deepEqual(new Map((v('h:big').value as Array<[Buffer, Buffer]>).map(([f, x]) => [str(f), str(x)])), new Map(Array.from({ length: 40 }, (_, i) => [`f${i}`, `v${i}`])));
});

test('parsed as it arrives, in chunks of any size: the same entries; each raw entry becomes a RESTORE payload byte-identical to DUMP', async () => {
  await r.call('XADD', 'st:raw', '5-1', 'a', '1');
  await r.call('XGROUP', 'CREATE', 'st:raw', 'g', '0');
  await r.call('SAVE');
  const file = readFileSync(join(dir, 'dump.rdb'));
  const whole = parseRdb(file).entries.map((e) => [str(e.key), JSON.stringify(e.value)]);
  for (const size of [1, 2, 3, 7, 64, 1000]) {
    const p = new RdbParser();
    const got: RdbEntry[] = [];
    for (let i = 0; i < file.length; i += size) got.push(...(p.push(file.subarray(i, i + size)) as RdbEntry[]));
    got.push(...(p.end() as RdbEntry[]));
    assert.deepEqual(got.map((e) => [str(e.key), JSON.stringify(e.value)]), whole, `chunks of ${size} bytes`);
  }
  const raw = new RdbParser({ raw: true });
  const entries = [...raw.push(file), ...raw.end()] as RawEntry[];
  assert.equal(entries.length, whole.length);
  for (const e of entries) {
    const dump = (await r.callBuffer('DUMP', e.key)) as Buffer;
    assert.equal(payloadVersion(dump), raw.version);
    assert.ok(dumpPayload(objectBytes(e), raw.version).equals(dump), `payload of ${str(e.key)}`);
    // The RESTORE frame written straight from the entry carries the same payload.
    const frame = restoreFrame(e.key, 0, e.type, e.value, raw.version);
    assert.deepEqual(frame.toString('latin1').split('\r\n').slice(0, 7), ['*5', '$7', 'RESTORE', `$${e.key.length}`, e.key.toString('latin1'), '$1', '0']);
    assert.ok(frame.includes(Buffer.concat([Buffer.from(`$${dump.length}\r\n`), dump, Buffer.from('\r\n$7\r\nREPLACE\r\n')])), `frame of ${str(e.key)}`);
    assert.equal(JSON.stringify(decodeRaw(e)), whole.find(([k]) => k === str(e.key))![1]);
  }
  // A file cut short is an error at the end, never a silent partial load.
  const cut = new RdbParser();
  cut.push(file.subarray(0, file.length - 20));
  assert.throws(() => cut.end(), /ended before its EOF marker/);
});

test('CRC-64 (Jones), as Redis checks it', () => {
  // The check value from Redis's crc64.c self-test.
  assert.equal(crc64(Buffer.from('123456789')).readBigUInt64LE(0), 0xe9c6d914c4b8d9can);
});

test('streams: entries (shared and own fields, deleted ones skipped), ids, consumer groups, pending entries and consumers', async () => {
  await r.call('FLUSHALL');
  await r.call('XADD', 'st', '1-1', 'f', 'v1', 'g', 'w1');
  await r.call('XADD', 'st', '1-2', 'f', 'v2', 'g', 'w2');
  await r.call('XADD', 'st', '2-0', 'other', 'x');
  await r.call('XADD', 'st', '3-5', 'f', 'v3', 'g', 'w3');
  await r.call('XDEL', 'st', '1-2');
  await r.call('XGROUP', 'CREATE', 'st', 'grp', '0');
  await r.call('XREADGROUP', 'GROUP', 'grp', 'alice', 'COUNT', '2', 'STREAMS', 'st', '>');
  await r.call('SAVE');
  const file = parseRdb(readFileSync(join(dir, 'dump.rdb')));
  const st = file.entries.find((e) => str(e.key) === 'st')!.value;
  assert.equal(st.type, 'stream');
  if (st.type !== 'stream') return;
  assert.deepEqual(st.value.entries.map((e) => [e.id, e.fields.map(str)]), [['1-1', ['f', 'v1', 'g', 'w1']], ['2-0', ['other', 'x']], ['3-5', ['f', 'v3', 'g', 'w3']]]);
  assert.equal(st.value.length, 3);
  assert.equal(st.value.lastId, '3-5');
  const g = st.value.groups[0]!;
  assert.equal(str(g.name), 'grp');
  assert.equal(g.lastId, '2-0');
  assert.deepEqual(g.pending.map((p) => [p.id, p.deliveryCount, str(p.consumer!)]), [['1-1', 1, 'alice'], ['2-0', 1, 'alice']]);
  assert.deepEqual(g.consumers.map((c) => [str(c.name), c.pending]), [['alice', ['1-1', '2-0']]]);
});

test('a file that is not an RDB is named as such', () => {
  assert.throws(() => parseRdb(Buffer.from('GARBAGE0000')), /not an RDB file/);
});

test('LZF: literals and back references', () => {
  // "aaaaaaaaaa": one literal 'a', then a back reference of length 9 at distance 1.
  const compressed = Buffer.from([0x00, 0x61, 0xe0, 0x00, 0x00]);
  assert.equal(lzfDecompress(compressed, 10).toString(), 'a'.repeat(10));
  assert.throws(() => lzfDecompress(compressed, 12), /expected 12 bytes/);
});
