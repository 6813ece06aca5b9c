import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, SHARD_SLOTS } from '../support/cluster.js';

const BASE = 7300;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  await sandboxDown(home);
});

// Every step boundary (entering confirm = before the action, done = after it),
// inside the run phase of the failover step before and after CLUSTER FAILOVER
// is sent, and in the middle of waiting for agreement.
const KILL_POINTS = [
  'preflight.confirm',
  'preflight.done',
  'replica-in-sync.confirm',
  'replica-in-sync.done',
  'failover.confirm',
  'failover.run',
  'failover:sent',
  'failover.verify',
  'failover.done',
  'agreement.run',
  'agreement.done',
  'verify.confirm',
  'verify.verify',
];

// Redis voters refuse a second vote about the same master within 2 x cluster-node-timeout
// (cluster.c clusterSendFailoverAuthIfNeeded), so consecutive tests rotate over the shards.
KILL_POINTS.forEach((point, i) => {
  const slot = SHARD_SLOTS[i % SHARD_SLOTS.length]!;
  test(`killed with SIGKILL at ${point}, resume finishes with one failover and the roles swapped`, async () => {
    const { masterOfSlot0: oldMaster, replicaOfIt: replica } = await roles(BASE, password, slot);
    const killed = await cli(
      home,
      ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${oldMaster}`, '--yes'],
      { REDIS_RUNBOOK_FAILPOINT: point },
    );
    assert.equal(killed.code, 137, `the failpoint killed the run:\n${killed.out}`);
    const id = runIdOf(killed);
    const mid = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
    assert.ok(
      ['running', 'waiting'].includes(mid.run.status),
      `journal shows an unfinished run, got ${mid.run.status}`,
    );

    const resumed = await cli(home, ['resume', id, '--yes']);
    assert.equal(resumed.code, 0, resumed.out);
    const after = await roles(BASE, password, slot);
    assert.equal(after.masterOfSlot0, replica, 'the replica is master');
    assert.equal(after.replicaOfIt, oldMaster, 'the old master is its replica');

    const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
    assert.equal(show.run.status, 'succeeded');
    assert.ok(show.steps.every((s: { status: string }) => s.status === 'done'));
    const sent = show.audit.filter(
      (a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER',
    );
    assert.equal(sent.length, 1, `CLUSTER FAILOVER sent once, not repeated by the resume (${sent.length})`);
    assert.ok(show.audit.some((a: { command: string }) => a.command === 'RESUME'));
  });
});
