import assert from 'node:assert/strict';
import { runIdOf } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { figure, showRun, underLoad, type Show } from '../support/write-load.js';
import { test } from '../support/reliability.js';
import { explained, migrationSandbox } from '../support/write-load-migration.js';

// Source 12600-12605, target 12700-12705: migrate-sync while a writer works on the
// source; every write acknowledged before the cut-over must be on the target.
const sb = migrationSandbox(12600, 'wls');
const { home, BASE, SOURCE_MASTERS, carried, release } = sb;

test('migrate-sync under write load: every write acknowledged before the cut-over began is on the target', async () => {
  const args = [
    'run',
    'migrate-sync',
    '--inventory',
    sb.inventory,
    '--yes',
    '--allow-destructive',
    '--param',
    'rounds=2',
  ];
  const { r, writer } = await underLoad(home, args, {
    port: BASE,
    password: sb.password,
    prefix: 'ms',
    stopAfterStep: 'cut-over',
    tailMs: 0,
  });
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  const cutAt = s.steps.find((x) => x.stepId === 'cut-over')!.startedAt!;
  assert.ok(writer.ackedBetween(0, cutAt).length > 1000, 'the sync carried a live load');
  const lost = await carried(writer, () => cutAt);
  // Writes after the cut-over stay on the source: the comparison lists them, and only them.
  const differences = explained(s, writer, cutAt);
  figure('migrate-sync', writer, lost, differences);
  assert.ok(
    s.steps.filter((x) => !['verify', 'report'].includes(x.stepId)).every((x) => x.status === 'done'),
    r.out,
  );
});

test('migrate-sync with pauseWrites=true under write load: the writer runs throughout, every write acknowledged before the pause is on the target, the comparison finds nothing', async () => {
  const args = [
    'run',
    'migrate-sync',
    '--inventory',
    sb.inventory,
    '--yes',
    '--allow-destructive',
    '--param',
    'rounds=2',
    '--param',
    'pauseWrites=true',
    '--param',
    'pauseSeconds=20',
  ];
  const { r, writer } = await underLoad(home, args, { port: BASE, password: sb.password, prefix: 'mp', tailMs: 0 });
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  assert.equal(r.code, 0, r.out);
  const pausedAt = Math.min(...s.audit.filter((a) => a.command === 'CLIENT' && a.args[0] === 'PAUSE').map((a) => a.at));
  assert.ok(Number.isFinite(pausedAt), 'writes were paused at the cut-over');
  const lost = await carried(writer, () => pausedAt);
  const verify = s.steps.find((x) => x.stepId === 'verify')!.output;
  figure('migrate-sync pauseWrites=true', writer, lost, verify.differ);
  assert.equal(verify.differ, 0);
  assert.ok(writer.ackedBetween(0, pausedAt).length > 1000, 'the sync carried a live load');
  // Clients are switched: end the pause (it would end by itself) before the next case.
  for (const m of SOURCE_MASTERS)
    await withNode(Number(m.split(':')[1]), sb.password, (c) => c.call('CLIENT', 'UNPAUSE'));
});
