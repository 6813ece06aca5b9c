import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  parseRdb,
  RdbParser,
  decodeRaw,
  objectBytes,
  type RdbEntry,
  type RawEntry,
} from '../../src/data/protocol/rdb.js';
import { restoreFrame } from '../../src/data/protocol/resp-pipe.js';
import { crc64, dumpPayload, payloadVersion } from '../../src/data/protocol/crc64.js';
import { lzfDecompress, LzfStream } from '../../src/data/protocol/lzf.js';
import { pieceCommands } from '../../src/data/writer/apply.js';
import { PIECE_ITEMS, type BigPiece } from '../../src/data/protocol/rdb-big.js';
import { startStandalone, type Standalone } from '../support/standalone.js';
import { writeEveryEncoding } from '../support/rdb-keys.js';
import { resolveServer } from '../../src/sandbox/servers.js';

// A standalone redis-server on 7695 writes the RDB; the parser must read back exactly what was written.
const PORT = 7695;
let server: Standalone;
let dir: string;
let r: Redis;

before(async () => {
  server = await startStandalone({
    port: PORT,
    dirPrefix: 'rr-rdb-',
    args: [
      // Small thresholds: several quicklist nodes, and both encodings of each type.
      '--list-max-listpack-size',
      '4',
      '--zset-max-listpack-entries',
      '16',
      '--hash-max-listpack-entries',
      '16',
      '--set-max-intset-entries',
      '16',
    ],
  });
  dir = server.dir;
  r = await server.client();
});
after(async () => {
  r?.disconnect();
  await server?.stop();
});

const str = (b: Buffer) => b.toString();

// That each encoding parses back to what was written, on this server and every other build, is
// rdb-servers.test.ts; here the same keys (test/support/rdb-keys.ts) make the file parsed in chunks.
test('parsed as it arrives, in chunks of any size: the same entries; each raw entry becomes a RESTORE payload byte-identical to DUMP', async () => {
  await writeEveryEncoding(r, await resolveServer());
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
    assert.deepEqual(
      got.map((e) => [str(e.key), JSON.stringify(e.value)]),
      whole,
      `chunks of ${size} bytes`,
    );
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
    assert.deepEqual(frame.toString('latin1').split('\r\n').slice(0, 7), [
      '*5',
      '$7',
      'RESTORE',
      `$${e.key.length}`,
      e.key.toString('latin1'),
      '$1',
      '0',
    ]);
    assert.ok(
      frame.includes(Buffer.concat([Buffer.from(`$${dump.length}\r\n`), dump, Buffer.from('\r\n$7\r\nREPLACE\r\n')])),
      `frame of ${str(e.key)}`,
    );
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
  assert.deepEqual(
    st.value.entries.map((e) => [e.id, e.fields.map(str)]),
    [
      ['1-1', ['f', 'v1', 'g', 'w1']],
      ['2-0', ['other', 'x']],
      ['3-5', ['f', 'v3', 'g', 'w3']],
    ],
  );
  assert.equal(st.value.length, 3);
  assert.equal(st.value.lastId, '3-5');
  const g = st.value.groups[0]!;
  assert.equal(str(g.name), 'grp');
  assert.equal(g.lastId, '2-0');
  assert.deepEqual(
    g.pending.map((p) => [p.id, p.deliveryCount, str(p.consumer!)]),
    [
      ['1-1', 1, 'alice'],
      ['2-0', 1, 'alice'],
    ],
  );
  assert.deepEqual(
    g.consumers.map((c) => [str(c.name), c.pending]),
    [['alice', ['1-1', '2-0']]],
  );
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

test('LZF a piece at a time: the same bytes as the whole decompression, whatever the input cuts', () => {
  const text = Buffer.from(
    Array.from({ length: 4000 }, (_, i) => `line ${i % 97} of the log, ${'x'.repeat(i % 13)}\n`).join(''),
  );
  // Compress with the server: an RDB string of repetitive text is written LZF-compressed.
  const compressed = lzfCompressForTest(text);
  const whole = lzfDecompress(compressed, text.length);
  assert.ok(whole.equals(text));
  for (const cut of [1, 5, 33, 1000]) {
    const z = new LzfStream(text.length, 4096);
    const out: Buffer[] = [];
    let at = 0;
    for (
      let end = Math.min(cut, compressed.length);
      at < compressed.length;
      end = Math.min(end + cut, compressed.length)
    ) {
      for (;;) {
        const d = z.decode(compressed, at, end);
        if (d.at === at) break;
        out.push(d.out);
        at = d.at;
      }
    }
    assert.ok(Buffer.concat(out).equals(text), `input cut every ${cut} bytes`);
    assert.ok(Math.max(...out.map((b) => b.length)) <= 4096 + 264, 'pieces of about the asked size');
  }
});

/** A minimal LZF compressor (back references found by a hash of 3 bytes, as liblzf does), for the test only. */
function lzfCompressForTest(input: Buffer): Buffer {
  const out: number[] = [];
  const seen = new Map<number, number>();
  let lit: number[] = [];
  const flush = () => {
    while (lit.length) {
      const run = lit.splice(0, 32);
      out.push(run.length - 1, ...run);
    }
  };
  let i = 0;
  while (i < input.length) {
    const h = i + 2 < input.length ? (input[i]! << 16) | (input[i + 1]! << 8) | input[i + 2]! : -1;
    const ref = h >= 0 ? seen.get(h) : undefined;
    if (h >= 0) seen.set(h, i);
    if (ref !== undefined && i - ref - 1 < 8192) {
      let len = 0;
      while (len < 264 && i + len < input.length && input[ref + len] === input[i + len]) len++;
      if (len >= 3) {
        flush();
        const off = i - ref - 1;
        const l = len - 2;
        if (l < 7) out.push((l << 5) | (off >> 8), off & 0xff);
        else out.push((7 << 5) | (off >> 8), l - 7, off & 0xff);
        i += len;
        continue;
      }
    }
    lit.push(input[i++]!);
  }
  flush();
  return Buffer.from(out);
}

/** Parse a file fed 4000 bytes at a time, as a link delivers it: what came out, and the most the parser held. */
function parseAsItArrives(file: Buffer, bigBytes: number): { got: Array<RawEntry | BigPiece>; maxBuffered: number } {
  const p = new RdbParser({ raw: true, bigBytes });
  const got: Array<RawEntry | BigPiece> = [];
  let maxBuffered = 0;
  for (let i = 0; i < file.length; i += 4000) {
    got.push(...(p.push(file.subarray(i, i + 4000)) as Array<RawEntry | BigPiece>));
    maxBuffered = Math.max(maxBuffered, p.buffered);
  }
  got.push(...(p.end() as Array<RawEntry | BigPiece>));
  return { got, maxBuffered };
}

test('a value bigger than bigBytes is read and written in pieces as it arrives, never held whole: every type, the same data', async () => {
  await r.call('FLUSHALL');
  const N = 20_000;
  const incompressible = randomBytes(600_000); // written raw: LZF cannot shrink it
  await r.set('b:string', incompressible);
  // Compressible, but still far over bigBytes once compressed: it arrives LZF-compressed and is decompressed a piece at a time.
  await r.set('b:lzf', Array.from({ length: 60_000 }, (_, i) => `entry ${(i * 7919) % 100_003} value ${i}\n`).join(''));
  await r.pexpire('b:lzf', 3_600_000);
  for (let i = 0; i < N; i += 1000) {
    const part = Array.from({ length: 1000 }, (_, k) => i + k);
    await r.rpush('b:list', ...part.map((n) => `element-${n}`));
    await r.sadd('b:set', ...part.map((n) => `member-${n}`));
    await r.zadd('b:zset', ...part.flatMap((n) => [n / 7, `z-${n}`]));
    await r.hset('b:hash', ...part.flatMap((n) => [`f-${n}`, `value-${n}`]));
    for (const n of part) await r.call('XADD', 'b:stream', `${n + 1}-0`, 'n', String(n), 'text', `event ${n}`);
  }
  await r.call('XGROUP', 'CREATE', 'b:stream', 'g', '0');
  await r.call('XREADGROUP', 'GROUP', 'g', 'alice', 'COUNT', '3', 'STREAMS', 'b:stream', '>');
  await r.set('small', 'stays a RESTORE payload');
  await r.call('SAVE');
  const file = readFileSync(join(dir, 'dump.rdb'));
  const bigBytes = 64 * 1024;
  const { got, maxBuffered } = parseAsItArrives(file, bigBytes);
  const pieces = got.filter((e): e is BigPiece => 'piece' in e);
  const keysInPieces = [...new Set(pieces.map((x) => str(x.key)))].sort();
  assert.deepEqual(keysInPieces, ['b:hash', 'b:list', 'b:lzf', 'b:set', 'b:stream', 'b:string', 'b:zset']);
  assert.deepEqual(
    got.filter((e) => !('piece' in e)).map((e) => str(e.key)),
    ['small'],
  );
  for (const k of keysInPieces) {
    const mine = pieces.filter((x) => str(x.key) === k);
    assert.ok(mine.length > 2, `${k} in ${mine.length} pieces`);
    assert.deepEqual(
      mine.map((x) => [x.first, x.last]),
      mine.map((_, i) => [i === 0, i === mine.length - 1]),
      `${k}: first and last marked`,
    );
  }
  // The parser never held much more than bigBytes, though each value is several times that.
  assert.ok(maxBuffered < 3 * bigBytes, `at most ${maxBuffered} bytes buffered`);

  // Written back under other names from the pieces' commands alone: the same data, TTL included.
  for (const x of pieces) {
    const cmds = pieceCommands({ ...x, key: Buffer.from(`copy:${str(x.key)}`) });
    for (const [name, ...args] of cmds) await r.callBuffer(name, ...args);
  }
  assert.ok((await r.getBuffer('copy:b:string'))!.equals(incompressible));
  assert.equal(await r.get('copy:b:lzf'), await r.get('b:lzf'));
  // The same absolute expiry (PEXPIRETIME, Redis 7): a PTTL read before the write-back drifted by
  // however long the write-back took, over 5 s on a loaded machine.
  assert.equal(
    await r.call('PEXPIRETIME', 'copy:b:lzf'),
    await r.call('PEXPIRETIME', 'b:lzf'),
    'the expiry came with the last piece',
  );
  assert.deepEqual(await r.lrange('copy:b:list', 0, -1), await r.lrange('b:list', 0, -1));
  assert.deepEqual((await r.smembers('copy:b:set')).sort(), (await r.smembers('b:set')).sort());
  assert.deepEqual(await r.zrange('copy:b:zset', 0, -1, 'WITHSCORES'), await r.zrange('b:zset', 0, -1, 'WITHSCORES'));
  assert.deepEqual(await r.hgetall('copy:b:hash'), await r.hgetall('b:hash'));
  assert.deepEqual(await r.call('XRANGE', 'copy:b:stream', '-', '+'), await r.call('XRANGE', 'b:stream', '-', '+'));
  const groups = async (k: string) => JSON.stringify(await r.call('XINFO', 'GROUPS', k));
  assert.equal(await groups('copy:b:stream'), await groups('b:stream'));
  assert.deepEqual(await r.call('XPENDING', 'copy:b:stream', 'g'), await r.call('XPENDING', 'b:stream', 'g'));
});

test('a value between bigBytes and twice that is read in pieces too: the parser stops holding one value at bigBytes', async () => {
  await r.call('FLUSHALL');
  // About 1.6 x bigBytes in the file: a hashtable set (over the listpack limit), one string per member.
  for (let i = 0; i < 8000; i += 1000)
    await r.sadd('mid:set', ...Array.from({ length: 1000 }, (_, k) => `member-${i + k}`));
  await r.call('SAVE');
  const file = readFileSync(join(dir, 'dump.rdb'));
  const bigBytes = 64 * 1024;
  assert.ok(file.length > 1.2 * bigBytes && file.length < 2 * bigBytes, `the file is ${file.length} bytes`);
  const { got, maxBuffered } = parseAsItArrives(file, bigBytes);
  const pieces = got.filter((e): e is BigPiece => 'piece' in e);
  assert.ok(
    pieces.length > 1,
    `the set came as ${got.length} entr${got.length === 1 ? 'y' : 'ies'} and ${pieces.length} pieces`,
  );
  assert.ok(maxBuffered < bigBytes + 8000, `at most ${maxBuffered} bytes buffered`);
  const members = pieces.flatMap((x) => (x.piece.type === 'set' ? x.piece.value.map(str) : []));
  assert.equal(new Set(members).size, 8000);
});

test('a big stream arriving in one large chunk is decoded a piece at a time, as the loader takes them, each piece a bounded number of entries', async () => {
  await r.call('FLUSHALL');
  // Entries share their field names, so the RDB stores them in a few bytes each: 8 MB of it
  // (a chunk the parser can be handed at once) decodes to hundreds of thousands of objects.
  const N = 60_000;
  for (let i = 0; i < N; i += 2000) {
    const p = r.pipeline();
    for (let n = i; n < i + 2000; n++) p.call('XADD', 'feed:stream', `${n + 1}-0`, 'n', String(n), 'e', 'x');
    await p.exec();
  }
  await r.call('SAVE');
  const file = readFileSync(join(dir, 'dump.rdb'));
  const bigBytes = 64 * 1024;
  assert.ok(file.length > 4 * bigBytes, `the file is ${file.length} bytes`);
  const p = new RdbParser({ raw: true, bigBytes });
  // The first chunk ends inside the stream, past bigBytes: the parser starts reading it in pieces.
  const cut = 2 * bigBytes;
  const early = [...p.feed(file.subarray(0, cut))] as Array<RawEntry | BigPiece>;
  const rest = p.feed(file.subarray(cut));
  const first = rest.next();
  assert.ok(!first.done && 'piece' in first.value, 'a piece of the stream comes first');
  // Taking one piece decoded one piece: the rest of the chunk waits for the next take.
  assert.ok(p.consumed < cut + 4 * bigBytes, `taking one piece consumed ${p.consumed} of ${file.length} bytes`);
  const pieces = [...early, first.value, ...rest, ...p.rest()].filter((e): e is BigPiece => 'piece' in e);
  const sizes = pieces.map((x) => (x.piece.type === 'stream' ? x.piece.value.entries.length : -1));
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    N,
  );
  // A piece stops at PIECE_ITEMS entries, give or take the one stream node (at most 100 entries) that crossed it.
  assert.ok(Math.max(...sizes) <= PIECE_ITEMS + 100, `the largest piece holds ${Math.max(...sizes)} entries`);
  assert.ok(pieces.at(-1)!.last && pieces[0]!.first);
});
