import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';

// Source 7560-7565, target 7660-7665 (3 masters x 1 replica each), sshd on 7659: every
// host command and copy goes over real SSH on loopback.
const BASE = 7560;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'mig',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '3',
    '--ssh',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = (await import('node:fs')).readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'mig']);
});

const TARGET_MASTERS = [0, 1, 2].map((i) => BASE + 100 + i);
const dbsize = (p: number) => withNode(p, password, (r) => r.call('DBSIZE')).then(Number);

test("RDB copy over ssh, killed right after the first verified copy and resumed: the target holds the source's keys, nothing copied twice", async () => {
  const args = ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'copy:copied' });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  const resumed = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(resumed.code, 0, resumed.out);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'succeeded');
  // The shards are copied in parallel; the kill came when the first one was verified.
  const resumedAt = show.audit.findIndex((a: { command: string }) => a.command === 'RESUME-IN-DOUBT');
  assert.ok(resumedAt > 0);
  const copiesAfter = show.audit.slice(resumedAt).filter((a: { command: string }) => a.command === 'COPY').length;
  const out = show.steps.find((s: { stepId: string }) => s.stepId === 'copy').output;
  const skipped = out.copies.filter((c: { copied: boolean }) => !c.copied).length;
  assert.ok(skipped >= 1, 'the copy verified before the kill is not repeated');
  assert.equal(copiesAfter, 3 - skipped, 'only the copies not yet verified are made again');
  const saved = show.steps.find((s: { stepId: string }) => s.stepId === 'persist').output.shards as Array<{
    keys: number;
  }>;
  const total = (await Promise.all(TARGET_MASTERS.map(dbsize))).reduce((a, b) => a + b, 0);
  assert.equal(
    total,
    saved.reduce((a, s) => a + s.keys, 0),
  );
  assert.equal(total, 3000);
  const cmp = show.steps.find((s: { stepId: string }) => s.stepId === 'compare').output;
  assert.ok(cmp.compared > 0);
  assert.deepEqual(cmp.differedPerRound, [0]);
  // Replicas resynced from the new data.
  for (const p of [3, 4, 5].map((i) => BASE + 100 + i))
    assert.equal(await dbsize(p), await dbsize(TARGET_MASTERS[p - BASE - 103]!));
  // The old target files were moved aside, not deleted.
  const ls = (await import('node:fs')).readdirSync(join(dirname(inventory), 'nodes', String(TARGET_MASTERS[0])));
  assert.ok(
    ls.some((f) => f.startsWith('redis-runbook-backup-')),
    ls.join(' '),
  );
});

test('a target that holds keys: the pairing step is destructive with its key count, refused unattended without --allow-destructive', async () => {
  const r = await cli(home, ['run', 'migrate-copy-files', '--inventory', inventory, '--yes']);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /pair \(target target holds 3000 keys: the copy replaces them/);
  const plan = await cli(home, ['plan', 'migrate-copy-files', '--inventory', inventory]);
  assert.match(plan.stdout, /\[pair\].*DESTRUCTIVE/);
});

test('a copy that no longer matches its source is copied again before the target starts', async () => {
  const first = await cli(
    home,
    ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'],
    { REDIS_RUNBOOK_FAILPOINT: 'copy:copied' },
  );
  assert.equal(first.code, 137, first.out);
  // rsyncs started before the kill run on to completion on their own; let them finish, then
  // damage every target RDB: sizes and hashes no longer match the source's.
  await new Promise((r) => setTimeout(r, 3000));
  for (const p of TARGET_MASTERS) appendFileSync(join(dirname(inventory), 'nodes', String(p), 'dump.rdb'), 'garbage');
  const id = runIdOf(first);
  const r = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  const out = show.steps.find((s: { stepId: string }) => s.stepId === 'copy').output;
  assert.deepEqual(
    out.copies.map((c: { copied: boolean }) => c.copied),
    [true, true, true],
    'every damaged or missing copy was made again',
  );
  assert.equal(
    (await Promise.all(TARGET_MASTERS.map(dbsize))).reduce((a, b) => a + b, 0),
    3000,
  );
});

test('killed at every step boundary and resumed each time: one save and one copy per shard, a complete target', async () => {
  const steps = [
    'preflight-source',
    'preflight-target',
    'pair',
    'persist',
    'stop-target',
    'backup-target',
    'copy',
    'start-target',
    'verify',
  ];
  const first = await cli(
    home,
    ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'],
    { REDIS_RUNBOOK_FAILPOINT: `${steps[0]}.done` },
  );
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  for (const step of steps.slice(1)) {
    const r = await cli(home, ['resume', id, '--yes', '--allow-destructive'], {
      REDIS_RUNBOOK_FAILPOINT: `${step}.done`,
    });
    assert.equal(r.code, 137, `expected a kill after ${step}:\n${r.out}`);
  }
  const last = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(last.code, 0, last.out);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'succeeded');
  const sourceMasters = [0, 1, 2].map((i) => `127.0.0.1:${BASE + i}`);
  assert.equal(
    show.audit.filter(
      (a: { command: string; target: string }) => a.command === 'BGSAVE' && sourceMasters.includes(a.target),
    ).length,
    3,
    'one save per source master',
  );
  // The target held keys: each of its masters saved once before it was stopped, for the backup.
  assert.equal(
    show.audit.filter(
      (a: { command: string; target: string }) => a.command === 'BGSAVE' && !sourceMasters.includes(a.target),
    ).length,
    3,
  );
  assert.equal(show.audit.filter((a: { command: string }) => a.command === 'COPY').length, 3, 'one copy per shard');
  assert.equal(
    (await Promise.all(TARGET_MASTERS.map(dbsize))).reduce((a, b) => a + b, 0),
    3000,
  );
  assert.deepEqual(show.steps.find((x: { stepId: string }) => x.stepId === 'compare').output.differedPerRound, [0]);
});

test('a target node that exits at once when started (its server replaced by /bin/true) fails the start step with the reason, not after the whole start timeout; resumed once it starts again, the run finishes', async () => {
  const victim = TARGET_MASTERS[1]!;
  const serverFile = join(dirname(inventory), 'nodes', String(victim), 'server');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const real = readFileSync(serverFile, 'utf8');
  writeFileSync(serverFile, '/bin/true\n');
  let id = '';
  try {
    const first = await cli(home, [
      'run',
      'migrate-copy-files',
      '--inventory',
      inventory,
      '--yes',
      '--allow-destructive',
    ]);
    assert.notEqual(first.code, 0, first.out);
    assert.match(
      first.out,
      new RegExp(
        `E_START_FAILED: 127\\.0\\.0\\.1:${victim} still refuses connections 15 s after its start command returned`,
      ),
    );
    id = runIdOf(first);
  } finally {
    writeFileSync(serverFile, real);
  }
  const r = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);
  assert.equal(
    (await Promise.all(TARGET_MASTERS.map(dbsize))).reduce((a, b) => a + b, 0),
    3000,
  );
});
