import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Redis } from 'ioredis';
import { cli, tempStateDir } from '../support/cli.js';
import { startStandalone, type Standalone } from '../support/standalone.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { openEndpoint } from '../../src/data/endpoint.js';
import { verifyData } from '../../src/data/verify/verify.js';
import { entryCommands, classify, type Command } from '../../src/data/writer/apply.js';
import { SyncSession, type SyncRecord } from '../../src/data/engines/session.js';
import { StreamApplier, splitLong } from '../../src/data/writer/stream-apply.js';
import { assertRunning } from '../../src/steps/sync/sync-args.js';
import { APPLY_SCRIPT, checkpointKey, formatCheckpoint, parseCheckpoint } from '../../src/data/writer/checkpoint.js';
import { scanCopy } from '../../src/data/readers/scan-copy.js';
import { RdbLoader } from '../../src/data/writer/full-load.js';
import { randomBytes } from 'node:crypto';

// Source: a standalone master on 7697. Target: a 5-master cluster (no replicas) on 7520-7524.
const SRC = 7697;
const PW = 'sync-core-pw';
const home = tempStateDir('rr-sync-');
let source: Standalone;
let src: Redis;
let targetPool: ClusterPool;
let sourcePool: ClusterPool;

before(async () => {
  source = await startStandalone({
    port: SRC,
    dirPrefix: 'rr-syncsrc-',
    password: PW,
    args: ['--repl-diskless-sync-delay', '0'],
  });
  src = await source.client();
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'sync',
    '--base-port',
    '7520',
    '--masters',
    '5',
    '--replicas',
    '0',
    '--keys',
    '0',
  ]);
  if (r.code !== 0) throw new Error(r.out);
  const inv = r.stdout.trim().split('\n').pop()!;
  const pwFile = join(dirname(inv), 'password');
  targetPool = new ClusterPool(
    { name: 'target', seeds: ['127.0.0.1:7520'], auth: { password: { file: pwFile } } },
    { access: 'read-write' },
  );
  sourcePool = new ClusterPool(
    { name: 'source', seeds: [`127.0.0.1:${SRC}`], auth: { password: { env: 'RR_SYNC_CORE_PW' } } },
    { access: 'read-only' },
  );
  process.env.RR_SYNC_CORE_PW = PW;
  void readFileSync;
});
after(async () => {
  src?.disconnect();
  await source?.stop();
  await targetPool.close();
  await sourcePool.close();
  await cli(home, ['sandbox', 'down', '--name', 'sync']);
});

async function seed(prefix: string): Promise<void> {
  for (let i = 0; i < 300; i++) await src.set(`${prefix}:s:${i}`, `v${i}`);
  await src.set(`${prefix}:ttl`, 'x', 'PX', 600000);
  await src.rpush(`${prefix}:list`, ...Array.from({ length: 1200 }, (_, i) => `e${i}`));
  await src.sadd(`${prefix}:ints`, 1, 2, 3);
  await src.sadd(`${prefix}:set`, ...Array.from({ length: 700 }, (_, i) => `m${i}`));
  await src.zadd(`${prefix}:zset`, ...Array.from({ length: 600 }, (_, i) => [i / 3, `z${i}`]).flat());
  await src.zadd(`${prefix}:zinf`, 'inf', 'top', '-inf', 'bottom', 0.1, 'x');
  await src.hset(`${prefix}:hash`, ...Array.from({ length: 40 }, (_, i) => [`f${i}`, `v${i}`]).flat());
  await src.call('XADD', `${prefix}:stream`, '1-1', 'a', '1');
  await src.call('XADD', `${prefix}:stream`, '2-1', 'a', '2', 'b', '3');
  await src.call('XGROUP', 'CREATE', `${prefix}:stream`, 'g', '0');
  await src.call('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', '1', 'STREAMS', `${prefix}:stream`, '>');
  // A group never read: its entries_read is unknown, written as 2^64-1 in the RDB.
  await src.call('XGROUP', 'CREATE', `${prefix}:stream`, 'unread', '$');
  // NOACK reads replicate as XGROUP SETID / CREATECONSUMER inside MULTI (key not at argv[1]).
  await src.call('XREADGROUP', 'GROUP', 'g', 'c2', 'NOACK', 'COUNT', '1', 'STREAMS', `${prefix}:stream`, '>');
}

test('full sync of every type into a 5-master cluster, then the write stream (MULTI/EXEC, deletes, expiries) applied; a second session continues by partial resync: verify finds nothing', async () => {
  await src.call('FLUSHALL');
  await src.call('FUNCTION', 'FLUSH');
  await seed('a');
  // A function library in the RDB, and another one loaded during the incremental phase.
  await src.call('FUNCTION', 'LOAD', '#!lua name=rrlib1\nredis.register_function("rrf1", function() return 1 end)');
  let record: SyncRecord | undefined;
  const logs: string[] = [];
  const open = () =>
    SyncSession.start({
      id: 't1',
      source: sourcePool,
      target: targetPool,
      restorePayloads: true,
      bigKeyBytes: 4096,
      load: () => record && JSON.parse(JSON.stringify(record)),
      save: (r) => {
        record = JSON.parse(JSON.stringify(r));
      },
      log: (l) => logs.push(l),
    });
  const session = await open();
  const loaded = async (s: SyncSession) => {
    for (let i = 0; i < 300 && s.status().some((x) => x.phase !== 'stream'); i++)
      await new Promise((r) => setTimeout(r, 50));
  };
  await loaded(session);
  assert.equal(session.status()[0]!.phase, 'stream', logs.join('\n'));
  // Writes during the incremental phase, of every kind.
  await seed('b');
  await src.del('a:s:1', 'a:s:2');
  await src.mset('a:m1', '1', 'a:m2', '2');
  await src.call('MULTI');
  await src.incr('a:ctr');
  await src.lpush('a:list', 'head');
  await src.call('EXEC');
  await src.pexpire('a:s:3', 500000);
  await src.call('FUNCTION', 'LOAD', '#!lua name=rrlib2\nredis.register_function("rrf2", function() return 2 end)');
  await src.call('XACK', 'a:stream', 'g', '1-1');
  const caughtUp = async (s: SyncSession) => {
    const want = Number(/master_repl_offset:(\d+)/.exec((await src.call('INFO', 'replication')) as string)![1]);
    for (let i = 0; i < 300 && (s.status()[0]!.applied ?? 0) < want; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.status()[0]!.applied, want, logs.join('\n'));
  };
  await caughtUp(session);
  // The process goes away (links closed, checkpoints kept); more writes; a new session continues.
  await session.detach();
  for (let i = 0; i < 50; i++) await src.incr('a:ctr2');
  const again = await open();
  await loaded(again);
  await caughtUp(again);
  assert.equal(record!.shards[0]!.state.fullSyncs, 1, 'no second full sync');
  assert.equal(record!.shards[0]!.state.partialSyncs, 1);
  assert.equal(
    await targetPool.node((await openEndpoint(targetPool)).route(Buffer.from('a:ctr2')).address).call('GET', 'a:ctr2'),
    '50',
  );
  await again.stop();
  const target = await openEndpoint(targetPool);
  for (const m of target.masters) {
    assert.equal(await m.call('FCALL', 'rrf1', '0'), 1, `rrlib1 (from the RDB) on ${m.address}`);
    assert.equal(await m.call('FCALL', 'rrf2', '0'), 2, `rrlib2 (from the stream) on ${m.address}`);
    await m.call('FUNCTION', 'FLUSH');
  }
  const report = await verifyData(await openEndpoint(sourcePool), target, {
    mode: 'full',
    rounds: 1,
    qps: 0,
    batch: 256,
    sample: 100,
    extra: true,
    ttlToleranceMs: 3000,
    pauseMs: 0,
    page: 1000,
    streamGroups: true,
  });
  assert.equal(report.differences.length, 0, JSON.stringify(report.differences.slice(0, 5)));
  assert.ok(report.compared > 600);
  // Big values (over bigKeyBytes) were rebuilt with type commands, the rest restored from payloads.
  assert.ok(
    logs.some((l) => /rebuilt with type commands/.test(l)),
    logs.join('\n'),
  );
});

test('exactly once: after a crash that reached one target master but not another, the replayed stream is applied only where it was missing', async () => {
  const target = await openEndpoint(targetPool);
  // Two keys on two different masters.
  const a = Buffer.from('once:a');
  let b = Buffer.from('once:b0');
  for (let i = 1; target.route(b) === target.route(a); i++) b = Buffer.from(`once:b${i}`);
  const [A, B] = [target.route(a), target.route(b)];
  await A.call('DEL', a);
  await B.call('DEL', b);
  const replid = 'f'.repeat(40);
  const ckKey = (n: typeof A) => checkpointKey(target, n, 'once', 0);
  const incr = (k: Buffer) => [Buffer.from('INCR'), k];
  const first = new StreamApplier(
    target,
    { checkpointKey: ckKey, replid: () => replid, clearShard: async () => {} },
    0,
  );
  first.add(incr(a), 10);
  first.add(incr(b), 20);
  await first.flush();
  assert.equal(first.applied, 20);
  // The next batch (offsets 30 and 40) reached A with its checkpoint, then the process died before B's.
  await A.call('EVAL', APPLY_SCRIPT, '0', ckKey(A), formatCheckpoint({ replid, offset: 40 }), '2', 'INCR', a);
  // The resume reads each master's checkpoint and asks the source for the stream after the lowest.
  const cks = new Map<string, number>();
  for (const m of target.masters) cks.set(m.address, parseCheckpoint(await m.call('GET', ckKey(m)))!.offset);
  assert.equal(cks.get(A.address), 40);
  assert.equal(cks.get(B.address), 20);
  const from = Math.min(...cks.values());
  const again = new StreamApplier(
    target,
    { checkpointKey: ckKey, replid: () => replid, clearShard: async () => {}, skip: cks },
    from,
  );
  again.add(incr(a), 30);
  again.add(incr(b), 40);
  await again.flush();
  assert.equal(await A.call('GET', a), '2', 'not applied twice on A');
  assert.equal(await B.call('GET', b), '2', 'applied once on B');
  for (const m of target.masters) await m.call('DEL', ckKey(m));
});

test('a FLUSHALL in the stream clears only the shard (through its callback), every checkpoint moves past it at once, and a resume never replays it over later writes', async () => {
  const target = await openEndpoint(targetPool);
  const replid = 'e'.repeat(40);
  const ckKey = (n: (typeof target.masters)[number]) => checkpointKey(target, n, 'flush', 0);
  const k = Buffer.from('flush:k');
  const owner = target.route(k);
  await owner.call('DEL', k);
  let cleared = 0;
  const a = new StreamApplier(
    target,
    {
      checkpointKey: ckKey,
      replid: () => replid,
      clearShard: async () => {
        cleared++;
        await owner.call('DEL', k);
      },
    },
    0,
  );
  a.add([Buffer.from('SET'), k, Buffer.from('before')], 10);
  a.add([Buffer.from('FLUSHALL')], 20);
  a.add([Buffer.from('SET'), k, Buffer.from('after')], 30);
  await a.flush();
  assert.equal(cleared, 1);
  assert.equal(await owner.call('GET', k), 'after');
  // Right after the flush barrier every master was checkpointed at it (20) or later.
  for (const m of target.masters) assert.ok(parseCheckpoint(await m.call('GET', ckKey(m)))!.offset >= 20);
  // A resume from the lowest checkpoint replays nothing of the barrier.
  const skip = new Map<string, number>();
  for (const m of target.masters) skip.set(m.address, parseCheckpoint(await m.call('GET', ckKey(m)))!.offset);
  const b = new StreamApplier(
    target,
    {
      checkpointKey: ckKey,
      replid: () => replid,
      clearShard: async () => {
        cleared++;
      },
      skip,
    },
    Math.min(...skip.values()),
  );
  b.add([Buffer.from('FLUSHALL')], 20);
  b.add([Buffer.from('SET'), k, Buffer.from('after')], 30);
  await b.flush();
  assert.equal(cleared, 1, 'the FLUSHALL was not replayed');
  assert.equal(await owner.call('GET', k), 'after');
  for (const m of target.masters) await m.call('DEL', ckKey(m));
  await owner.call('DEL', k);
});

test('a variadic write longer than the script takes is cut into pieces that keep its meaning; others are not', () => {
  const big: Command = ['RPUSH', 'k', ...Array.from({ length: 9000 }, (_, i) => String(i))];
  const parts = splitLong(big)!;
  assert.ok(parts.length > 1 && parts.every((p) => p.length <= 3502 && p[0] === 'RPUSH' && p[1] === 'k'));
  assert.deepEqual(
    parts.flatMap((p) => p.slice(2)),
    big.slice(2),
  );
  const hset: Command = ['HSET', 'h', ...Array.from({ length: 9000 }, (_, i) => String(i))];
  assert.ok(
    splitLong(hset)!.every((p) => (p.length - 2) % 2 === 0),
    'field/value pairs stay together',
  );
  assert.equal(splitLong(['XADD', 'k', '*', ...Array.from({ length: 9000 }, () => 'x')]), undefined);
});

test('a replicated command the target refuses (another writer made the key a string) is kept as a failure: the sync is marked diverged and the wait steps refuse to go on', async () => {
  await src.call('FLUSHALL');
  let record: SyncRecord | undefined;
  const session = await SyncSession.start({
    id: 'diverge',
    source: sourcePool,
    target: targetPool,
    restorePayloads: true,
    bigKeyBytes: 8 << 20,
    load: () => record,
    save: (r) => {
      record = JSON.parse(JSON.stringify(r));
    },
    log: () => {},
  });
  try {
    for (let i = 0; i < 300 && session.status().some((x) => x.phase !== 'stream'); i++)
      await new Promise((r) => setTimeout(r, 20));
    const target = await openEndpoint(targetPool);
    await target.route(Buffer.from('div:k')).call('SET', 'div:k', 'written on the target');
    await src.lpush('div:k', 'a');
    for (let i = 0; i < 200 && !session.status()[0]!.failures; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(session.status()[0]!.failures, 1);
    assert.match(session.status()[0]!.lastError ?? '', /WRONGTYPE/);
    assert.throws(() => assertRunning(session), /E_SYNC_DIVERGED|differs from the source/);
    assert.deepEqual(record!.shards[0]!.state.failures?.length, 1, 'kept in the record (a resume keeps refusing)');
  } finally {
    await session.stop();
    await (await openEndpoint(targetPool)).route(Buffer.from('div:k')).call('DEL', 'div:k');
  }
});

test('entry commands: expired keys are skipped, big values are chunked, streams keep ids and groups; stream routing', () => {
  const key = Buffer.from('k');
  assert.deepEqual(
    entryCommands({ db: 0, key, expireAtMs: 1000, value: { type: 'string', value: Buffer.from('v') } }, 2000),
    [],
  );
  const list = entryCommands({
    db: 0,
    key,
    expireAtMs: null,
    value: { type: 'list', value: Array.from({ length: 1200 }, () => Buffer.from('x')) },
  });
  assert.deepEqual(
    list.map((c) => [c[0], c.length - 2]),
    [
      ['DEL', 0],
      ['RPUSH', 500],
      ['RPUSH', 500],
      ['RPUSH', 200],
    ],
  );
  assert.deepEqual(classify([Buffer.from('SELECT'), Buffer.from('0')]), { kind: 'skip' });
  assert.deepEqual(classify([Buffer.from('flushall')]), { kind: 'everywhere' });
  assert.equal(classify([Buffer.from('set'), Buffer.from('a'), Buffer.from('b')]).kind, 'key');
});

test('scan mode: DUMP + PTTL from a read-only source session, RESTORE ... REPLACE into the cluster; verify finds nothing', async () => {
  await src.call('FLUSHALL');
  await seed('c');
  const target = await openEndpoint(targetPool);
  // The source is read through a read-only session: scan mode never writes to it.
  const report = await scanCopy(await openEndpoint(sourcePool), target, { batch: 100 });
  assert.equal(report.keys, Number(await src.call('DBSIZE')));
  const v = await verifyData(await openEndpoint(sourcePool), target, {
    mode: 'full',
    rounds: 1,
    qps: 0,
    batch: 256,
    sample: 100,
    extra: false,
    ttlToleranceMs: 3000,
    pauseMs: 0,
    page: 1000,
    streamGroups: true,
  });
  assert.equal(v.differences.length, 0, JSON.stringify(v.differences.slice(0, 5)));
});

test('a big value loaded in pieces goes out in pipelines of about 1 MB, not one pipeline of the whole value', async () => {
  const target = await openEndpoint(targetPool);
  const loader = new RdbLoader(target, { payloadVersion: undefined, bigKeyBytes: 8 * 1024 * 1024 });
  const key = Buffer.from('big:{pipelined}');
  const value = randomBytes(24 * 1024 * 1024);
  const PIECE = 256 * 1024;
  for (let at = 0; at < value.length; at += PIECE) {
    loader.add({
      db: 0,
      key,
      expireAtMs: null,
      piece: { type: 'string', value: value.subarray(at, at + PIECE) },
      first: at === 0,
      last: at + PIECE >= value.length,
    });
    while (!loader.ready) await loader.drained();
  }
  await loader.finish();
  assert.ok(
    loader.largestPipeline <= 1.5 * 1024 * 1024,
    `the largest pipeline carried ${(loader.largestPipeline / 1048576).toFixed(1)} MB`,
  );
  const [[err, back]] = (await targetPool.node(target.route(key).address).pipeline([['GET', key]])) as [
    [Error | null, Buffer],
  ];
  assert.equal(err, null);
  assert.ok(Buffer.isBuffer(back) && back.equals(value), 'the value arrived whole and in order');
  await targetPool.node(target.route(key).address).call('DEL', key);
});
