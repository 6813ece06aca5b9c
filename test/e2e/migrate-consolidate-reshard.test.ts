import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// The guide's 3 -> 5: source 7580-7585 (3 x 1), target 7680-7689 (5 x 1), sshd 7679.
const BASE = 7580;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'cr',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '5',
    '--ssh',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'cr']);
});

const layout = async (port: number) =>
  parseClusterNodes((await withNode(port, password, (r) => r.call('CLUSTER', 'NODES'))) as string)
    .filter((l) => l.flags.includes('master') && l.slots.length > 0)
    .map((l) => `${l.address} ${l.slots.map(([a, b]) => `${a}-${b}`).join(',')}`)
    .sort();

test('a file copy between clusters sharded differently is refused in the plan, naming the ranges', async () => {
  const r = await cli(home, ['plan', 'migrate-copy-files', '--inventory', inventory]);
  assert.equal(r.code, 3, r.out);
  assert.match(
    r.stderr,
    /E_STRUCTURE: source and target are not sharded the same way: source slots 0-5460 have no target master with exactly those slots/,
  );
  assert.match(r.stderr, /migrate-consolidate-reshard/);
});

test('3 -> 5 consolidate-and-reshard, killed in the middle of the target reshard and resumed: complete target, source put back', async () => {
  const sourceBefore = await layout(BASE);
  const args = [
    'run',
    'migrate-consolidate-reshard',
    '--inventory',
    inventory,
    '--param',
    'restoreSource=true',
    '--yes',
    '--allow-destructive',
  ];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'reshard-target:moved-group' });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  const r = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);

  // Target: five masters, even contiguous ranges, all 3000 keys, replicas in sync.
  const target = await layout(BASE + 100);
  assert.equal(target.length, 5, target.join('\n'));
  for (const line of target) {
    const [a, b] = line.split(' ')[1]!.split('-').map(Number);
    assert.ok(Math.abs(b! - a! + 1 - 16384 / 5) <= 1, line);
  }
  let total = 0;
  for (const p of [0, 1, 2, 3, 4].map((i) => BASE + 100 + i))
    total += Number(await withNode(p, password, (c) => c.call('DBSIZE')));
  assert.equal(total, 3000);
  // Source: every slot back with its original master, which stayed a master, with its replica.
  assert.deepEqual(await layout(BASE), sourceBefore);
  const view = parseClusterNodes((await withNode(BASE, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  for (const m of view.filter((l) => l.flags.includes('master')))
    assert.equal(view.filter((l) => l.masterId === m.id).length, 1, `${m.address} kept its replica`);
  for (const p of [BASE, BASE + 1, BASE + 100 + 1]) {
    const v = (await withNode(p, password, (c) =>
      c.call('CONFIG', 'GET', 'cluster-allow-replica-migration'),
    )) as string[];
    assert.equal(v[1], 'yes', `cluster-allow-replica-migration restored on ${p}`);
  }
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'succeeded');
  assert.deepEqual(show.steps.find((s: { stepId: string }) => s.stepId === 'compare').output.differedPerRound, [0]);
  assert.equal(show.audit.filter((a: { command: string }) => a.command === 'COPY').length, 1, 'one file copied');
});
