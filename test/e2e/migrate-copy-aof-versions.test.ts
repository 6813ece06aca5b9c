import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { BUILDS, have, record } from '../support/server-matrix.js';

// migrate-copy-files format=aof across AOF layouts: Redis 6.2 keeps its AOF as one file
// (appendonly.aof in dir), Redis 7 and Valkey as a directory (manifest, base, incr). 6.2 -> 6.2
// copies the file; 6.2 -> Valkey 8 (or Redis 7.2) copies it under the target's appendfilename and
// the target adopts it into a new AOF directory at start; 7.2 -> 6.2 is refused by the plan.
// The builds come from REDIS_BUILDS (or REDIS_RUNBOOK_BUILDS); a case whose builds are missing is
// skipped and says why. One sandbox at a time: source 16600-16605, sshd 16699, target 16700-16705.
const BASE = 16600;
const TARGET = BASE + 100;
const home = tempStateDir('rr-aof-versions-');
const R6 = 'redis-6.2.16';
const R7 = 'redis-7.2.6';
// A Redis 7+ target for the upgrade: Valkey 8 when present, else Redis 7.2.
const UP = have('valkey-8.0.1') ? 'valkey-8.0.1' : R7;

/** Build names here are flavor-version (redis-6.2.16): the table names servers as they report themselves. */
function recordAof(source: string, target: string, result: 'supported' | 'refused', detail: string): void {
  const version = (b: string) => b.replace('-', ' ');
  const [sourceVersion, targetVersion] = [version(source), version(target)];
  record({ runbook: 'migrate-copy-files format=aof', source, target, result, detail, sourceVersion, targetVersion });
}

function skipReason(...needed: string[]): string | undefined {
  const missing = needed.filter((b) => !have(b));
  if (!missing.length) return undefined;
  const why = BUILDS
    ? `builds ${missing.join(', ')} not in ${BUILDS}`
    : 'REDIS_BUILDS is not set (a directory of server builds)';
  console.log(`skipped: ${why}`);
  return why;
}

interface Sandbox {
  inventory: string;
  password: string;
  nodeDir: (port: number) => string;
}

async function up(source: string, target: string): Promise<Sandbox> {
  await cli(home, ['sandbox', 'down', '--name', 'aofv']);
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'aofv',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '3',
    '--ssh',
    '--aof',
    '--source-server',
    source,
    '--target-server',
    target,
  ]);
  assert.equal(r.code, 0, `sandbox of ${source} -> ${target}:\n${r.out}`);
  const inventory = r.stdout.trim().split('\n').pop()!;
  return {
    inventory,
    password: readFileSync(join(dirname(inventory), 'password'), 'utf8').trim(),
    nodeDir: (port) => join(dirname(inventory), 'nodes', String(port)),
  };
}

after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'aofv']);
});

/** The AOF copy, run as an operator would, unattended; asserts it succeeded. */
async function runCopy(sb: Sandbox) {
  const r = await cli(home, [
    'run',
    'migrate-copy-files',
    '--inventory',
    sb.inventory,
    '--param',
    'format=aof',
    '--param',
    'pauseWrites=true',
    // Every key compared value by value, not a sample.
    '--param',
    'sample=100',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  return JSON.parse((await cli(home, ['show', runIdOf(r), '--json'])).stdout);
}

/** Every key is on the target: DBSIZE of its masters, and the runbook's own comparison of all keys. */
async function assertAllKeys(sb: Sandbox, show: { steps: Array<{ stepId: string; output: unknown }> }) {
  let total = 0;
  for (const p of [0, 1, 2].map((i) => TARGET + i)) {
    total += Number(await withNode(p, sb.password, (c) => c.call('DBSIZE')));
    const info = (await withNode(p, sb.password, (c) => c.call('INFO', 'persistence'))) as string;
    assert.match(info, /aof_enabled:1/);
  }
  assert.equal(total, 3000);
  const cmp = show.steps.find((s) => s.stepId === 'compare')!.output as {
    compared: number;
    differedPerRound: number[];
  };
  assert.equal(cmp.compared, 3000);
  assert.deepEqual(cmp.differedPerRound, [0]);
}

/** What the backup step moved aside on a target node (its one backup directory). */
function backedUp(sb: Sandbox, port: number): string[] {
  const dir = sb.nodeDir(port);
  const backups = readdirSync(dir).filter((f) => f.startsWith('redis-runbook-backup-'));
  assert.equal(backups.length, 1, `one backup directory in ${dir}: ${backups.join(', ')}`);
  return readdirSync(join(dir, backups[0]!)).sort();
}

test(
  `${R6} -> ${R6}, format=aof: the single appendonly.aof is saved, frozen, copied and loaded; every key arrives`,
  { skip: skipReason(R6) },
  async () => {
    const sb = await up(R6, R6);
    const plan = await cli(home, ['plan', 'migrate-copy-files', '--inventory', sb.inventory, '--param', 'format=aof']);
    assert.equal(plan.code, 0, plan.out);
    assert.match(plan.stdout, /PASS AOF layout: single-file to single-file/);
    assert.match(plan.stdout, /Copy 3 AOF files to the target masters/);
    const show = await runCopy(sb);
    assert.ok(show.audit.some((a: { command: string }) => a.command === 'BGREWRITEAOF'));
    // Redis 6 keeps one file, and no directory appears beside it.
    for (const p of [0, 1, 2].map((i) => TARGET + i)) {
      assert.ok(existsSync(join(sb.nodeDir(p), 'appendonly.aof')), `appendonly.aof on ${p}`);
      assert.ok(!existsSync(join(sb.nodeDir(p), 'appendonlydir')), `no appendonlydir on ${p}`);
      // The target's own (empty) AOF was moved aside, not overwritten.
      assert.ok(backedUp(sb, p).includes('appendonly.aof'), `appendonly.aof backed up on ${p}`);
    }
    // The frozen copy the runbook took right after BGREWRITEAOF is a file beside the source's AOF.
    assert.ok(readdirSync(sb.nodeDir(BASE)).some((f) => /^appendonly\.aof\.redis-runbook-\d{8}-\d{6}$/.test(f)));
    const copy = show.steps.find((s: { stepId: string }) => s.stepId === 'copy');
    assert.equal(copy.output.copies.length, 3);
    await assertAllKeys(sb, show);
    recordAof(R6, R6, 'supported', 'all 3000 keys on the target, 0 differences');
  },
);

test(
  `${R6} -> ${UP}, format=aof: the target adopts the single file into its AOF directory at start; every key arrives`,
  { skip: skipReason(R6, UP) },
  async () => {
    const sb = await up(R6, UP);
    const plan = await cli(home, ['plan', 'migrate-copy-files', '--inventory', sb.inventory, '--param', 'format=aof']);
    assert.equal(plan.code, 0, plan.out);
    assert.match(plan.stdout, /PASS AOF layout: single-file to multi-part \(the target adopts the file/);
    const show = await runCopy(sb);
    for (const p of [0, 1, 2].map((i) => TARGET + i)) {
      const dir = sb.nodeDir(p);
      // Its empty AOF directory was moved aside (an existing one would win over the copied file).
      assert.ok(backedUp(sb, p).includes('appendonlydir'), `appendonlydir backed up on ${p}`);
      // The copied file now lives inside a new directory, named by a manifest.
      assert.ok(!existsSync(join(dir, 'appendonly.aof')), `appendonly.aof moved into the directory on ${p}`);
      const manifest = readFileSync(join(dir, 'appendonlydir', 'appendonly.aof.manifest'), 'utf8');
      assert.match(manifest, /^file appendonly\.aof seq 1 type b$/m);
      assert.match(readFileSync(join(dir, 'redis.log'), 'utf8'), /Successfully migrated an old-style AOF file/);
    }
    await assertAllKeys(sb, show);
    recordAof(R6, UP, 'supported', 'the target adopts the file into its AOF directory; all 3000 keys, 0 differences');
  },
);

test(
  `${R6} -> ${UP}, format=aof: an AOF directory back on a target before the copy is refused before any copy; without it the resumed run finishes`,
  { skip: skipReason(R6, UP) },
  async () => {
    const sb = await up(R6, UP);
    const args = ['run', 'migrate-copy-files', '--inventory', sb.inventory, '--param', 'format=aof'];
    // Killed as the copy step begins: the target is stopped and its files are backed up.
    const first = await cli(home, [...args, '--param', 'pauseWrites=true', '--yes', '--allow-destructive'], {
      REDIS_RUNBOOK_FAILPOINT: 'copy.check',
    });
    assert.equal(first.code, 137, first.out);
    const id = runIdOf(first);
    // An AOF directory appears again on one target (restored by hand, say): it would win over the
    // copied file at start and the node would come up empty.
    const aofDir = join(sb.nodeDir(TARGET), 'appendonlydir');
    mkdirSync(aofDir);
    const refused = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
    assert.notEqual(refused.code, 0, refused.out);
    assert.match(refused.out, /appendonlydir exists and would be loaded instead of the copied/);
    for (const p of [0, 1, 2].map((i) => TARGET + i))
      assert.ok(!existsSync(join(sb.nodeDir(p), 'appendonly.aof')), `nothing copied to ${p}`);
    rmdirSync(aofDir);
    const resumed = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
    assert.equal(resumed.code, 0, resumed.out);
    const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
    assert.equal(show.run.status, 'succeeded');
    // The compare step's default sample here: every key is still counted on the target.
    let total = 0;
    for (const p of [0, 1, 2].map((i) => TARGET + i))
      total += Number(await withNode(p, sb.password, (c) => c.call('DBSIZE')));
    assert.equal(total, 3000);
    assert.deepEqual(show.steps.find((s: { stepId: string }) => s.stepId === 'compare').output.differedPerRound, [0]);
  },
);

test(
  `${R7} -> ${R6}, format=aof: refused by the plan, naming both versions; the run changes nothing`,
  { skip: skipReason(R7, R6) },
  async () => {
    const sb = await up(R7, R6);
    const plan = await cli(home, ['plan', 'migrate-copy-files', '--inventory', sb.inventory, '--param', 'format=aof']);
    assert.equal(plan.code, 3, plan.out);
    recordAof(
      R7,
      R6,
      'refused',
      plan.stdout
        .split('\n')
        .find((l) => /FAIL AOF layout/.test(l))!
        .replace(/^\s*FAIL\s+/, ''),
    );
    assert.match(
      plan.stdout,
      /FAIL AOF layout: source redis 7\.2\.6 \([^)]+\) writes a multi-part AOF .*; target redis 6\.2\.16 \([^)]+\) reads only a single-file AOF \(appendonly\.aof\)/,
    );
    const r = await cli(home, [
      'run',
      'migrate-copy-files',
      '--inventory',
      sb.inventory,
      '--param',
      'format=aof',
      '--yes',
      '--allow-destructive',
    ]);
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /nothing was changed/);
    // Not stopped, nothing moved: the target still answers and has no backup directory.
    assert.equal(await withNode(TARGET, sb.password, (c) => c.call('PING')), 'PONG');
    assert.ok(!readdirSync(sb.nodeDir(TARGET)).some((f) => f.startsWith('redis-runbook-backup-')));
  },
);
