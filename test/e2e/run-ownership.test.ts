import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, structure } from '../support/cluster.js';
import { Session } from '../../src/cli/session.js';
import { loadRunbook, resolveParams } from '../../src/engine/runbook.js';
import { discover } from '../../src/engine/prepare.js';
import { buildPlan } from '../../src/engine/plan.js';
import { executeRun } from '../../src/engine/runner.js';
import { startTimeOf } from '../../src/hosts/process-identity.js';
import { stepKinds } from '../../src/steps/registry.js';

// The process executing a run checks that it still owns it before a step acts and at every persist.

const BASE = 9020;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const home = tempStateDir();
let inventory = '';
let password = '';
let other: ChildProcess | undefined;

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  other?.kill('SIGKILL');
  await sandboxDown(home);
});

test('a run claimed by another process while it waits at a prompt stops without sending anything or writing its state', async () => {
  const { masterOfSlot0, replicaOfIt } = await roles(BASE, password);
  const before = await structure(PORTS, password);
  const session = new Session(home);
  try {
    const rb = loadRunbook('manual-failover', stepKinds);
    const params = resolveParams(rb, [`node=${masterOfSlot0}`]);
    const inv = session.inventory(inventory);
    const env = session.env(inv, 'read-write', session.store);
    const plan = buildPlan(rb, params, inv.file, await discover(rb, params, env));
    const store = session.store;
    store.createRun(
      {
        id: 'own-1',
        runbook: rb.name,
        clusters: ['source'],
        status: 'running',
        createdAt: Date.now(),
        pid: process.pid,
        planJson: JSON.stringify(plan),
        runbookHash: rb.hash,
        inventoryFile: inv.file,
      },
      plan.steps.map((s, idx) => ({ stepId: s.id, idx, kind: s.kind, title: s.title })),
    );
    // Another process (a `resume` that took this one for dead) claims the run while the failover prompt is open.
    other = spawn('sleep', ['60'], { stdio: 'ignore' });
    const prompter = {
      confirmStep: async (step: { id: string }) => {
        if (step.id === 'failover') {
          store.db
            .prepare('UPDATE runs SET pid = ?, pid_start = ?, host = ? WHERE id = ?')
            .run(other!.pid, startTimeOf(other!.pid!), hostname(), 'own-1');
        }
        return 'continue' as const;
      },
      onFailure: async () => 'abort' as const,
    };
    const outcome = await executeRun({
      kinds: stepKinds,
      store,
      runId: 'own-1',
      plan,
      env,
      prompter,
      allowDestructive: false,
      stop: new AbortController().signal,
    });
    assert.equal(outcome.status, 'stopped');
    assert.equal(outcome.lost, true);
    assert.match(
      outcome.error ?? '',
      new RegExp(
        `E_RUN_TAKEN_OVER: run own-1 is now owned by pid ${other.pid} on host ${hostname()}, not this process`,
      ),
    );
    const audit = store.audit('own-1');
    assert.equal(
      audit.filter((a) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER').length,
      0,
      'no CLUSTER FAILOVER was sent',
    );
    assert.equal(
      audit.filter((a) => a.write && !['OPERATOR-CONTINUE'].includes(a.command)).length,
      0,
      'no write was journaled',
    );
    const run = store.getRun('own-1')!;
    assert.equal(run.pid, other.pid, 'the new owner keeps the run');
    assert.equal(run.status, 'waiting', 'the run is as the new owner found it');
    assert.equal(store.steps('own-1').find((s) => s.stepId === 'failover')!.status, 'confirming');
  } finally {
    await session.close();
  }
  assert.equal(await structure(PORTS, password), before);
  const after = await roles(BASE, password);
  assert.equal(after.masterOfSlot0, masterOfSlot0);
  assert.equal(after.replicaOfIt, replicaOfIt);
});
