import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { Redis } from 'ioredis';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { startWriter } from '../support/writer.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// Two TLS-only sandboxes (port 0, tls-port, TLS cluster bus and replication, client
// certificates required), each with its own CA: source 9300-9305, target 9320-9325.
// Nothing in them accepts a plain connection, so every connection the tool opens
// (pools, the replication link, the target pipe, the scan subscriber) must use TLS.
const SRC = 9300;
const TGT = 9320;
const home = tempStateDir('rr-tls-');
let inventory = '';
let plainInventory = '';
let password = '';
let tlsOpts: { ca: Buffer; cert: Buffer; key: Buffer };
let tgtPassword = '';
let tgtTls: { ca: Buffer; cert: Buffer; key: Buffer };

const files = (dir: string) => ({
  ca: readFileSync(join(dir, 'tls/ca.crt')),
  cert: readFileSync(join(dir, 'tls/client.crt')),
  key: readFileSync(join(dir, 'tls/client.key')),
});

before(async () => {
  const up = async (name: string, base: number, keys: number) => {
    const r = await cli(home, [
      'sandbox',
      'up',
      '--name',
      name,
      '--base-port',
      String(base),
      '--keys',
      String(keys),
      '--tls',
    ]);
    if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
    return r.stdout.trim().split('\n').pop()!;
  };
  const srcInv = await up('tsrc', SRC, 2000);
  const tgtInv = await up('ttgt', TGT, 0);
  password = readFileSync(join(dirname(srcInv), 'password'), 'utf8').trim();
  tgtPassword = readFileSync(join(dirname(tgtInv), 'password'), 'utf8').trim();
  tlsOpts = files(dirname(srcInv));
  tgtTls = files(dirname(tgtInv));
  // One inventory with both clusters, each with its own CA and client certificate (absolute paths).
  const abs = (inv: string, c: Record<string, unknown>) => {
    const d = dirname(inv);
    const t = c.tls as Record<string, string>;
    return {
      ...c,
      auth: { password: { file: join(d, 'password') } },
      tls: { ca: join(d, t.ca!), cert: join(d, t.cert!), key: join(d, t.key!) },
    };
  };
  const src = parse(readFileSync(srcInv, 'utf8'));
  const tgt = parse(readFileSync(tgtInv, 'utf8'));
  const doc = {
    clusters: { source: abs(srcInv, src.clusters.source), target: abs(tgtInv, tgt.clusters.source) },
    hosts: src.hosts,
  };
  inventory = join(home, 'inventory.yaml');
  writeFileSync(inventory, stringify(doc));
  const plain = structuredClone(doc);
  delete (plain.clusters.source as { tls?: unknown }).tls;
  plainInventory = join(home, 'plain.yaml');
  writeFileSync(plainInventory, stringify(plain));
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'tsrc']);
  await cli(home, ['sandbox', 'down', '--name', 'ttgt']);
});

async function withTls<T>(port: number, pw: string, tls: object, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    password: pw,
    tls,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    commandTimeout: 10000,
  });
  r.on('error', () => {});
  await r.connect();
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function masterOfSlot0(): Promise<{ master: string; replica: string }> {
  for (let i = 0; ; i++) {
    const nodes = parseClusterNodes(
      (await withTls(SRC + 1, password, tlsOpts, (r) => r.call('CLUSTER', 'NODES'))) as string,
    );
    const m = nodes.find((n) => n.flags.includes('master') && n.slots.some(([a, b]) => a <= 0 && 0 <= b));
    const rep = m && nodes.find((n) => n.masterId === m.id);
    if (m && rep) return { master: m.address, replica: rep.address };
    if (i > 100) throw new Error('no master with a replica for slot 0');
    await new Promise((s) => setTimeout(s, 50));
  }
}

test('a plain inventory against TLS-only nodes: a clear refusal naming tls:, quickly, without a stack', async () => {
  const started = Date.now();
  const r = await cli(home, ['check', '--inventory', plainInventory, '--cluster', 'source']);
  assert.equal(r.code, 3, r.out);
  assert.match(r.out, /E_(NODE|CLUSTER)_UNREACHABLE/);
  assert.match(r.out, /nodes accept only TLS, add `tls:` to clusters\.source/);
  assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
});

test('check and plan over TLS (CA, client certificate, verified server certificate)', async () => {
  for (const cluster of ['source', 'target']) {
    const r = await cli(home, ['check', '--inventory', inventory, '--cluster', cluster]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`cluster ${cluster}: OK`));
  }
  const { master } = await masterOfSlot0();
  const p = await cli(home, ['plan', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`]);
  assert.equal(p.code, 0, p.out);
  assert.match(p.stdout, /All preconditions pass/);
});

test('manual-failover over TLS swaps the roles', async () => {
  const { master, replica } = await masterOfSlot0();
  const r = await cli(home, ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`, '--yes']);
  assert.equal(r.code, 0, r.out);
  const after = await masterOfSlot0();
  assert.equal(after.master, replica);
  assert.equal(after.replica, master);
});

test('migrate-sync (builtin, psync) over TLS: full sync, killed, writes made meanwhile arrive by partial resync, verify finds nothing', async () => {
  const writer = startWriter(SRC, password, 'w', { redis: { tls: tlsOpts } });
  const args = [
    'run',
    'migrate-sync',
    '--inventory',
    inventory,
    '--yes',
    '--param',
    'engine=builtin',
    '--param',
    'mode=psync',
    '--param',
    'max-lag=1mb',
    '--param',
    'timeout=60',
  ];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'catch-up:caught-up' });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  assert.match(first.out, /full sync loaded/);
  await new Promise((r) => setTimeout(r, 500));
  const total = await writer.stop();
  assert.ok(total > 100, `writes made: ${total}`);
  const r = await cli(home, ['resume', id, '--yes']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /continued from 127\.0\.0\.1:\d+ at offset \d+ \(partial resync, no full sync\)/);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  const report = show.steps.find((s: { stepId: string }) => s.stepId === 'report').output;
  assert.deepEqual(
    report.shards.map((s: { fullSyncs: number; partialSyncs: number }) => [s.fullSyncs, s.partialSyncs]),
    [
      [1, 1],
      [1, 1],
      [1, 1],
    ],
  );
  assert.equal(report.verify.differ, 0);
  assert.ok(report.verify.compared >= 2000);
  // The stand-alone comparison agrees, over TLS on both sides.
  const v = await cli(home, ['verify', '--inventory', inventory, '--source', 'source', '--target', 'target']);
  assert.equal(v.code, 0, v.out);
  // The password never went into the journal or the output.
  assert.ok(!r.out.includes(password) && !first.out.includes(password));
  const keys = await withTls(TGT, tgtPassword, tgtTls, (c) => c.call('DBSIZE'));
  assert.ok(Number(keys) > 0);
});

test('migrate-sync (builtin, scan with keyspace notifications) over TLS: copied and followed, verify finds nothing', async () => {
  const writes = async () => {
    for (let i = 0; i < 50; i++)
      await withTls(SRC, password, tlsOpts, async (c) => {
        await c.call('SET', `{scan}:k${i}`, String(i)).catch(() => undefined);
      });
  };
  const run = cli(home, [
    'run',
    'migrate-sync',
    '--inventory',
    inventory,
    '--yes',
    '--allow-destructive',
    '--param',
    'mode=scan',
    '--param',
    'notify=true',
    '--param',
    'pauseWrites=true',
    '--param',
    'pauseSeconds=30',
    '--param',
    'timeout=60',
  ]);
  await writes();
  const r = await run;
  assert.equal(r.code, 0, r.out);
  const id = runIdOf(r);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  const report = show.steps.find((s: { stepId: string }) => s.stepId === 'report').output;
  assert.equal(report.verify.differ, 0);
});

test('engine=redis-shake against clusters whose tls: asks for verification and client certificates: refused before RedisShake starts', async () => {
  const standin = fileURLToPath(new URL('../../../test/fixtures/redis-shake-standin.sh', import.meta.url));
  const record = join(home, 'standin-record');
  const r = await cli(
    home,
    [
      'run',
      'migrate-sync',
      '--inventory',
      inventory,
      '--yes',
      '--allow-destructive',
      '--param',
      'engine=redis-shake',
      '--param',
      `shakeBinary=${standin}`,
      '--param',
      'rounds=1',
    ],
    { STANDIN_RECORD: record },
  );
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /E_SHAKE_TLS/);
  assert.match(r.out, /engine=builtin/);
  assert.ok(!r.out.includes(password));
  let started = true;
  try {
    readFileSync(record);
  } catch {
    started = false;
  }
  assert.equal(started, false, 'the stand-in never ran');
});
