import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { startWriter } from '../support/writer.js';
import { parseInfo } from '../../src/redis/cluster-nodes.js';

// Source 7620-7625 (3 masters + replicas), target 7720-7729 (5 masters + replicas).
const BASE = 7620;
const MASTERS = [BASE, BASE + 1, BASE + 2];
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'sync5',
    '--base-port',
    String(BASE),
    '--keys',
    '20000',
    '--target-masters',
    '5',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'sync5']);
});

const stats = async (port: number) =>
  parseInfo((await withNode(port, password, (r) => r.call('INFO', 'stats'))) as string);
const offsetOf = async (port: number) =>
  Number(
    parseInfo((await withNode(port, password, (r) => r.call('INFO', 'replication'))) as string).master_repl_offset,
  );

test('3 -> 5 live sync under a steady write load, killed (SIGKILL) in the incremental phase and resumed: partial resync, no second full sync, nothing applied twice, verify finds nothing', async () => {
  // One master sends its RDB through a file (disk-based), the others diskless.
  await withNode(MASTERS[0]!, password, (r) => r.call('CONFIG', 'SET', 'repl-diskless-sync', 'no'));
  for (const p of MASTERS.slice(1))
    await withNode(p, password, (r) => r.call('CONFIG', 'SET', 'repl-diskless-sync', 'yes'));
  const before = await Promise.all(MASTERS.map(stats));

  const writer = startWriter(BASE, password);
  const args = ['run', 'migrate-sync', '--inventory', inventory, '--yes', '--param', 'max-lag=1mb'];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'catch-up:caught-up' });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  assert.match(first.out, /full sync loaded/);
  // Writes go on while nothing syncs: they must arrive through the continuation.
  const atKill = writer.count();
  await new Promise((r) => setTimeout(r, 1500));
  const total = await writer.stop();
  assert.ok(atKill > 1000 && total > atKill, `writes before (${atKill}) and after (${total - atKill}) the kill`);

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
  assert.ok(report.verify.compared >= 20000);
  // The source agrees: one full sync and one accepted partial sync per master, from us.
  const afterStats = await Promise.all(MASTERS.map(stats));
  for (let i = 0; i < 3; i++) {
    assert.equal(Number(afterStats[i]!.sync_full) - Number(before[i]!.sync_full), 1, `full syncs on ${MASTERS[i]}`);
    assert.equal(
      Number(afterStats[i]!.sync_partial_ok) - Number(before[i]!.sync_partial_ok),
      1,
      `partial syncs on ${MASTERS[i]}`,
    );
  }
  // Counters are exact (an INCR applied twice would show), and no checkpoint key is left behind.
  let leftovers = 0;
  for (let p = BASE + 100; p < BASE + 105; p++)
    leftovers += ((await withNode(p, password, (c) => c.call('KEYS', 'redis-runbook:*'))) as string[]).length;
  assert.equal(leftovers, 0);
  assert.equal(show.run.status, 'succeeded');
});

test('resumed after the source lost the stream (a backlog too small for the writes made meanwhile): the shard is synced in full again, and the log says why', async () => {
  const args = [
    'run',
    'migrate-sync',
    '--inventory',
    inventory,
    '--yes',
    '--allow-destructive',
    '--param',
    'max-lag=1mb',
    '--param',
    'rounds=2',
  ];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'catch-up:caught-up' });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  // 16 KB of backlog, then far more writes than that on every master.
  for (const p of MASTERS) await withNode(p, password, (r) => r.call('CONFIG', 'SET', 'repl-backlog-size', '16384'));
  try {
    // Write until every master's stream has moved well past its 16 KB backlog (Redis 7 keeps whole
    // 16 KB blocks, so up to about twice the size): a fixed 2 s of writes was too few on a slow machine.
    const startOffsets = await Promise.all(MASTERS.map(offsetOf));
    const writer = startWriter(BASE, password, 'lost');
    const deadline = Date.now() + 60_000;
    let moved: number[] = [];
    do {
      await new Promise((r) => setTimeout(r, 250));
      moved = (await Promise.all(MASTERS.map(offsetOf))).map((o, i) => o - startOffsets[i]!);
    } while (Math.min(...moved) < 256 * 1024 && Date.now() < deadline);
    await writer.stop();
    assert.ok(Math.min(...moved) >= 256 * 1024, `bytes written past the checkpoint on each master: ${moved}`);
    const r = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /full sync from 127\.0\.0\.1:\d+ \(the source refused to continue from the checkpoint/);
    const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
    const report = show.steps.find((s: { stepId: string }) => s.stepId === 'report').output;
    assert.deepEqual(
      report.shards.map((s: { fullSyncs: number }) => s.fullSyncs),
      [2, 2, 2],
    );
    assert.equal(report.verify.differ, 0);
  } finally {
    for (const p of MASTERS)
      await withNode(p, password, (r) => r.call('CONFIG', 'SET', 'repl-backlog-size', String(1 << 20)));
  }
});

test('killed while the full sync loads and resumed: a shard whose load did not finish is synced in full again ("did not finish loading"), the others continue', async () => {
  const args = ['run', 'migrate-sync', '--inventory', inventory, '--yes', '--allow-destructive', '--param', 'rounds=2'];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'full-sync:loading' });
  assert.equal(first.code, 137, first.out);
  const r = await cli(home, ['resume', runIdOf(first), '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /full sync from 127\.0\.0\.1:\d+ \(the last full sync did not finish loading\)/);
  const show = JSON.parse((await cli(home, ['show', runIdOf(first), '--json'])).stdout);
  const report = show.steps.find((s: { stepId: string }) => s.stepId === 'report').output;
  // Each shard: loaded before the kill and continued (1 + 1), cut off while loading and loaded again (2 + 0),
  // or not yet answered by its master at the kill (1 + 0).
  for (const s of report.shards)
    assert.ok(
      [
        [1, 1],
        [2, 0],
        [1, 0],
      ].some(([f, p]) => s.fullSyncs === f && s.partialSyncs === p),
      JSON.stringify(report.shards),
    );
  assert.equal(report.verify.differ, 0);
});
