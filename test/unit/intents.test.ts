import { test } from 'node:test';
import assert from 'node:assert/strict';
import { executeRun, type Prompter } from '../../src/engine/runner.js';
import { fakeKind, recordFakeRun, tempStore } from '../support/fake-run.js';
import type { Intent, StepEnv, StepKinds } from '../../src/engine/step-contract.js';
import { JOURNAL_ONLY } from '../../src/engine/schema.js';
import { failedError } from '../../src/errors.js';
import { registerSecret } from '../../src/scrub.js';

// The engine with fake step kinds (no cluster): a step's intents, recorded before it acts,
// reach its later attempts through ctx.inDoubt, by name, from SQLite.

const store = () => tempStore('rr-intents-');
const recordRun = recordFakeRun;
const fake = fakeKind;

const retrying: Prompter = { confirmStep: async () => 'continue', onFailure: async () => 'retry' };
const env = {} as StepEnv;

test('an intent recorded before a step fails reaches its retry by name, with its detail; the first attempt sees none', async () => {
  const s = store();
  const seen: Array<Intent[] | undefined> = [];
  const kinds: StepKinds = new Map([
    [
      'act-once',
      fake('act-once', async (ctx) => {
        seen.push(ctx.inDoubt?.intents);
        if (ctx.inDoubt?.intents.some((i) => i.name === 'flip')) return { flipped: 'earlier' };
        ctx.intent('flip', { node: '127.0.0.1:7000', was: 'yes' });
        throw failedError('E_FAKE', 'died after recording its intent');
      }),
    ],
  ]);
  const plan = recordRun(s, 'r1', ['act-once']);
  const out = await executeRun({
    store: s,
    runId: 'r1',
    plan,
    env,
    kinds,
    prompter: retrying,
    allowDestructive: false,
    stop: new AbortController().signal,
  });
  assert.equal(out.status, 'succeeded', out.error);
  assert.equal(seen.length, 2);
  assert.equal(seen[0], undefined, 'the first attempt has no past');
  assert.deepEqual(
    seen[1]!.map((i) => [i.name, i.detail]),
    [['flip', { node: '127.0.0.1:7000', was: 'yes' }]],
  );
  assert.deepEqual(s.steps('r1')[0]!.output, { flipped: 'earlier' });
  s.close();
});

test("intents are the step's own: another step of the run does not see them, and a secret in a detail is not stored", async () => {
  const s = store();
  const secret = 'hunter2-intent-secret';
  // As the inventory's loader does with every password it resolves.
  registerSecret(secret);
  let other: Intent[] | undefined = [];
  const kinds: StepKinds = new Map([
    [
      'records',
      fake('records', async (ctx) => {
        ctx.intent('start', { command: `redis-server --requirepass ${secret}` });
        return {};
      }),
    ],
    [
      'reads',
      fake('reads', async (ctx) => {
        other = ctx.inDoubt?.intents;
        return {};
      }),
    ],
  ]);
  const plan = recordRun(s, 'r2', ['records', 'reads']);
  const out = await executeRun({
    store: s,
    runId: 'r2',
    plan,
    env,
    kinds,
    allowDestructive: false,
    stop: new AbortController().signal,
  });
  assert.equal(out.status, 'succeeded', out.error);
  assert.equal(other, undefined, 'the second step has no intents of its own');
  const stored = s.intents('r2', 's0');
  assert.equal(stored.length, 1);
  assert.ok(!JSON.stringify(stored).includes(secret), JSON.stringify(stored));
  const raw = s.db.prepare('SELECT detail_json FROM intents').all() as Array<{ detail_json: string }>;
  assert.ok(raw.every((r) => !r.detail_json.includes(secret)));
  s.close();
});

test('a run an older version left unfinished: a step that had sent commands is refused (E_IN_DOUBT_OLDER_RUN), one that had not runs', async () => {
  const s = store();
  const ran: string[] = [];
  const kinds: StepKinds = new Map([
    [
      'acts',
      fake('acts', async (ctx) => {
        ran.push(ctx.stepId);
        return {};
      }),
    ],
  ]);
  const plan = recordRun(s, 'r3', ['acts', 'acts']);
  // As migration 4 leaves such a run: marked, its first step's commands in the journal only.
  s.setState('r3', JOURNAL_ONLY, true);
  s.db
    .prepare(
      'INSERT INTO audit (run_id, step_id, at, target, command, args_json, duration_ms, ok, write) VALUES (?,?,?,?,?,?,?,?,?)',
    )
    .run('r3', 's0', Date.now(), '127.0.0.1:7001', 'CLUSTER', '["FAILOVER"]', 1, 1, 1);
  const aborting: Prompter = { confirmStep: async () => 'continue', onFailure: async () => 'abort' };
  const out = await executeRun({
    store: s,
    runId: 'r3',
    plan,
    env,
    kinds,
    prompter: aborting,
    allowDestructive: false,
    stop: new AbortController().signal,
  });
  assert.equal(out.status, 'aborted');
  assert.deepEqual(ran, [], 'the step that had acted was not run again');
  assert.match(
    s.steps('r3')[0]!.error ?? '',
    /E_IN_DOUBT_OLDER_RUN: step s0 of run r3, .*already sent 1 command\(s\) \(CLUSTER\)/,
  );
  // The same run without the journal row: its step runs.
  const s2 = store();
  const plan2 = recordRun(s2, 'r4', ['acts']);
  s2.setState('r4', JOURNAL_ONLY, true);
  const out2 = await executeRun({
    store: s2,
    runId: 'r4',
    plan: plan2,
    env,
    kinds,
    allowDestructive: false,
    stop: new AbortController().signal,
  });
  assert.equal(out2.status, 'succeeded', out2.error);
  assert.deepEqual(ran, ['s0']);
  s.close();
  s2.close();
});
