import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, structure, withNode, SHARD_SLOTS } from '../support/cluster.js';

const BASE = 7200;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  await sandboxDown(home);
});

test('plan is read-only: cluster structure, epochs and roles unchanged, no run recorded', async () => {
  const before = await structure(PORTS, password);
  const { masterOfSlot0 } = await roles(BASE, password);
  const out = join(home, 'plan.json');
  const r = await cli(home, [
    'plan',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${masterOfSlot0}`,
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /CLUSTER FAILOVER/);
  assert.match(r.stdout, /PASS replication link up/);
  assert.match(r.stdout, /All preconditions pass/);
  assert.equal(await structure(PORTS, password), before);
  const runs = await cli(home, ['runs', '--json']);
  assert.deepEqual(JSON.parse(runs.stdout), []);
  const plan = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(plan.runbook, 'manual-failover');
  assert.ok(plan.clusters.source.fingerprint);
});

test('run --yes swaps the roles, waits for agreement and records every step and command', async () => {
  const { masterOfSlot0: oldMaster, replicaOfIt: replica } = await roles(BASE, password);
  const r = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${oldMaster}`,
    '--yes',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout.split('\n')[0]!, /^run mf-\S+: manual-failover/, 'the run id comes first');
  const id = runIdOf(r);
  const after = await roles(BASE, password);
  assert.equal(after.masterOfSlot0, replica);
  assert.equal(after.replicaOfIt, oldMaster);
  // Every node agrees (the step waited for it), so any node's view says the same.
  for (const p of PORTS) assert.equal((await roles(p, password)).masterOfSlot0, replica, `node ${p} agrees`);

  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'succeeded');
  assert.deepEqual(
    show.steps.map((s: { status: string }) => s.status),
    ['done', 'done', 'done', 'done', 'done'],
  );
  const failovers = show.audit.filter(
    (a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER',
  );
  assert.equal(failovers.length, 1);
  assert.equal(failovers[0].target, replica);
  const agreement = show.steps.find((s: { stepId: string }) => s.stepId === 'agreement');
  assert.ok(agreement.output.failoverToAgreementMs > 0, 'time from CLUSTER FAILOVER to agreement is measured');
  const text = await cli(home, ['show', id]);
  assert.match(text.stdout, /audit log/);
});

test('a saved plan is refused when the topology drifted since', async () => {
  const { masterOfSlot0, replicaOfIt } = await roles(BASE, password);
  const out = join(home, 'drift.json');
  assert.equal(
    (
      await cli(home, [
        'plan',
        'manual-failover',
        '--inventory',
        inventory,
        '--param',
        `node=${masterOfSlot0}`,
        '--out',
        out,
      ])
    ).code,
    0,
  );
  // Someone fails the shard over by hand after the plan was reviewed.
  const port = Number(replicaOfIt.split(':')[1]);
  await withNode(port, password, (r) => r.call('CLUSTER', 'FAILOVER'));
  for (let i = 0; i < 100 && (await roles(BASE, password)).masterOfSlot0 !== replicaOfIt; i++)
    await new Promise((s) => setTimeout(s, 50));
  await new Promise((s) => setTimeout(s, 1000));
  const before = await structure(PORTS, password);
  const r = await cli(home, ['run', '--plan', out, '--yes']);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, /E_PLAN_DRIFT: the topology changed/);
  assert.match(r.stderr, new RegExp(`${masterOfSlot0} was master, is now replica`));
  assert.equal(await structure(PORTS, password), before, 'nothing was changed');
});

test('two runs on one cluster: the second is refused with the holder id, until the first is resumed', async () => {
  const { masterOfSlot0 } = await roles(BASE, password, SHARD_SLOTS[1]);
  const first = await cli(
    home,
    ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${masterOfSlot0}`, '--yes'],
    { REDIS_RUNBOOK_FAILPOINT: 'replica-in-sync.check' },
  );
  assert.equal(first.code, 137, 'killed with SIGKILL while holding the cluster');
  const holder = runIdOf(first);
  const second = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${masterOfSlot0}`,
    '--yes',
  ]);
  assert.equal(second.code, 3, second.out);
  assert.match(second.stderr, new RegExp(`E_CLUSTER_LOCKED: cluster source is held by run ${holder}`));
  const resumed = await cli(home, ['resume', holder, '--yes']);
  assert.equal(resumed.code, 0, resumed.out);
  const third = await cli(home, [
    'plan',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${(await roles(BASE, password, SHARD_SLOTS[1])).masterOfSlot0}`,
  ]);
  assert.equal(third.code, 0, third.out);
});

test('FORCE is refused while the master answers; nothing is sent', async () => {
  const { masterOfSlot0 } = await roles(BASE, password, SHARD_SLOTS[2]);
  const before = await structure(PORTS, password);
  const r = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${masterOfSlot0}`,
    '--param',
    'mode=force',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stdout, /FORCE is refused while the master is reachable/);
  assert.equal(await structure(PORTS, password), before);
  const id = runIdOf(r);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'refused');
  assert.equal(
    show.audit.filter((a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER')
      .length,
    0,
  );
});

test('guided mode needs a terminal; without one it says to pass --yes and changes nothing', async () => {
  const { masterOfSlot0 } = await roles(BASE, password);
  const r = await cli(home, ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${masterOfSlot0}`]);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /E_NOT_A_TERMINAL.*\n.*--yes/);
});

test('no secret reaches the state database, the plan file or the output', async () => {
  assert.ok(password.length >= 16);
  const files = readdirSync(home).filter((f) => f.startsWith('state.db') || f.endsWith('.json'));
  assert.ok(files.includes('state.db'));
  for (const f of files) assert.ok(!readFileSync(join(home, f)).includes(password), `${f} holds the password`);
  const db = new Database(join(home, 'state.db'), { readonly: true });
  const dump = JSON.stringify([
    db.prepare('SELECT * FROM runs').all(),
    db.prepare('SELECT * FROM steps').all(),
    db.prepare('SELECT * FROM audit').all(),
  ]);
  db.close();
  assert.ok(dump.includes('CLUSTER'), 'the audit log is there');
  assert.ok(!dump.includes(password));
  const show = await cli(home, ['runs']);
  assert.ok(!show.out.includes(password));
});

test('failback=true: a planned failover, then a second one that puts the original master back', async () => {
  const slot = SHARD_SLOTS[2]!;
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, slot);
  const r = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--param',
    'failback=true',
    '--yes',
  ]);
  assert.equal(r.code, 0, r.out);
  const after = await roles(BASE, password, slot);
  assert.equal(after.masterOfSlot0, master, 'the original master is master again');
  assert.equal(after.replicaOfIt, replica);
  const show = JSON.parse((await cli(home, ['show', runIdOf(r), '--json'])).stdout);
  const failovers = show.audit
    .filter((a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER')
    .map((a: { target: string }) => a.target);
  assert.deepEqual(failovers, [replica, master], 'first the replica is promoted, then the original master');
  assert.ok(show.steps.every((s: { status: string }) => s.status === 'done'));
});
