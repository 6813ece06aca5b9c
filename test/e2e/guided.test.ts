import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cli, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, structure, SHARD_SLOTS } from '../support/cluster.js';
import { guided, ENTER, DOWN, CTRL_C } from '../support/pty.js';

const BASE = 7800;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, ['--keys', '500']));
});
after(async () => {
  await sandboxDown(home);
});

const lastRun = async () =>
  JSON.parse((await cli(home, ['runs', '--json'])).stdout)[0] as { id: string; status: string };

test('guided: each step is shown with its commands and asked; continue all the way swaps the roles', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[0]);
  const s = await guided(
    home,
    ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`],
    () => ENTER,
  );
  assert.equal(s.code, 0, s.out);
  assert.equal((s.out.match(/Run step \[[a-z-]+\]\?/g) ?? []).length >= 5, true);
  assert.match(s.out, new RegExp(`-> ${replica}: CLUSTER FAILOVER`));
  const after = await roles(BASE, password, SHARD_SLOTS[0]);
  assert.equal(after.masterOfSlot0, replica);
  const run = await lastRun();
  assert.equal(run.status, 'succeeded');
  const show = JSON.parse((await cli(home, ['show', run.id, '--json'])).stdout);
  assert.equal(
    show.audit.filter(
      (a: { command: string; args: string[] }) => a.command === 'OPERATOR-CONTINUE' && a.args[0] === 'guided',
    ).length,
    5,
  );
});

test('guided: abort at the failover prompt sends nothing and releases the cluster', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[1]);
  const before = await structure(PORTS, password);
  // continue, continue, then abort (third choice) at the failover step
  const s = await guided(
    home,
    ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`],
    (n) => (n < 3 ? ENTER : DOWN + DOWN + ENTER),
  );
  assert.equal(s.code, 1, s.out);
  assert.match(s.out, /aborted/);
  assert.equal(await structure(PORTS, password), before);
  const run = await lastRun();
  assert.equal(run.status, 'aborted');
  const show = JSON.parse((await cli(home, ['show', run.id, '--json'])).stdout);
  assert.equal(
    show.audit.filter((a: { command: string; args: string[] }) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER')
      .length,
    0,
  );
  assert.ok(show.audit.some((a: { command: string }) => a.command === 'OPERATOR-ABORT'));
  assert.equal(
    (await cli(home, ['plan', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`])).code,
    0,
    'the lock is released',
  );
});

test('guided: Ctrl-C at a prompt stops at that safe point; resume finishes the run', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[2]);
  const s = await guided(
    home,
    ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`],
    (n) => (n < 3 ? ENTER : CTRL_C),
  );
  assert.equal(s.code, 1, s.out);
  assert.match(s.out, /resume with: redis-runbook resume/);
  const run = await lastRun();
  assert.equal(run.status, 'stopped');
  assert.equal((await roles(BASE, password, SHARD_SLOTS[2])).masterOfSlot0, master, 'nothing was failed over');
  const r = await cli(home, ['resume', run.id, '--yes']);
  assert.equal(r.code, 0, r.out);
  assert.equal((await roles(BASE, password, SHARD_SLOTS[2])).masterOfSlot0, replica);
});
