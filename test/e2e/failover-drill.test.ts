import { isNodeStart } from '../support/faults.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, withNode, SHARD_SLOTS } from '../support/cluster.js';

const BASE = 7450;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  await sandboxDown(home);
});

interface AuditRow {
  command: string;
  target: string;
  args: string[];
}
interface Show {
  run: { status: string };
  steps: Array<{ stepId: string; status: string; output: any }>;
  audit: AuditRow[];
}

async function show(id: string): Promise<Show> {
  const r = await cli(home, ['show', id, '--json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout) as Show;
}

const port = (address: string) => Number(address.split(':')[1]);

/** The old master is back, as an in-sync replica of the replica that replaced it. */
async function assertRejoined(oldMaster: string, newMaster: string): Promise<void> {
  const info = (await withNode(port(oldMaster), password, (r) => r.call('INFO', 'replication'))) as string;
  assert.match(info, /role:slave/);
  assert.match(info, new RegExp(`master_port:${port(newMaster)}`));
  assert.match(info, /master_link_status:up/);
}

test('a replica that may not fail over (cluster-replica-no-failover) makes the plan refuse the drill, saying why', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[0]);
  await withNode(port(replica), password, (r) => r.call('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes'));
  try {
    const r = await cli(home, ['plan', 'failover-drill', '--inventory', inventory, '--param', `node=${master}`]);
    assert.equal(r.code, 3, r.out);
    assert.match(r.stdout, /FAIL a replica may fail over: every replica has cluster-replica-no-failover yes/);
    assert.match(r.stdout, /PASS expected outage: cluster-node-timeout is 2000 ms/);
  } finally {
    await withNode(port(replica), password, (r) => r.call('CONFIG', 'SET', 'cluster-replica-no-failover', 'no'));
  }
});

// Each drill fails a different shard: Redis voters refuse a second vote about
// the same master within 2 x cluster-node-timeout.
test('drill by SHUTDOWN: the replica takes over, the window and lost writes are measured, the old master rejoins', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[0]);
  const r = await cli(home, [
    'run',
    'failover-drill',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--param',
    'method=shutdown',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  const s = await show(runIdOf(r));
  assert.equal(s.run.status, 'succeeded');
  const out = s.steps.find((x) => x.stepId === 'fail-master')!.output;
  assert.equal(out.method, 'shutdown');
  assert.equal(out.newMaster, replica);
  assert.equal(out.measured, true);
  // Writes to the shard really failed for a while, then came back.
  assert.ok(out.unavailableMs > 0 && out.unavailableMs < 30_000, `window ${out.unavailableMs} ms`);
  assert.ok(out.canary.failed > 0, 'some canary writes failed during the outage');
  assert.ok(out.writesAcked > 0);
  // SHUTDOWN waits for the replica to catch up: nothing acknowledged may be lost.
  assert.equal(out.writesLost, 0);
  assert.ok(out.timeToOkMs >= out.promotionMs);
  assert.equal(s.audit.filter((a) => a.command === 'SHUTDOWN').length, 1);
  await assertRejoined(master, replica);
  // The canary cleaned up after itself.
  const left = (await withNode(port(replica), password, (c) =>
    c.call('SCAN', '0', 'MATCH', 'redis-runbook:canary:*', 'COUNT', '100000'),
  )) as [string, string[]];
  assert.deepEqual(left[1], []);
  assert.ok(s.steps.find((x) => x.stepId === 'verify')!.status === 'done');
});

test("drill by kill: the host's kill command is used once, the start command once", async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[1]);
  const r = await cli(home, [
    'run',
    'failover-drill',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--param',
    'method=kill',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  const s = await show(runIdOf(r));
  const out = s.steps.find((x) => x.stepId === 'fail-master')!.output;
  assert.equal(out.newMaster, replica);
  assert.equal(typeof out.writesLost, 'number');
  assert.ok(out.writesLost <= out.writesAcked);
  assert.ok(out.unavailableMs > 0);
  const host = s.audit.filter((a) => a.command === 'HOST').map((a) => a.args[0]!);
  assert.equal(host.filter((c) => c.startsWith('kill -9')).length, 1, host.join('\n'));
  assert.equal(host.filter(isNodeStart).length, 1, host.join('\n'));
  await assertRejoined(master, replica);
});

test('an unattended drill without --allow-destructive is refused before anything runs', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[2]);
  const r = await cli(home, ['run', 'failover-drill', '--inventory', inventory, '--param', `node=${master}`, '--yes']);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /E_DESTRUCTIVE: this run has destructive steps: fail-master/);
  const info = (await withNode(port(master), password, (c) => c.call('INFO', 'replication'))) as string;
  assert.match(info, /role:master/, 'the master was not touched');
  const runs = JSON.parse((await cli(home, ['runs', '--json'])).stdout) as Array<{ status: string }>;
  assert.ok(
    runs.every((x) => x.status === 'succeeded'),
    'no run was left behind',
  );
});

test('a drill killed right after the stop, then resumed, does not stop the node twice and finishes', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[2]);
  const args = [
    'run',
    'failover-drill',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--param',
    'method=kill',
    '--yes',
    '--allow-destructive',
  ];
  const first = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'fail-master:stopped' });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  const resumed = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.out, /not stopping it again/);
  const s = await show(id);
  assert.equal(s.run.status, 'succeeded');
  const kills = s.audit.filter((a) => a.command === 'HOST' && a.args[0]!.startsWith('kill -9'));
  assert.equal(kills.length, 1, 'the node was killed once');
  const out = s.steps.find((x) => x.stepId === 'fail-master')!.output;
  assert.equal(out.measured, false, 'the canary numbers died with the first process and are not invented');
  assert.equal(out.unavailableMs, null);
  assert.equal(out.newMaster, replica);
  assert.equal(out.timeToOkMs, null, 'seen late by the resumed process: not reported as a measurement');
  assert.ok(out.okSeenAfterMs > 0, 'but the upper bound from the journaled stop is there');
  await assertRejoined(master, replica);
});

test('a canary interval of 0, a negative number or not a number is refused in the plan (a write loop without pause), nothing sent', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[0]);
  for (const bad of ['0', '-5', 'abc', 'NaN']) {
    const r = await cli(home, [
      'plan',
      'failover-drill',
      '--inventory',
      inventory,
      '--param',
      `node=${master}`,
      '--param',
      `canaryIntervalMs=${bad}`,
    ]);
    assert.equal(r.code, 2, `${bad}: ${r.out}`);
    assert.match(r.stderr, new RegExp(`E_PARAM: canaryIntervalMs=${bad} is not a number between 1 and 60000`));
  }
  const ok = await cli(home, [
    'plan',
    'failover-drill',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--param',
    'canaryIntervalMs=25',
  ]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.stdout, /every 25 ms/);
});
