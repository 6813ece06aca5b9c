import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { cli, tempStateDir } from '../support/cli.js';
import { guided, ENTER } from '../support/pty.js';
import { withNode, roles } from '../support/cluster.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { openEndpoint } from '../../src/data/endpoint.js';
import { verifyData } from '../../src/data/verify/verify.js';
import { SyncSession, type SyncRecord } from '../../src/data/engines/session.js';
import { startWriter } from '../support/writer.js';
import { keySlot } from '../../src/redis/slots.js';

// Source 7630-7635 (3 masters + replicas), target 7730-7735 (3 masters + replicas).
const BASE = 7630;
const home = tempStateDir();
let inventory = '';
let password = '';
const standin = fileURLToPath(new URL('../../../test/fixtures/redis-shake-standin.sh', import.meta.url));

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'sync3',
    '--base-port',
    String(BASE),
    '--keys',
    '20000',
    '--target-masters',
    '3',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'sync3']);
});

const unpause = async () => {
  for (let p = BASE; p < BASE + 3; p++) await withNode(p, password, (c) => c.call('CLIENT', 'UNPAUSE'));
};

const report = async (out: string) => {
  const id = /run (\S+) (succeeded|failed|stopped)/.exec(out)![1]!;
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  return { show, out: show.steps.find((s: { stepId: string }) => s.stepId === 'report')?.output };
};

/** The source master (or, with `offset` 100, the target master) owning a key's slot in these 3-master sandboxes. */
const portOf = (key: string, offset = 0) => {
  const slot = keySlot(key);
  return BASE + offset + (slot < 5461 ? 0 : slot < 10923 ? 1 : 2);
};

interface Synced {
  session: SyncSession;
  source: ClusterPool;
  target: ClusterPool;
  record(): SyncRecord | undefined;
  logs: string[];
}

/** A built-in sync session run in this process, past every shard's full sync; closed afterwards whatever happens. */
async function withSession(id: string, fn: (s: Synced) => Promise<void>): Promise<void> {
  let record: SyncRecord | undefined;
  const logs: string[] = [];
  const pw = join(dirname(inventory), 'password');
  const source = new ClusterPool(
    { name: 'source', seeds: [`127.0.0.1:${BASE}`, `127.0.0.1:${BASE + 1}`], auth: { password: { file: pw } } },
    { access: 'read-write' },
  );
  const target = new ClusterPool(
    { name: 'target', seeds: [`127.0.0.1:${BASE + 100}`, `127.0.0.1:${BASE + 101}`], auth: { password: { file: pw } } },
    { access: 'read-write' },
  );
  const session = await SyncSession.start({
    id,
    source,
    target,
    restorePayloads: true,
    bigKeyBytes: 8 << 20,
    load: () => record,
    save: (r) => {
      record = JSON.parse(JSON.stringify(r));
    },
    log: (l) => logs.push(l),
  });
  try {
    for (let i = 0; i < 600 && session.status().some((x) => x.phase !== 'stream'); i++)
      await new Promise((r) => setTimeout(r, 50));
    await fn({ session, source, target, record: () => record, logs });
  } finally {
    await session.detach().catch(() => undefined);
    await source.close();
    await target.close();
  }
}

test('3 -> 3 psync with a big key (rebuilt in chunks, not one RESTORE) and writes during the full sync: verify finds nothing', async () => {
  // A 12 MB hash of random (incompressible) values: over bigKeyBytes (8 MB) in the RDB too, so it is rebuilt with HSET chunks.
  await withNode(portOf('{big}:hash'), password, async (r) => {
    for (let i = 0; i < 100; i++)
      await r.hset(
        '{big}:hash',
        ...Array.from({ length: 1000 }, (_, j) => [`f${i * 1000 + j}`, randomBytes(90).toString('base64')]).flat(),
      );
  });
  const writer = startWriter(BASE, password, 'full');
  // Cut-over pauses source writes until the target holds them all; the comparison runs within the pause.
  const r = await cli(home, [
    'run',
    'migrate-sync',
    '--inventory',
    inventory,
    '--yes',
    '--param',
    'max-lag=1mb',
    '--param',
    'pauseWrites=true',
    '--param',
    'pauseSeconds=60',
  ]);
  await unpause();
  const writes = await writer.stop();
  assert.equal(r.code, 0, r.out);
  assert.ok(writes > 1000, `${writes} writes`);
  assert.match(r.out, /CLIENT PAUSE 60000 WRITE|writes to source paused until/);
  assert.match(r.out, /\(1 rebuilt with type commands\)/);
  const { out } = await report(r.out);
  assert.equal(out.verify.differ, 0);
  assert.ok(out.verify.compared > 20000);
  assert.equal(
    out.shards.reduce((n: number, s: { fullSyncs: number }) => n + s.fullSyncs, 0),
    3,
  );
});

test('scan mode with keyspace notifications, into a target that holds keys (confirmed): changes during and after the copy arrive, notify-keyspace-events is set back', async () => {
  const cfg = async () =>
    ((await withNode(BASE + 1, password, (c) => c.call('CONFIG', 'GET', 'notify-keyspace-events'))) as string[])[1];
  const before = await cfg();
  // The target holds the keys of the test before: refused unattended without --allow-destructive.
  const refused = await cli(home, [
    'run',
    'migrate-sync',
    '--inventory',
    inventory,
    '--yes',
    '--param',
    'mode=scan',
    '--param',
    'notify=true',
  ]);
  assert.equal(refused.code, 2, refused.out);
  assert.match(refused.out + refused.stderr, /E_DESTRUCTIVE/);
  const writer = startWriter(BASE, password, 'scan');
  const r = await cli(home, [
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
    'pauseSeconds=60',
  ]);
  await unpause();
  const writes = await writer.stop();
  assert.equal(r.code, 0, r.out);
  assert.ok(writes > 1000, `${writes} writes`);
  assert.match(r.out, /deleted \d+ keys the target held in these slots before the copy/);
  const { out } = await report(r.out);
  assert.equal(out.verify.differ, 0);
  assert.equal(await cfg(), before, 'notify-keyspace-events set back');
});

test('engine=redis-shake: a missing binary is a clear precondition error; a stand-in binary (RedisShake v4 log lines, copies nothing) is started with a 0600 config, followed through its phases, stopped at cut-over, its config deleted, and the comparison catches that nothing was copied', async () => {
  const missing = await cli(home, ['plan', 'migrate-sync', '--inventory', inventory, '--param', 'engine=redis-shake']);
  assert.equal(missing.code, 3, missing.out);
  assert.match(missing.out, /redis-shake binary: engine=redis-shake needs the RedisShake binary/);
  const record = join(tmpdir(), `rr-standin-${process.pid}`);
  // A key only the source has: a sync engine that copies nothing must not end in success.
  await withNode(portOf('standin'), password, (c) => c.set('standin', 'only in the source'));
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
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /step verify failed: postcondition failed: no differences: \d+ of \d+ keys differ \(.*missing \d+/,
  );
  assert.match(r.out, /RedisShake source 0: saving/);
  assert.match(r.out, /RedisShake source 2: incremental/);
  const [pid, conf] = readFileSync(record, 'utf8').trim().split(' ');
  assert.equal(existsSync(conf!), false, 'the config (it holds passwords) is deleted');
  assert.throws(() => process.kill(Number(pid), 0), 'the process is stopped at cut-over');
  assert.match(r.out, /RedisShake: dial retry, from config: password = /, 'the stand-in echoed its config line');
  assert.doesNotMatch(r.out, new RegExp(password));
  const id = /run (\S+) failed/.exec(r.out)![1]!;
  assert.equal((await cli(home, ['abort', id])).code, 0);
});

test('a planned failover of a source master during the incremental sync is followed: the link moves to the promoted replica and continues (partial resync through the replication id it inherited), no second full sync', async () => {
  await withSession('failover', async ({ session, source, target, record, logs }) => {
    const writer = startWriter(BASE, password, 'fo');
    await new Promise((r) => setTimeout(r, 500));
    const { masterOfSlot0, replicaOfIt } = await roles(BASE, password, 0);
    await withNode(Number(replicaOfIt.split(':')[1]), password, (c) => c.call('CLUSTER', 'FAILOVER'));
    for (let i = 0; i < 200 && (await roles(BASE + 1, password, 0)).masterOfSlot0 !== replicaOfIt; i++)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1500));
    await writer.stop();
    assert.ok(await session.catchUp({ timeoutMs: 20000 }), logs.join('\n'));
    const shard0 = session.status().find((s) => s.ranges.startsWith('0-'))!;
    assert.equal(shard0.master, replicaOfIt, `followed the promotion of ${replicaOfIt} (was ${masterOfSlot0})`);
    const st = record()!.shards[shard0.shard]!.state;
    assert.equal(st.fullSyncs, 1, logs.join('\n'));
    assert.equal(st.partialSyncs, 1, logs.join('\n'));
    assert.ok(
      logs.some((l) => /the source master is now/.test(l)),
      logs.join('\n'),
    );
    await session.stop();
    const v = await verifyData(await openEndpoint(source), await openEndpoint(target), {
      mode: 'full',
      rounds: 1,
      qps: 0,
      batch: 256,
      sample: 100,
      extra: true,
      ttlToleranceMs: 5000,
      pauseMs: 0,
      page: 1000,
      streamGroups: true,
    });
    assert.equal(v.differences.length, 0, JSON.stringify(v.differences.slice(0, 5)));
  });
});

test('guided: every step is asked; the sync runs on while the operator reads the cut-over prompt (it shows the lag), and writes made meanwhile are in the target', async () => {
  // An empty target, so no step is destructive and each prompt takes ENTER (continue).
  for (let p = BASE + 100; p < BASE + 103; p++) await withNode(p, password, (c) => c.call('FLUSHALL'));
  let written: Promise<void> | undefined;
  let cutOverScreen = '';
  const s = await guided(home, ['run', 'migrate-sync', '--inventory', inventory, '--param', 'rounds=1'], (n, out) => {
    if (n === 6) {
      cutOverScreen = out; // only the cut-over step's check prints 'lag now'
      written = withNode(portOf('{guided}:during-prompt'), password, async (c) => {
        await c.set('{guided}:during-prompt', 'yes');
      });
    }
    return ENTER;
  });
  assert.equal(s.code, 0, s.out);
  assert.match(cutOverScreen, /lag now: shard 0 \(0-5460 @ 127\.0\.0\.1:\d+\): incremental, lag \d+/);
  assert.match(cutOverScreen, /Run step \[cut-over\]\?/);
  await written;
  const id = /run (\S+) succeeded/.exec(s.out)![1]!;
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(
    show.audit.filter(
      (a: { command: string; args: string[] }) => a.command === 'OPERATOR-CONTINUE' && a.args[0] === 'guided',
    ).length,
    8,
  );
  assert.equal(
    await withNode(portOf('{guided}:during-prompt', 100), password, (c) => c.get('{guided}:during-prompt')),
    'yes',
  );
});

test('a planned failover of a target master during the incremental sync under load: the sync reads the target again, continues from the checkpoints the promoted replica holds, and verify finds nothing', async () => {
  for (let p = BASE + 100; p < BASE + 103; p++) await withNode(p, password, (c) => c.call('FLUSHALL'));
  await withSession('target-failover', async ({ session, source, target, record, logs }) => {
    const writer = startWriter(BASE, password, 'tfo');
    // The sync has applied writes (its checkpoints moved past the full sync) before the failover.
    for (let i = 0; i < 200 && writer.count() < 3000; i++) await new Promise((r) => setTimeout(r, 25));
    const before = session.status().map((s) => s.applied ?? 0);
    for (let i = 0; i < 200 && session.status().some((s, j) => (s.applied ?? 0) <= before[j]!); i++)
      await new Promise((r) => setTimeout(r, 25));
    const { replicaOfIt } = await roles(BASE + 100, password, 0);
    await withNode(Number(replicaOfIt.split(':')[1]), password, (c) => c.call('CLUSTER', 'FAILOVER'));
    for (let i = 0; i < 200 && (await roles(BASE + 101, password, 0)).masterOfSlot0 !== replicaOfIt; i++)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1500));
    await writer.stop();
    assert.ok(await session.catchUp({ timeoutMs: 30000 }), logs.join('\n'));
    assert.ok(
      session.status().every((s) => !s.failures),
      logs.join('\n'),
    );
    assert.ok(
      record()!.shards.every((s) => s.state.fullSyncs === 1),
      `no second full sync: ${logs.join('\n')}`,
    );
    // It noticed (the demoted master refused the batch), read the target again and continued past the full sync.
    assert.ok(
      logs.some((l) => /READONLY|MOVED/.test(l)),
      logs.join('\n'),
    );
    const continued = logs
      .map((l) => /continued from \S+ at offset (\d+)/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => Number(m[1]));
    assert.ok(continued.length >= 1, logs.join('\n'));
    assert.ok(
      continued.some((o) => before.some((b) => o >= b)),
      `continued from the checkpoints (${continued}), not from the full sync (${before})`,
    );
    await session.stop();
    const v = await verifyData(await openEndpoint(source), await openEndpoint(target), {
      mode: 'full',
      rounds: 2,
      qps: 0,
      batch: 256,
      sample: 100,
      extra: true,
      ttlToleranceMs: 5000,
      pauseMs: 500,
      page: 1000,
      streamGroups: true,
    });
    assert.equal(v.differences.length, 0, JSON.stringify(v.differences.slice(0, 5)));
  });
});
