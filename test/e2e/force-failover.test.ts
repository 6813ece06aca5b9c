import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, withNode } from '../support/cluster.js';

const BASE = 7250;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, ['--keys', '300']));
});
after(async () => {
  await sandboxDown(home);
});

test('TAKEOVER is refused while a majority of masters answers', async () => {
  const { replicaOfIt } = await roles(BASE, password);
  const r = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${replicaOfIt}`,
    '--param',
    'mode=takeover',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stdout, /3 of 3 masters answer: an election can be won, TAKEOVER is refused/);
});

test('FORCE with the master down: unattended it is refused before anything runs; with --allow-destructive it promotes the replica', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password);
  const [masterPort, replicaPort] = [master, replica].map((a) => Number(a.split(':')[1]));
  // Keep Redis from failing over by itself, so that FORCE is what promotes it.
  await withNode(replicaPort!, password, (r) => r.call('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes'));
  await withNode(masterPort!, password, (r) => r.call('SHUTDOWN', 'NOSAVE').catch(() => undefined));
  await new Promise((s) => setTimeout(s, 500));

  const first = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${replica}`,
    '--param',
    'mode=force',
    '--yes',
  ]);
  assert.equal(first.code, 2, first.out);
  assert.match(
    first.stderr,
    /E_DESTRUCTIVE: this run has destructive steps: failover \(FORCE promotes the replica without the master/,
  );
  assert.match(first.stderr, /--allow-destructive/);
  assert.equal((await roles(replicaPort!, password)).masterOfSlot0, master, 'nothing was promoted');

  const r = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${replica}`,
    '--param',
    'mode=force',
    '--yes',
    '--allow-destructive',
  ]);
  const id = runIdOf(r);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /old master demoted: .* is down; it rejoins as a replica/);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.ok(
    show.audit.some(
      (a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args.join(' ') === 'FAILOVER FORCE',
    ),
  );

  // The old master comes back and rejoins as a replica of the new one.
  const conf = join(inventory, '..', 'nodes', String(masterPort), 'redis.conf');
  assert.equal(spawnSync('redis-server', [conf]).status, 0);
  let back = '';
  for (let i = 0; i < 100; i++) {
    back = (await withNode(masterPort!, password, (c) => c.call('ROLE')).catch(() => [''])) as unknown as string;
    if (Array.isArray(back) && back[0] === 'slave' && back[2] === replicaPort) break;
    await new Promise((s) => setTimeout(s, 100));
  }
  assert.deepEqual([(back as unknown as unknown[])[0], (back as unknown as unknown[])[2]], ['slave', replicaPort]);
  await withNode(replicaPort!, password, (c) => c.call('CONFIG', 'SET', 'cluster-replica-no-failover', 'no'));
});

test('resume re-checks the cluster before acting, and an unattended resume retries a failed step', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, 5461);
  const first = await cli(
    home,
    ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`, '--yes'],
    { REDIS_RUNBOOK_FAILPOINT: 'failover.confirm' },
  );
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  // While the run is down, the replica it was about to promote goes away.
  const replicaPort = Number(replica.split(':')[1]);
  await withNode(replicaPort, password, (r) => r.call('SHUTDOWN', 'NOSAVE').catch(() => undefined));
  await new Promise((s) => setTimeout(s, 300));
  const second = await cli(home, ['resume', id, '--yes']);
  assert.equal(second.code, 1, second.out);
  assert.match(
    second.stdout,
    /FAIL replica reachable: .* does not answer/,
    'the prompt it stopped at was re-checked, not continued',
  );
  let show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'failed');
  assert.equal(
    show.audit.filter((a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER')
      .length,
    0,
  );

  // The replica comes back; resuming retries the failed step (which checks again) and finishes.
  assert.equal(
    spawnSync('redis-server', [join(inventory, '..', 'nodes', String(replicaPort), 'redis.conf')]).status,
    0,
  );
  for (let i = 0; i < 100; i++) {
    const link = await withNode(replicaPort, password, (r) => r.call('INFO', 'replication')).catch(() => '');
    if (/master_link_status:up/.test(String(link))) break;
    await new Promise((s) => setTimeout(s, 100));
  }
  const third = await cli(home, ['resume', id, '--yes']);
  assert.equal(third.code, 0, third.out);
  show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'succeeded');
  assert.ok(show.audit.some((a: { command: string }) => a.command === 'RESUME-RECHECK'));
  assert.ok(show.audit.some((a: { command: string }) => a.command === 'RESUME-RETRY'));
  assert.equal((await roles(BASE, password, 5461)).masterOfSlot0, replica);
});
