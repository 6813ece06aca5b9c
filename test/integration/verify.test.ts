import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Cluster, Redis } from 'ioredis';
import { cli, sandbox, sandboxDown, tempStateDir, CLI } from '../support/cli.js';
import { loadInventory } from '../../src/inventory/load.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { openEndpoint } from '../../src/data/endpoint.js';
import { verifyData, VERIFY_DEFAULTS } from '../../src/data/verify/verify.js';

// A 3-master source and a 5-master target holding the same data: the normal case for verify.
const BASE = 7650;
const home = tempStateDir();
let inventory = '';
let password = '';
let src: Cluster;
let tgt: Cluster;

const cluster = (port: number) => {
  const c = new Cluster([{ host: '127.0.0.1', port }], { redisOptions: { password }, scaleReads: 'master' });
  c.on('error', () => {});
  return c;
};

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, [
    '--keys',
    '3000',
    '--replicas',
    '0',
    '--target-masters',
    '5',
    '--seed-target',
  ]));
  src = cluster(BASE);
  tgt = cluster(BASE + 100);
});
after(async () => {
  src.disconnect();
  tgt.disconnect();
  await sandboxDown(home);
});

const verify = (args: string[]) =>
  cli(home, ['verify', '--inventory', inventory, '--source', 'source', '--target', 'target', '--qps', '0', ...args]);
const lastLine = (out: string) => out.trim().split('\n').pop()!;

test('identical clusters (3 masters vs 5) verify clean in each mode', async () => {
  for (const mode of ['full', 'length', 'keys']) {
    const r = await verify(['--mode', mode]);
    assert.equal(r.code, 0, r.out);
    assert.equal(lastLine(r.stdout), 'verify: 3000 keys compared, 0 differ', mode);
    assert.match(r.stderr, /round 1\/3: \d+\/3000 keys \(\d+%\), \d+ keys\/s/, 'progress: keys done, keys/s');
  }
});

test('full and length modes read many keys per script call on each node (not one call per key), and still find a key missing on the target', async () => {
  const nodes = [0, 1, 2, 100, 101, 102, 103, 104].map((d) => new Redis({ port: BASE + d, password }));
  const calls = async () => {
    let n = 0;
    for (const r of nodes) n += Number(/cmdstat_evalsha_ro:calls=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0);
    return n;
  };
  const key = 'batch:missing';
  try {
    await src.set(key, 'v');
    for (const mode of ['full', 'length']) {
      await Promise.all(nodes.map((r) => r.config('RESETSTAT')));
      const r = await verify(['--mode', mode, '--rounds', '1']);
      assert.equal(lastLine(r.stdout), 'verify: 3001 keys compared, 1 differ', r.out);
      assert.match(r.stdout, /missing batch:missing/);
      // 3001 keys on each side: 64 keys a call is about 50 calls a side; one a key would be 6002.
      const n = await calls();
      assert.ok(n > 0 && n < 300, `${mode}: ${n} EVALSHA_RO calls for 3001 keys on each side`);
    }
  } finally {
    await src.del(key);
    for (const r of nodes) r.disconnect();
  }
});

test('planted differences of every kind and type are each found, stored and listed', async () => {
  // Keys made identical on both sides, then changed on the target only.
  for (const c of [src, tgt]) {
    await c.rpush('t:list', 'a', 'b', 'c');
    await c.zadd('t:zset', 1.5, 'x', 2.25, 'y');
    await c.hset('t:hash', 'f1', 'v1', 'f2', 'v2');
    await c.set('t:ttl', 'v', 'EX', 3600);
    await c.set('t:type', 'v');
    await c.set('t:gone', 'v');
    await c.sadd('t:set', 'm1', 'm2');
    await c.set('t:str', 'same');
  }
  await tgt.lset('t:list', 1, 'B');
  await tgt.zadd('t:zset', 2.5, 'y');
  await tgt.hset('t:hash', 'f2', 'changed');
  await tgt.persist('t:ttl');
  await tgt.del('t:type');
  await tgt.rpush('t:type', 'v');
  await tgt.del('t:gone');
  await tgt.srem('t:set', 'm2');
  await tgt.sadd('t:set', 'm3');
  await tgt.set('t:str', 'different');
  await tgt.set('t:only-in-target', 'x');
  try {
    const r = await verify(['--rounds', '1', '--extra', '--json']);
    assert.equal(r.code, 1, r.out);
    const { runId, differences, report } = JSON.parse(r.stdout);
    const kind = Object.fromEntries(differences.map((d: { key: string; kind: string }) => [d.key, d.kind]));
    assert.deepEqual(kind, {
      't:list': 'value',
      't:zset': 'value',
      't:hash': 'value',
      't:ttl': 'ttl',
      't:type': 'type',
      't:gone': 'missing',
      't:set': 'value',
      't:str': 'value',
      't:only-in-target': 'extra',
    });
    const zset = differences.find((d: { key: string }) => d.key === 't:zset');
    assert.match(zset.source, /score 2.25/);
    assert.match(zset.target, /score 2.5/);
    assert.match(differences.find((d: { key: string }) => d.key === 't:list').target, /list\[1\] = "B"/);
    assert.equal(report.differ, 9);
    assert.equal(report.compared, 3008, 'the source keys; the target-only key is not counted as compared');

    const show = JSON.parse((await cli(home, ['show', runId, '--json'])).stdout);
    assert.equal(show.findings.length, 9);
    assert.equal(show.run.status, 'failed');
    const text = await cli(home, ['show', runId]);
    assert.match(text.stdout, /findings: 9/);

    // Without --extra the target-only key is not looked for; length mode cannot see an element change.
    const noExtra = await verify(['--rounds', '1']);
    assert.equal(lastLine(noExtra.stdout), 'verify: 3008 keys compared, 8 differ');
    const length = await verify(['--rounds', '1', '--mode', 'length', '--json']);
    const lengthKeys = JSON.parse(length.stdout)
      .differences.map((d: { key: string }) => d.key)
      .sort();
    assert.deepEqual(
      lengthKeys,
      ['t:gone', 't:str', 't:ttl', 't:type'],
      'length mode sees only what changes type, length or TTL',
    );
    // --no-ttl compares what RedisFullCheck compares: the TTL difference alone is not reported.
    const noTtl = await verify(['--rounds', '1', '--no-ttl', '--json']);
    const noTtlKeys = JSON.parse(noTtl.stdout)
      .differences.map((d: { key: string }) => d.key)
      .sort();
    assert.deepEqual(noTtlKeys, ['t:gone', 't:hash', 't:list', 't:set', 't:str', 't:type', 't:zset']);
  } finally {
    for (const k of ['t:list', 't:zset', 't:hash', 't:ttl', 't:type', 't:gone', 't:set', 't:str'])
      await Promise.all([src.del(k), tgt.del(k)]);
    await tgt.del('t:only-in-target');
  }
});

test('the multi-command path (servers before 7.0) and the script path find the same differences', async () => {
  for (const c of [src, tgt]) {
    await c.rpush('m:list', 'a', 'b');
    await c.set('m:ttl', 'v', 'EX', 600);
    await c.hset('m:hash', 'f', 'v');
  }
  await tgt.rpush('m:list', 'c');
  await tgt.persist('m:ttl');
  await tgt.del('m:hash');
  await tgt.set('m:hash', 'now a string');
  const inv = loadInventory(inventory);
  const pools = ['source', 'target'].map((c) => new ClusterPool(inv.clusters[c]!, { access: 'read-only' }));
  try {
    const [s, t] = await Promise.all(pools.map((p) => openEndpoint(p)));
    assert.ok(s!.scripts && t!.scripts, 'Redis 7 here');
    const summary = (r: Awaited<ReturnType<typeof verifyData>>) =>
      r.differences.map((d) => `${d.key} ${d.kind}`).sort();
    const withScript = await verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1 });
    const without = await verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1, useScripts: false });
    assert.deepEqual(summary(withScript), ['m:hash type', 'm:list value', 'm:ttl ttl']);
    assert.deepEqual(summary(without), summary(withScript));
    assert.equal(without.compared, withScript.compared);
    assert.ok(
      without.reads.sourcePipelines > withScript.reads.sourcePipelines,
      'the multi-command path asks the source for types first',
    );
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    for (const k of ['m:list', 'm:ttl', 'm:hash']) await Promise.all([src.del(k), tgt.del(k)]);
  }
});

test('full mode compares server-made digests first: values written in other orders are equal, and each changed element is found and named as a whole read names it', async () => {
  // Other insertion orders on each side: listpack hashes and sets iterate in insertion order,
  // big ones (hashtable, 300 fields) in their table's order; the digest sorts them.
  const fields = Array.from({ length: 300 }, (_, i) => [`f${i}`, `v${i}`]);
  const members = Array.from({ length: 300 }, (_, i) => `m${i}`);
  const write = async (c: Cluster, reverse: boolean) => {
    const order = <T>(xs: T[]) => (reverse ? [...xs].reverse() : xs);
    await c.hset(
      'd:hash-small',
      ...order([
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ]).flat(),
    );
    await c.hset('d:hash-big', ...order(fields).flat());
    await c.sadd('d:set-small', ...order(['x', 'y', 'z']));
    await c.sadd('d:set-big', ...order(members));
    await c.sadd('d:intset', ...order(['3', '1', '2']));
    await c.zadd(
      'd:zset',
      ...order([
        ['0.1', 'a'],
        ['2.5', 'b'],
        ['1e3', 'c'],
      ]).flat(),
    );
    await c.rpush('d:list', 'one', 'two', Buffer.from([0, 255, 13, 10]));
    await c.xadd('d:stream', '1-1', 'k', 'v');
    await c.xadd('d:stream', '2-1', 'k', 'w', 'k2', '');
    await c.set('d:string', Buffer.from([0, 1, 2, 255]));
  };
  const keys = ['d:hash-small', 'd:hash-big', 'd:set-small', 'd:set-big', 'd:intset', 'd:zset', 'd:list', 'd:stream'];
  await write(src, false);
  await write(tgt, true);
  const inv = loadInventory(inventory);
  const pools = ['source', 'target'].map((c) => new ClusterPool(inv.clusters[c]!, { access: 'read-only' }));
  try {
    const [s, t] = await Promise.all(pools.map((p) => openEndpoint(p)));
    const run = (digests: boolean) => verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1, digests });
    const clean = await run(true);
    assert.deepEqual(
      clean.digests,
      { used: true, reread: 0, scoresAsPrinted: true },
      'equal values in other orders give equal digests',
    );
    assert.equal(clean.differences.length, 0);
    // One changed element in each value: same length, so only the digest (or the whole value) tells.
    await tgt.hset('d:hash-small', 'b', 'X');
    await tgt.hset('d:hash-big', 'f150', 'X');
    await tgt.srem('d:set-small', 'y');
    await tgt.sadd('d:set-small', 'Y');
    await tgt.srem('d:set-big', 'm7');
    await tgt.sadd('d:set-big', 'm7x');
    await tgt.srem('d:intset', '2');
    await tgt.sadd('d:intset', '4');
    await tgt.zadd('d:zset', '2.5000001', 'b');
    await tgt.lset('d:list', 2, Buffer.from([0, 255, 13, 11]));
    await tgt.del('d:stream');
    await tgt.xadd('d:stream', '1-1', 'k', 'v');
    await tgt.xadd('d:stream', '2-1', 'k', 'w', 'k2', 'x');
    const describe = (r: Awaited<ReturnType<typeof verifyData>>) =>
      r.differences.map((d) => `${d.key} ${d.kind}: ${d.source} / ${d.target}`).sort();
    const [byDigest, whole] = [await run(true), await run(false)];
    assert.equal(byDigest.digests.reread, keys.length, 'each changed key read again whole, no other');
    assert.equal(whole.digests.used, false);
    assert.deepEqual(byDigest.differences.map((d) => String(d.key)).sort(), [...keys].sort());
    assert.deepEqual(describe(byDigest), describe(whole), 'named the same way on both paths');
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    for (const k of [...keys, 'd:string']) await Promise.all([src.del(k), tgt.del(k)]);
  }
});

test('a key that converges between rounds is not reported', async () => {
  await src.set('t:moving', 'final');
  await tgt.set('t:moving', 'old');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'verify',
      '--inventory',
      inventory,
      '--source',
      'source',
      '--target',
      'target',
      '--qps',
      '0',
      '--rounds',
      '2',
      '--pause',
      '3000',
    ],
    { env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' } },
  );
  let out = '';
  let fixed = false;
  const code = await new Promise<number>((resolve) => {
    child.stdout.on('data', async (d) => {
      out += d;
      // A live sync catches up during the pause before round 2.
      if (!fixed && /round 1: \d+ keys checked, 1 differ/.test(out)) {
        fixed = true;
        await tgt.set('t:moving', 'final');
      }
    });
    child.on('close', (c) => resolve(c ?? 1));
  });
  assert.ok(fixed, out);
  assert.equal(code, 0, out);
  assert.match(out, /round 2: 1 keys checked, 0 differ/);
  assert.equal(lastLine(out), 'verify: 3001 keys compared, 0 differ');
  await Promise.all([src.del('t:moving'), tgt.del('t:moving')]);
});

test('big keys are compared in pages, and a change deep inside one is found', async () => {
  const listLen = 200_000;
  const fields = 100_000;
  for (const c of [src, tgt]) {
    for (let i = 0; i < listLen; i += 10_000)
      await c.rpush('t:biglist', ...Array.from({ length: 10_000 }, (_, k) => `e${i + k}`));
    for (let i = 0; i < fields; i += 10_000)
      await c.hset(
        't:bighash',
        Object.fromEntries(Array.from({ length: 10_000 }, (_, k) => [`f${i + k}`, `v${i + k}`])),
      );
    for (let i = 0; i < 50_000; i += 10_000)
      await c.zadd('t:bigzset', ...Array.from({ length: 10_000 }, (_, k) => [String((i + k) / 3), `m${i + k}`]).flat());
  }
  const clean = JSON.parse((await verify(['--rounds', '1', '--json'])).stdout);
  assert.equal(clean.report.differ, 0, JSON.stringify(clean.differences));
  assert.equal(clean.report.bigKeys, 3);
  assert.ok(clean.report.pages >= listLen / 1000, `read in pages of 1000 (${clean.report.pages} pages)`);

  await tgt.lset('t:biglist', 150_000, 'changed');
  await tgt.hset('t:bighash', 'f77777', 'changed');
  await tgt.zadd('t:bigzset', 99, 'm40000');
  const r = JSON.parse((await verify(['--rounds', '1', '--json'])).stdout);
  const byKey = Object.fromEntries(
    r.differences.map((d: { key: string; source: string; target: string }) => [d.key, d]),
  );
  assert.match(byKey['t:biglist'].target, /list\[150000\] = "changed"/);
  assert.match(byKey['t:bighash'].target, /field "f77777" = changed/);
  assert.match(byKey['t:bigzset'].target, /m40000" = 99/);
  for (const k of ['t:biglist', 't:bighash', 't:bigzset']) await Promise.all([src.del(k), tgt.del(k)]);
});

test('a string longer than a page is compared in GETRANGE pages, on both read paths, and a change deep inside it is found', async () => {
  const MiB = 1 << 20;
  const blob = Buffer.alloc((5 * MiB) / 2, 'redis-runbook ');
  await Promise.all([src.set('t:bigstring', blob), tgt.set('t:bigstring', blob)]);
  const inv = loadInventory(inventory);
  const pools = ['source', 'target'].map((c) => new ClusterPool(inv.clusters[c]!, { access: 'read-only' }));
  try {
    const [s, t] = await Promise.all(pools.map((p) => openEndpoint(p)));
    for (const useScripts of [true, false]) {
      const clean = await verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1, useScripts });
      assert.equal(clean.differences.length, 0, JSON.stringify(clean.differences));
      assert.equal(clean.bigKeys, 1, 'the 2.5 MiB string is the one key read in pages');
      assert.equal(clean.pages, 3, 'three pages of 1 MiB');
    }
    await tgt.setrange('t:bigstring', 2 * MiB + 5, 'CHANGED');
    for (const useScripts of [true, false]) {
      const r = await verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1, useScripts });
      assert.deepEqual(
        r.differences.map((d) => [d.key.toString(), d.kind]),
        [['t:bigstring', 'value']],
      );
      assert.match(r.differences[0]!.target, /^string byte 2097157 = "CHANGED/);
    }
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all([src.del('t:bigstring'), tgt.del('t:bigstring')]);
  }
});

test('standalone servers compare too; a sample checks a fraction; bad options exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-standalone-'));
  const ports = [7690, 7691];
  for (const p of ports)
    assert.equal(
      spawnSync('redis-server', [
        '--port',
        String(p),
        '--bind',
        '127.0.0.1',
        '--daemonize',
        'yes',
        '--save',
        '',
        '--dir',
        dir,
        '--pidfile',
        join(dir, `${p}.pid`),
        '--logfile',
        join(dir, `${p}.log`),
      ]).status,
      0,
    );
  try {
    await new Promise((s) => setTimeout(s, 300));
    const conns = ports.map((port) => new Redis({ port, host: '127.0.0.1' }));
    try {
      for (const c of conns) for (let i = 0; i < 500; i++) await c.set(`k${i}`, `v${i}`);
      await conns[1]!.set('k7', 'other');
      const inv = join(dir, 'inv.yaml');
      writeFileSync(
        inv,
        `clusters:\n  a: { seeds: ["127.0.0.1:${ports[0]}"] }\n  b: { seeds: ["127.0.0.1:${ports[1]}"] }\n`,
      );
      const r = await cli(home, ['verify', '--inventory', inv, '--source', 'a', '--target', 'b', '--rounds', '1']);
      assert.equal(r.code, 1, r.out);
      assert.match(r.stdout, /value\s+k7: source string "v7" \| target string "other"/);
      assert.equal(lastLine(r.stdout), 'verify: 500 keys compared, 1 differ');
      const sample = await cli(home, [
        'verify',
        '--inventory',
        inv,
        '--source',
        'a',
        '--target',
        'b',
        '--rounds',
        '1',
        '--sample',
        '10',
        '--json',
      ]);
      const compared = JSON.parse(sample.stdout).report.compared;
      assert.ok(compared > 10 && compared < 150, `about 10% of 500 keys, got ${compared}`);
    } finally {
      for (const c of conns) c.disconnect();
    }
  } finally {
    for (const p of ports) spawnSync('redis-cli', ['-p', String(p), 'shutdown', 'nosave']);
  }
  const bad = await verify(['--mode', 'exact']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /mode=exact is not allowed\n.*full, length, keys/);
  const same = await cli(home, ['verify', '--inventory', inventory, '--source', 'source', '--target', 'source']);
  assert.equal(same.code, 2);
});
