import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/engine/store.js';
import { startRun, type StartOptions } from '../../src/engine/start-run.js';
import { takeOverForResume } from '../../src/engine/lifecycle.js';
import { executeRun } from '../../src/engine/runner.js';
import type { Plan } from '../../src/engine/plan.js';
import type { StepEnv, StepKind, StepKinds } from '../../src/engine/step-contract.js';
import type { Inventory } from '../../src/inventory/types.js';
import { RunbookError } from '../../src/errors.js';

// The engine's API with fake step kinds and a fake runbook directory (no cluster): what
// `run` starts and records, what it refuses, and what `resume` needs (the plan, not the YAML).

const kind = (name: string, o: Partial<StepKind> = {}): StepKind => ({
  kind: name,
  summary: name,
  params: { ready: { help: 'whether the check passes', default: 'true' } },
  resolve: (raw) => ({ ready: raw.ready }),
  title: () => name,
  commands: () => [],
  check: async (ctx) => [
    { name: 'ready', ok: (ctx.args as { ready: string }).ready === 'true', reason: 'as the parameter says' },
  ],
  run: async () => ({}),
  verify: async () => [],
  ...o,
});
const kinds: StepKinds = new Map([
  ['noop', kind('noop')],
  ['wipe', kind('wipe', { destructive: () => 'deletes every key of the target' })],
]);

let dir = '';
const runbook = (name: string, lock: boolean, steps: string[]) =>
  writeFileSync(
    join(dir, `${name}.yaml`),
    [
      `name: ${name}`,
      `summary: a fake runbook`,
      `lock: ${lock}`,
      'params:',
      '  ready: { default: "true", help: whether the checks pass }',
      'steps:',
      ...steps.flatMap((k, i) => [`  - id: s${i}`, `    kind: ${k}`]),
      '',
    ].join('\n'),
  );

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rr-api-runbooks-'));
  process.env.REDIS_RUNBOOK_RUNBOOKS = dir;
  runbook('plain', false, ['noop', 'noop']);
  runbook('wiping', true, ['noop', 'wipe']);
});
after(() => {
  delete process.env.REDIS_RUNBOOK_RUNBOOKS;
  rmSync(dir, { recursive: true, force: true });
});

function store(): { s: Store; stateDir: string } {
  const stateDir = join(mkdtempSync(join(tmpdir(), 'rr-api-')), 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  return { s: new Store(stateDir), stateDir };
}

const options = (s: Store, stateDir: string, o: Partial<StartOptions>): StartOptions => ({
  store: s,
  stateDir,
  kinds,
  params: [],
  inventoryFile: '/dev/null',
  inventory: (file) => ({ file }) as Inventory,
  readEnv: () => ({}) as StepEnv,
  guided: false,
  allowDestructive: false,
  ...o,
});

test('startRun: an unattended run with a destructive step and no --allow-destructive is refused before anything is recorded', async () => {
  const { s, stateDir } = store();
  await assert.rejects(
    startRun(options(s, stateDir, { runbook: 'wiping' })),
    (e) => e instanceof RunbookError && e.code === 'E_DESTRUCTIVE' && /s1 \(deletes every key/.test(e.message),
  );
  assert.deepEqual(s.listRuns(), []);
  const ok = await startRun(options(s, stateDir, { runbook: 'wiping', allowDestructive: true }));
  assert.equal(ok.status, 'running');
  s.close();
});

test('startRun: a failing precondition records the run as refused, with the reason, and says which step', async () => {
  const { s, stateDir } = store();
  const r = await startRun(options(s, stateDir, { runbook: 'plain', params: ['ready=false'] }));
  assert.equal(r.status, 'refused');
  assert.deepEqual(r.status === 'refused' && r.failed.map((f) => [f.stepId, f.conditions.map((c) => c.name)]), [
    ['s0', ['ready']],
    ['s1', ['ready']],
  ]);
  const [row] = s.listRuns();
  assert.equal(row!.status, 'refused');
  assert.match(row!.error!, /refused before any change: s0: ready: as the parameter says/);
  s.close();
});

test('resume needs only the recorded plan: the runbook file gone, the run resumes with the access the plan says', async () => {
  const { s, stateDir } = store();
  runbook('vanishing', false, ['noop']);
  const r = await startRun(options(s, stateDir, { runbook: 'vanishing' }));
  assert.equal(r.status, 'running');
  assert.equal(r.status === 'running' && r.access, 'read-only');
  rmSync(join(dir, 'vanishing.yaml'));
  const { plan, access } = takeOverForResume(s, r.runId, stateDir, false, kinds);
  assert.equal(access, 'read-only');
  assert.equal(plan.lock, false);
  const out = await executeRun({
    store: s,
    runId: r.runId,
    plan,
    env: {} as StepEnv,
    kinds,
    allowDestructive: false,
    stop: new AbortController().signal,
  });
  assert.equal(out.status, 'succeeded', out.error);
  s.close();
});

test('a plan recorded before plans carried lock is completed from its runbook, which must be unchanged', async () => {
  const { s, stateDir } = store();
  runbook('older', true, ['noop']);
  const r = await startRun(options(s, stateDir, { runbook: 'older' }));
  assert.equal(r.status, 'running');
  const old = { ...r.plan } as Plan;
  delete old.lock;
  // As an older version recorded it.
  const db = (s as unknown as { db: { prepare(q: string): { run(...a: unknown[]): void } } }).db;
  db.prepare('UPDATE runs SET plan_json = ? WHERE id = ?').run(JSON.stringify(old), r.runId);
  assert.equal(takeOverForResume(s, r.runId, stateDir, false, kinds).access, 'read-write');
  runbook('older', true, ['noop', 'noop']);
  assert.throws(
    () => takeOverForResume(s, r.runId, stateDir, false, kinds),
    (e) => e instanceof RunbookError && e.code === 'E_RUNBOOK_CHANGED',
  );
  s.close();
});
