import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { test } from '../support/reliability.js';
import {
  journaledTwice,
  killMatching,
  record,
  slotDifferences,
  startCli,
  startSshd,
  stopSshd,
  waitForProcess,
  type AuditRow,
  isNodeStart,
} from '../support/faults.js';

// The copy's own processes killed under it (rsync, ssh), and the host's sshd stopped during
// the copy. Source 14700-14705, target 14800-14805, sshd 14799.
const BASE = 14700;
const SSHD = BASE + 99;
const home = tempStateDir('rr-chaos-');
let inventory = '';
let password = '';
let dir = '';

// The sandbox's copies take a fraction of a second, too short to hit reliably. The runner's
// rsync is the real one, slowed with --bwlimit by a wrapper first in the CLI's PATH (argv0
// kept, so it looks like any rsync), so that each fault lands while data moves.
const slowBin = mkdtempSync(join(tmpdir(), 'rr-slow-rsync-'));
writeFileSync(
  join(slowBin, 'rsync'),
  `#!/bin/bash\nexec -a rsync ${execFileSync('sh', ['-c', 'command -v rsync'], { encoding: 'utf8' }).trim()} --bwlimit=24 "$@"\n`,
  { mode: 0o755 },
);
const SLOW = { PATH: `${slowBin}:${process.env.PATH}` };

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'copy',
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
  // Whatever a case left, sshd must be back for `down` to find nothing odd.
  if (!existsSync(join(dir, 'ssh', 'sshd.pid')) || !(await sshdAnswers())) {
    try {
      startSshd(dir);
    } catch {
      /* it runs */
    }
  }
  await cli(home, ['sandbox', 'down', '--name', 'copy']);
});

async function sshdAnswers(): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect(SSHD, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const show = async (id: string) =>
  JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as {
    run: { status: string; error: string | null };
    audit: AuditRow[];
    steps: Array<{ stepId: string; status: string; output: any }>;
  };
const TARGET_MASTERS = [0, 1, 2].map((i) => BASE + 100 + i);
const dbsize = (p: number) => withNode(p, password, (r) => r.call('DBSIZE')).then(Number);
const onceOnly = (a: AuditRow) =>
  a.ok !== false &&
  (a.command === 'BGSAVE' ||
    (a.command === 'HOST' && (/^(kill|mv) /.test(a.args[0] ?? '') || isNodeStart(a.args[0] ?? ''))));

/** Nothing started on a failed copy: every target master still refuses connections. */
async function targetStillStopped(): Promise<void> {
  for (const p of TARGET_MASTERS)
    await assert.rejects(
      withNode(p, password, (r) => r.ping()),
      `target ${p} was not started after the failed copy`,
    );
}

/**
 * Run migrate-copy-files, fault it once the copy is under way, and check the run stopped in
 * a safe state (exit 1, step copy failed, target not started); then lift the fault, resume,
 * and check the target equals the source slot by slot, nothing destructive done twice.
 */
async function copyCase(name: string, fault: () => Promise<number>, lift: () => void = () => {}): Promise<void> {
  const run = startCli(
    home,
    ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'],
    SLOW,
  );
  await run.waitFor(/\[\d+\/\d+\] copy /);
  const hits = await fault();
  assert.ok(hits > 0, 'the fault hit at least one process');
  const first = await run.done;
  const id = runIdOf(first);
  lift();
  assert.equal(first.code, 1, first.out);
  const mid = await show(id);
  assert.equal(mid.run.status, 'failed', mid.run.error ?? '');
  assert.match(mid.run.error ?? '', /copy/, 'the error names the copy');
  assert.equal(mid.steps.find((s) => s.stepId === 'start-target')!.status, 'pending');
  await targetStillStopped();
  const r = await cli(home, ['resume', id, '--yes', '--allow-destructive'], SLOW);
  assert.equal(r.code, 0, r.out);
  const s = await show(id);
  assert.equal(s.run.status, 'succeeded');
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  assert.equal(
    (await Promise.all(TARGET_MASTERS.map(dbsize))).reduce((a, b) => a + b, 0),
    3000,
  );
  const d = await slotDifferences(BASE, BASE + 100, password);
  assert.equal(d.differ.length, 0, `slots differ: ${d.differ.slice(0, 10).join(' ')}`);
  assert.deepEqual(s.steps.find((x) => x.stepId === 'compare')!.output.differedPerRound.at(-1), 0);
  record(name, { firstCode: first.code, resumes: 1, slotDiffs: d.differ.length, verifyDiffs: 0 });
}

test('rsync killed (SIGKILL) mid-copy: the copy step fails, the target stays stopped, resume copies again and finishes with 0 differences', async () => {
  await copyCase('rsync killed mid-copy', async () => {
    await waitForProcess(`^rsync .*${dir}`);
    return killMatching(`^rsync .*${dir}`);
  });
});

test('the ssh carrying an rsync killed (SIGKILL) mid-copy: the copy step fails, resume finishes with 0 differences', async () => {
  await copyCase('ssh killed mid-copy', async () => {
    await waitForProcess(`^ssh .*-p ${SSHD} .*rsync --server`);
    return killMatching(`^ssh .*-p ${SSHD} .*rsync --server`);
  });
});

test("the host's sshd stopped (listener and sessions) during the copy: the copy step fails naming it, resume after sshd is back finishes with 0 differences", async () => {
  await copyCase(
    'sshd stopped during copy',
    async () => stopSshd(dir),
    () => startSshd(dir),
  );
});
