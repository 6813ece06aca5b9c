import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';

// Whether a step destroys data is decided again from the live state right before it
// acts, not only when the plan is made. Source 9460-9465, target 9560-9565.
const BASE = 9460;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'ld',
    '--base-port',
    String(BASE),
    '--keys',
    '2000',
    '--target-masters',
    '3',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = (await import('node:fs'))
    .readFileSync(`${inventory.slice(0, inventory.lastIndexOf('/'))}/password`, 'utf8')
    .trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'ld']);
});

const targetKeys = async () => {
  let n = 0;
  for (const p of [0, 1, 2]) n += Number(await withNode(BASE + 100 + p, password, (c) => c.call('DBSIZE')));
  return n;
};

test('a resumed migrate-sync whose target gained keys after the plan stops before start-sync deletes them, unless --allow-destructive', async () => {
  assert.equal(await targetKeys(), 0);
  // Planned and started while the target is empty (no destructive step), killed before start-sync.
  const first = await cli(home, ['run', 'migrate-sync', '--inventory', inventory, '--yes'], {
    REDIS_RUNBOOK_FAILPOINT: 'start-sync.check',
  });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  // Meanwhile someone writes to the target.
  const c = new Cluster([{ host: '127.0.0.1', port: BASE + 100 }], { redisOptions: { password } });
  for (let i = 0; i < 50; i++) await c.set(`precious:${i}`, String(i));
  c.disconnect();
  assert.equal(await targetKeys(), 50);

  const resumed = await cli(home, ['resume', id, '--yes']);
  assert.equal(resumed.code, 1, resumed.out);
  assert.match(resumed.out, /step start-sync is destructive \(the target target holds 50 keys now: they are deleted/);
  assert.equal(await targetKeys(), 50, 'nothing was deleted');
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.audit.filter((a: { command: string }) => a.command === 'UNLINK').length, 0, 'no UNLINK was sent');
  assert.ok(
    show.audit.some((a: { command: string }) => a.command === 'REFUSED-DESTRUCTIVE'),
    'the refusal is journaled',
  );
  const aborted = await cli(home, ['abort', id]);
  assert.equal(aborted.code, 0, aborted.out);
});
