import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/engine/store.js';
import { fakeKind, recordFakeRun, tempStore } from '../support/fake-run.js';
import { executeRun, type Prompter } from '../../src/engine/runner.js';
import type { StepEnv, StepKind, StepKinds } from '../../src/engine/step-contract.js';
import { failedError } from '../../src/errors.js';

// The machine owns where a run is and which steps are done (context.done); the runner projects
// that onto the journal's step rows. Fake step kinds, a real SQLite file.

const store = () => tempStore('rr-machine-');
const recordRun = (s: Store, id: string, n: number) =>
  recordFakeRun(
    s,
    id,
    Array.from({ length: n }, () => 'ok'),
  );

const kind = (run: StepKind['run']): StepKinds => new Map([['ok', fakeKind('ok', run)]]);

const base = { env: {} as StepEnv, allowDestructive: false, stop: new AbortController().signal };

test('every verified step is journaled done, and the snapshot lists them in order; a skipped one is not done', async () => {
  const s = store();
  const plan = recordRun(s, 'r1', 3);
  let n = 0;
  const kinds = kind(async (ctx) => {
    if (ctx.stepId === 's1' && n++ === 0) throw failedError('E_FAKE', 'first attempt fails');
    return {};
  });
  const skipFailed: Prompter = { confirmStep: async () => 'continue', onFailure: async () => 'skip' };
  const out = await executeRun({ ...base, store: s, runId: 'r1', plan, kinds, prompter: skipFailed });
  assert.equal(out.status, 'succeeded', out.error);
  assert.deepEqual(
    s.steps('r1').map((r) => [r.stepId, r.status]),
    [
      ['s0', 'done'],
      ['s1', 'skipped'],
      ['s2', 'done'],
    ],
  );
  const snap = JSON.parse(s.getRun('r1')!.snapshotJson!) as { context: { done: string[] } };
  assert.deepEqual(snap.context.done, ['s0', 's2']);
  s.close();
});

test('a snapshot persisted before the machine kept a context (context {}) resumes: the steps it finishes are journaled done', async () => {
  const s = store();
  const plan = recordRun(s, 'r2', 3);
  // As the journal of an older version has it: s0 done, the run waiting at s1's prompt.
  s.persist('r2', null, 'waiting', [
    { stepId: 's0', status: 'done' },
    { stepId: 's1', status: 'confirming' },
  ]);
  const old = { status: 'active', value: { s1: 'confirm' }, historyValue: {}, context: {}, children: {} };
  const ran: string[] = [];
  const kinds = kind(async (ctx) => {
    ran.push(ctx.stepId);
    return {};
  });
  const out = await executeRun({ ...base, store: s, runId: 'r2', plan, kinds, snapshot: old });
  assert.equal(out.status, 'succeeded', out.error);
  assert.deepEqual(ran, ['s1', 's2']);
  assert.deepEqual(
    s.steps('r2').map((r) => r.status),
    ['done', 'done', 'done'],
  );
  s.close();
});
