import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';

// appendonly yes everywhere; source 7570-7575, target 7670-7675, sshd 7669.
const BASE = 7570;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'aof',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '3',
    '--ssh',
    '--aof',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'aof']);
});

test('AOF copy over ssh: the appendonly directories (manifest, base, incr) are copied and verified, the target loads them', async () => {
  const rdbPlan = await cli(home, ['plan', 'migrate-copy-files', '--inventory', inventory]);
  assert.equal(rdbPlan.code, 3, 'format=rdb is refused where the target would load its AOF instead');
  assert.match(rdbPlan.stdout, /FAIL target loads an RDB: .*appendonly yes/);
  const r = await cli(home, [
    'run',
    'migrate-copy-files',
    '--inventory',
    inventory,
    '--param',
    'format=aof',
    '--param',
    'pauseWrites=true',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  const show = JSON.parse((await cli(home, ['show', runIdOf(r), '--json'])).stdout);
  assert.ok(show.audit.some((a: { command: string; args: string[] }) => a.command === 'BGREWRITEAOF'));
  assert.ok(
    show.audit.some(
      (a: { command: string; args: string[] }) => a.command === 'CLIENT' && a.args.join(' ').startsWith('PAUSE'),
    ),
  );
  const dir = join(dirname(inventory), 'nodes', String(BASE + 100), 'appendonlydir');
  assert.ok(existsSync(join(dir, 'appendonly.aof.manifest')));
  let total = 0;
  for (const p of [0, 1, 2].map((i) => BASE + 100 + i)) {
    total += Number(await withNode(p, password, (c) => c.call('DBSIZE')));
    const info = (await withNode(p, password, (c) => c.call('INFO', 'persistence'))) as string;
    assert.match(info, /aof_enabled:1/);
  }
  assert.equal(total, 3000);
  const cmp = show.steps.find((s: { stepId: string }) => s.stepId === 'compare').output;
  assert.deepEqual(cmp.differedPerRound, [0]);
});
