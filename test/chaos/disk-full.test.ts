import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { test } from '../support/reliability.js';
import {
  journaledTwice,
  mountTmpfs,
  pids,
  record,
  slotDifferences,
  startCli,
  type AuditRow,
  type Tmpfs,
  isNodeStart,
} from '../support/faults.js';

// A target host's disk full during a copy: a small tmpfs becomes the data directory of a
// target master while the run has the target stopped. Source 14900-14905, target
// 15000-15005, sshd 14999.
const BASE = 14900;
const home = tempStateDir('rr-chaos-');
let inventory = '';
let password = '';
let dir = '';
let tmpfs: Tmpfs | undefined;

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'disk',
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
  dir = dirname(inventory);
  password = readFileSync(join(dir, 'password'), 'utf8').trim();
});
after(async () => {
  // The node on the tmpfs is stopped first, so that nothing holds the mount.
  await withNode(BASE + 100, password, (r) => r.call('SHUTDOWN', 'NOSAVE')).catch(() => {});
  tmpfs?.unmount();
  await cli(home, ['sandbox', 'down', '--name', 'disk']);
});

const show = async (id: string) =>
  JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as {
    run: { status: string; error: string | null };
    audit: AuditRow[];
    steps: Array<{ stepId: string; status: string; output: any }>;
  };
const TARGET_MASTERS = [0, 1, 2].map((i) => BASE + 100 + i);
const onceOnly = (a: AuditRow) =>
  a.ok !== false &&
  (a.command === 'BGSAVE' ||
    (a.command === 'HOST' && (/^(kill|mv) /.test(a.args[0] ?? '') || isNodeStart(a.args[0] ?? ''))));

test('disk full on a target host during the copy: the step fails, no target node starts and no partial file sits under the real name; once the disk is enlarged, resume finishes with 0 differences', async () => {
  const nodeDir = join(dir, 'nodes', String(BASE + 100));
  const run = startCli(home, ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive']);
  // The target is stopped and its files are moved aside once the copy step begins: freeze the
  // runner there, put the first target master's directory on a 64 kB disk (its shard's RDB is
  // ~200 kB), and let it go on.
  await run.waitFor(/\[\d+\/\d+\] copy /);
  run.signal('SIGSTOP');
  try {
    tmpfs = mountTmpfs(nodeDir, 64 * 1024);
  } finally {
    run.signal('SIGCONT');
  }
  const first = await run.done;
  const id = runIdOf(first);
  // Nothing of the failed run still writes into the target.
  const left = pids(`^rsync .*${dir}`);
  assert.equal(first.code, 1, first.out);
  assert.deepEqual(left, [], 'no rsync of the failed step outlives it');
  assert.match(first.out, /No space left on device|ENOSPC|disk/i, 'the error says the disk is full');
  const mid = await show(id);
  assert.equal(mid.run.status, 'failed');
  assert.equal(mid.steps.find((s) => s.stepId === 'start-target')!.status, 'pending');
  for (const p of TARGET_MASTERS)
    await assert.rejects(
      withNode(p, password, (r) => r.ping()),
      `target ${p} stays stopped`,
    );
  // Nothing half-written under the name Redis loads at start.
  const rdb = join(nodeDir, 'dump.rdb');
  const src = statSync(join(dir, 'nodes', String(BASE), 'dump.rdb')).size;
  assert.ok(
    !existsSync(rdb) || statSync(rdb).size === src,
    `no partial dump.rdb (${existsSync(rdb) ? statSync(rdb).size : 0} of ${src} bytes)`,
  );

  tmpfs.grow(64 * 1024 * 1024);
  const r = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);
  const s = await show(id);
  assert.equal(s.run.status, 'succeeded');
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  const d = await slotDifferences(BASE, BASE + 100, password);
  assert.equal(d.differ.length, 0, `slots differ: ${d.differ.slice(0, 10).join(' ')}`);
  assert.equal(d.targetKeys, 3000);
  assert.deepEqual(s.steps.find((x) => x.stepId === 'compare')!.output.differedPerRound.at(-1), 0);
  record('target disk full during copy', {
    firstCode: first.code,
    resumes: 1,
    slotDiffs: d.differ.length,
    verifyDiffs: 0,
  });
});
