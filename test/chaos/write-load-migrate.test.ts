import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { describeMissing, figure, showRun, slotsOf, underLoad, type Show } from '../support/write-load.js';
import type { AckWriter } from '../support/ack-writer.js';

// Source 12600-12605 and target 12700-12705 (3 x 1 each), sshd on 12699: the
// migration runbooks run while a writer works on the source; every write
// acknowledged before the runbook's promised moment must be on the target.
const BASE = 12600;
const TARGET = BASE + 100;
const SOURCE_MASTERS = [0, 1, 2].map((i) => `127.0.0.1:${BASE + i}`);
const home = tempStateDir('rr-wlm-');
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, ['sandbox', 'up', '--name', 'wlm', '--base-port', String(BASE), '--keys', '3000', '--target-masters', '3', '--ssh']);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'wlm']);
});

const stepDone = (id: string) => (s: Show) => s.steps.some((x) => x.stepId === id && x.status === 'done');

/** Per source master: every write to its slots acknowledged before `at(master)` is on the target. */
async function carried(writer: AckWriter, at: (master: string) => number): Promise<number> {
  let lost = 0;
  for (const m of SOURCE_MASTERS) {
    const missing = await writer.check(TARGET, password, { ackedBefore: at(m), slots: await slotsOf(BASE, password, m) });
    assert.deepEqual(missing, [], `${m}: ${describeMissing(missing)}`);
    lost += missing.length;
  }
  return lost;
}

/**
 * The differences the runbook's own comparison reports are writes made after
 * its promised moment: each differing key is one the writer wrote after `from`.
 */
function explained(s: Show & { findings?: Array<{ key: string }> }, writer: AckWriter, from: number): number {
  const late = new Set(writer.records.filter((w) => w.ackAt === null || w.ackAt >= from).map((w) => w.key));
  const found = s.findings ?? [];
  const unexplained = found.filter((f) => !late.has(f.key));
  assert.deepEqual(unexplained.map((f) => f.key).slice(0, 10), [], `the comparison found ${unexplained.length} differences no late write explains`);
  return found.length;
}

const audited = (s: Show, command: string, target: string, arg0?: string) => s.audit.find((a) => a.command === command && a.target === target && (arg0 === undefined || a.args[0] === arg0));

/**
 * A comparison that found only late writes fails its run, which then holds the
 * clusters: the operator aborts it; so does the test, to go on.
 */
async function release(id: string, s: Show): Promise<void> {
  if (s.run.status === 'succeeded') return;
  const r = await cli(home, ['abort', id]);
  assert.equal(r.code, 0, r.out);
}

test('migrate-sync under write load: every write acknowledged before the cut-over began is on the target', async () => {
  const args = ['run', 'migrate-sync', '--inventory', inventory, '--yes', '--allow-destructive', '--param', 'rounds=2'];
  const { r, writer } = await underLoad(home, args, { port: BASE, password, prefix: 'ms', stopWhen: stepDone('cut-over'), tailMs: 0 });
  const s = await showRun(home, runIdOf(r)) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  const cutAt = s.steps.find((x) => x.stepId === 'cut-over')!.startedAt!;
  assert.ok(writer.ackedBetween(0, cutAt).length > 1000, 'the sync carried a live load');
  const lost = await carried(writer, () => cutAt);
  // Writes after the cut-over stay on the source: the comparison lists them, and only them.
  const differences = explained(s, writer, cutAt);
  figure('migrate-sync', writer, lost, differences);
  assert.ok(s.steps.filter((x) => !['verify', 'report'].includes(x.stepId)).every((x) => x.status === 'done'), r.out);
});

test('migrate-sync with pauseWrites=true under write load: the writer runs throughout, every write acknowledged before the pause is on the target, the comparison finds nothing', async () => {
  const args = ['run', 'migrate-sync', '--inventory', inventory, '--yes', '--allow-destructive', '--param', 'rounds=2', '--param', 'pauseWrites=true', '--param', 'pauseSeconds=20'];
  const { r, writer } = await underLoad(home, args, { port: BASE, password, prefix: 'mp', tailMs: 0 });
  const s = await showRun(home, runIdOf(r)) as Show & { findings?: Array<{ key: string }> };
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
  for (const m of SOURCE_MASTERS) await withNode(Number(m.split(':')[1]), password, (c) => c.call('CLIENT', 'UNPAUSE'));
});

test('copy-files under write load: every write acknowledged before each master\'s save is on the target', async () => {
  const args = ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'];
  const { r, writer } = await underLoad(home, args, { port: BASE, password, prefix: 'cf', stopWhen: stepDone('persist') });
  const s = await showRun(home, runIdOf(r)) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  const lost = await carried(writer, (m) => audited(s, 'BGSAVE', m)!.at);
  const firstSave = Math.min(...SOURCE_MASTERS.map((m) => audited(s, 'BGSAVE', m)!.at));
  const differences = explained(s, writer, firstSave);
  figure('migrate-copy-files', writer, lost, differences);
  // Everything up to the compare succeeded; the compare differs only by what the writer wrote after the save.
  assert.ok(s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done'), r.out);
  assert.equal(r.code === 0, differences === 0, r.out);
});

test('copy-files with pauseWrites=true under write load: writes are held during each save and released after; every write acknowledged before the release is on the target', async () => {
  const args = ['run', 'migrate-copy-files', '--inventory', inventory, '--param', 'pauseWrites=true', '--yes', '--allow-destructive'];
  const { r, writer } = await underLoad(home, args, { port: BASE, password, prefix: 'cp', stopWhen: stepDone('persist'), tailMs: 0 });
  const s = await showRun(home, runIdOf(r)) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  for (const m of SOURCE_MASTERS) {
    const pausedAt = audited(s, 'CLIENT', m, 'PAUSE')!.at;
    const releasedAt = audited(s, 'CLIENT', m, 'UNPAUSE')!.at;
    const shard = await slotsOf(BASE, password, m);
    const during = writer.records.filter((w) => shard(w.slot) && w.sentAt > pausedAt + 20 && w.sentAt < releasedAt);
    assert.deepEqual(during.filter((w) => w.ackAt !== null && w.ackAt < releasedAt).map((w) => w.key), [], `${m}: a write sent during the pause was acknowledged before the release`);
    assert.ok(during.length > 0, `${m}: the writer sent writes during the ${releasedAt - pausedAt} ms pause`);
    assert.ok(during.every((w) => w.ackAt !== null && w.ackAt >= releasedAt), `${m}: every write held by the pause was acknowledged after the release`);
    assert.ok(writer.ackedBetween(releasedAt, Infinity, shard).length > during.length, `${m}: writes go on after the release`);
  }
  // Nothing is acknowledged during the pause, so everything acknowledged before the release was saved.
  const lost = await carried(writer, (m) => audited(s, 'CLIENT', m, 'UNPAUSE')!.at);
  const differences = explained(s, writer, Math.min(...SOURCE_MASTERS.map((m) => audited(s, 'CLIENT', m, 'UNPAUSE')!.at)));
  figure('migrate-copy-files pauseWrites=true', writer, lost, differences);
  assert.ok(s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done'), r.out);
});

test('consolidate-and-reshard under write load: the source\'s slots move live with no acknowledged write lost; the target holds every write acknowledged before the collector\'s save', async () => {
  const args = ['run', 'migrate-consolidate-reshard', '--inventory', inventory, '--param', 'restoreSource=true', '--yes', '--allow-destructive'];
  const { r, writer } = await underLoad(home, args, { port: BASE, password, prefix: 'cr', stopWhen: stepDone('restore-source'), tailMs: 0 });
  const s = await showRun(home, runIdOf(r)) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  const onSource = await writer.check(BASE, password);
  assert.deepEqual(onSource, [], `source: ${describeMissing(onSource)}`);
  const save = s.audit.find((a) => a.command === 'BGSAVE' && SOURCE_MASTERS.includes(a.target))!;
  const onTarget = await writer.check(TARGET, password, { ackedBefore: save.at });
  assert.deepEqual(onTarget, [], `target: ${describeMissing(onTarget)}`);
  const differences = explained(s, writer, save.at);
  figure('migrate-consolidate-reshard', writer, onSource.length + onTarget.length, differences);
  assert.ok(s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done' || x.status === 'skipped'), r.out);
});
