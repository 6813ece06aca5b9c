import assert from 'node:assert/strict';
import { runIdOf } from '../support/cli.js';
import { describeMissing, figure, showRun, slotsOf, underLoad, type Show } from '../support/write-load.js';
import { test } from '../support/reliability.js';
import { audited, explained, migrationSandbox } from '../support/write-load-migration.js';

// Source 12800-12805, target 12900-12905, sshd 12899: the file-copy runbooks while a
// writer works on the source; every write acknowledged before the save must be on the target.
const sb = migrationSandbox(12800, 'wlc');
const { home, BASE, TARGET, SOURCE_MASTERS, carried, release } = sb;

test("copy-files under write load: every write acknowledged before each master's save is on the target", async () => {
  const args = ['run', 'migrate-copy-files', '--inventory', sb.inventory, '--yes', '--allow-destructive'];
  const { r, writer } = await underLoad(home, args, {
    port: BASE,
    password: sb.password,
    prefix: 'cf',
    stopAfterStep: 'persist',
  });
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  const lost = await carried(writer, (m) => audited(s, 'BGSAVE', m)!.at);
  const firstSave = Math.min(...SOURCE_MASTERS.map((m) => audited(s, 'BGSAVE', m)!.at));
  const differences = explained(s, writer, firstSave);
  figure('migrate-copy-files', writer, lost, differences);
  // Everything up to the compare succeeded; the compare differs only by what the writer wrote after the save.
  assert.ok(
    s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done'),
    r.out,
  );
  // The run fails exactly when its compare found differences (all of them late writes, checked above).
  assert.equal(r.code === 0, (s.findings ?? []).length === 0, r.out);
});

test('copy-files with pauseWrites=true under write load: writes are held during each save and released after; every write acknowledged before the release is on the target', async () => {
  const args = [
    'run',
    'migrate-copy-files',
    '--inventory',
    sb.inventory,
    '--param',
    'pauseWrites=true',
    '--yes',
    '--allow-destructive',
  ];
  const { r, writer } = await underLoad(home, args, {
    port: BASE,
    password: sb.password,
    prefix: 'cp',
    stopAfterStep: 'persist',
    tailMs: 0,
    commandTimeoutMs: 30_000,
  });
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  for (const m of SOURCE_MASTERS) {
    const pausedAt = audited(s, 'CLIENT', m, 'PAUSE')!.at;
    const releasedAt = audited(s, 'CLIENT', m, 'UNPAUSE')!.at;
    const shard = await slotsOf(BASE, sb.password, m);
    const during = writer.records.filter((w) => shard(w.slot) && w.sentAt > pausedAt + 20 && w.sentAt < releasedAt);
    assert.deepEqual(
      during.filter((w) => w.ackAt !== null && w.ackAt < releasedAt).map((w) => w.key),
      [],
      `${m}: a write sent during the pause was acknowledged before the release`,
    );
    assert.ok(during.length > 0, `${m}: the writer sent writes during the ${releasedAt - pausedAt} ms pause`);
    assert.ok(
      during.every((w) => w.ackAt !== null && w.ackAt >= releasedAt),
      `${m}: every write held by the pause was acknowledged after the release`,
    );
    assert.ok(
      writer.ackedBetween(releasedAt, Infinity, shard).length > during.length,
      `${m}: writes go on after the release`,
    );
  }
  // Nothing is acknowledged during the pause, so everything acknowledged before the release was saved.
  const lost = await carried(writer, (m) => audited(s, 'CLIENT', m, 'UNPAUSE')!.at);
  const differences = explained(
    s,
    writer,
    Math.min(...SOURCE_MASTERS.map((m) => audited(s, 'CLIENT', m, 'UNPAUSE')!.at)),
  );
  figure('migrate-copy-files pauseWrites=true', writer, lost, differences);
  assert.ok(
    s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done'),
    r.out,
  );
});

test("consolidate-and-reshard under write load: the source's slots move live with no acknowledged write lost; the target holds every write acknowledged before the collector's save", async () => {
  const args = [
    'run',
    'migrate-consolidate-reshard',
    '--inventory',
    sb.inventory,
    '--param',
    'restoreSource=true',
    '--yes',
    '--allow-destructive',
  ];
  const { r, writer } = await underLoad(home, args, {
    port: BASE,
    password: sb.password,
    prefix: 'cr',
    stopAfterStep: 'restore-source',
    tailMs: 0,
  });
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  const onSource = await writer.check(BASE, sb.password);
  assert.deepEqual(onSource, [], `source: ${describeMissing(onSource)}`);
  const save = s.audit.find((a) => a.command === 'BGSAVE' && SOURCE_MASTERS.includes(a.target))!;
  const onTarget = await writer.check(TARGET, sb.password, { ackedBefore: save.at });
  assert.deepEqual(onTarget, [], `target: ${describeMissing(onTarget)}`);
  const differences = explained(s, writer, save.at);
  figure('migrate-consolidate-reshard', writer, onSource.length + onTarget.length, differences);
  assert.ok(
    s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done' || x.status === 'skipped'),
    r.out,
  );
});
