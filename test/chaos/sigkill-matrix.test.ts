import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli, tempStateDir } from '../support/cli.js';
import { roles, unbalance as moveSomeSlots } from '../support/cluster.js';
import {
  chaseNotReached,
  killChain,
  keysPerSlot,
  repeatedActions,
  sentBeforeRun,
  slotDifferences,
  type AuditEntry,
} from '../support/failpoints.js';
import { failpointsOf } from '../../src/engine/failpoint.js';
import { test as plainTest } from 'node:test';
import { figures, test } from '../support/reliability.js';
import { stepKinds } from '../../src/steps/registry.js';

// Every runbook in runbooks/, killed with SIGKILL at every failpoint of its plan
// (failpointsOf: each step's phase boundaries and its kind's declared points),
// each time resumed from exactly there. One chain per runbook: all points armed,
// the first reached kills, the resume re-arms the rest (test/support/failpoints.ts).
// Each runbook gets a fresh sandbox; base ports rotate within 11500-12499 (a
// target cluster uses base+100, sshd base+99).

const RUNBOOKS = fileURLToPath(new URL('../../../runbooks/', import.meta.url));
const BASES = [11500, 11700, 11900, 12100, 12300];
const KEYS = 2000;

interface Env {
  home: string;
  inventory: string;
  password: string;
  base: number;
}

/**
 * What each runbook needs to run on a sandbox: its sandbox options, its
 * parameters, what to do before it, and whether a target must end up with
 * the source's keys. Params only; the points come from the plan.
 */
interface Case {
  sandbox: string[];
  params(e: Env): Promise<string[]>;
  prepare?(e: Env): Promise<void>;
  /** The target cluster's keys per slot must equal the source's before the run (verify-data: its own, unchanged). */
  target?: 'copy' | 'unchanged';
  /** No point of its plan depends on timing: every one must be reached and killed. */
  reachesAll?: true;
}

const masterOf = async (e: Env, slot: number) => (await roles(e.base, e.password, slot)).masterOfSlot0;

const CASES: Record<string, Case> = {
  'manual-failover': { sandbox: [], params: async (e) => [`node=${await masterOf(e, 0)}`] },
  'failover-drill': { sandbox: [], params: async (e) => [`node=${await masterOf(e, 5461)}`, 'restore=true'] },
  // A master with a replica: demoted first, so every step of the runbook but move-slots is in the plan.
  'decommission-node': { sandbox: [], params: async (e) => [`node=${await masterOf(e, 10923)}`, 'deleteFiles=true'] },
  rebalance: { sandbox: [], params: async () => [], prepare: unbalance },
  'migrate-copy-files': { sandbox: ['--target-masters', '3', '--ssh'], params: async () => [], target: 'copy' },
  'migrate-consolidate-reshard': {
    sandbox: ['--target-masters', '4', '--ssh'],
    params: async () => ['restoreSource=true'],
    target: 'copy',
  },
  'migrate-sync': {
    sandbox: ['--target-masters', '4'],
    params: async () => ['max-lag=1mb', 'rounds=2'],
    target: 'copy',
    // full-sync:loading included: the engine fires it after a chunk loads, not a 250 ms poll that 2000 keys outrun.
    reachesAll: true,
  },
  'verify-data': {
    sandbox: ['--target-masters', '3', '--seed-target'],
    params: async () => ['rounds=1', 'pauseMs=0'],
    target: 'unchanged',
  },
};

/** Move 1500 slots from the first master to the second, so that rebalance has work. */
function unbalance(e: Env): Promise<void> {
  return moveSomeSlots(e.base, e.password, 1500);
}

const only = process.env.RR_SIGKILL_ONLY?.split(',');
const runbooks = readdirSync(RUNBOOKS)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort()
  .filter((r) => !only || only.includes(r));
const summary: Array<{ runbook: string; points: number; killed: number; notReached: string[]; ms: number }> = [];

/**
 * Runbooks that run host commands (ssh, rsync, service start/stop) go through the
 * same matrix on three hosts in sigkill-matrix-hosts.test.ts, the stronger proof.
 * Here they run only when named (RR_SIGKILL_ONLY) or with RR_SIGKILL_ALL=1: running
 * them twice would cost the chaos suite about 5 minutes of CI's time.
 */
const ON_HOSTS = ['decommission-node', 'failover-drill', 'migrate-consolidate-reshard', 'migrate-copy-files'];
const here = runbooks.filter((r) => only || process.env.RR_SIGKILL_ALL === '1' || !ON_HOSTS.includes(r));

plainTest('every runbook in runbooks/ has a sandbox and parameters in this matrix', () => {
  const missing = runbooks.filter((r) => !CASES[r]);
  assert.deepEqual(
    missing,
    [],
    `add an entry to CASES in test/chaos/sigkill-matrix.test.ts for ${missing.join(', ')} (its sandbox options and parameters)`,
  );
});

type Plan = { runbook: string; steps: Array<{ id: string; kind: string; args: unknown }> };
const FLAGS = ['--yes', '--allow-destructive'];

/**
 * One chain over a fresh plan of the runbook, with `armed` (default: all its
 * points), and what every run must show: it succeeded, its own comparison
 * found nothing, nothing destructive went out twice, nothing before `run`.
 */
async function chainPass(e: Env, name: string, params: string[], pass: number, armed?: string[]) {
  const planFile = join(e.home, `plan-${pass}.json`);
  const planned = await cli(e.home, ['plan', name, '--inventory', e.inventory, ...params, '--out', planFile]);
  assert.equal(planned.code, 0, planned.out);
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  const points = failpointsOf(plan, stepKinds);
  const chain = await killChain(
    e.home,
    ['run', '--plan', planFile, ...FLAGS],
    FLAGS,
    armed ? armed.filter((p) => points.includes(p)) : points,
    join(e.home, `hits-${pass}`),
  );
  const showOut = (await cli(e.home, ['show', chain.runId, '--json'])).stdout;
  writeFileSync(join(e.home, `show-${pass}.json`), showOut); // kept for a look after a failure
  const show = JSON.parse(showOut);
  const where = `${name} run ${chain.runId} (state ${e.home}), killed at ${chain.killed.length} points (${chain.killed.join(' ')})`;
  assert.equal(chain.last.code, 0, `${where}: the last resume failed:\n${chain.last.out.slice(-4000)}`);
  assert.equal(show.run.status, 'succeeded', where);
  assert.ok(
    show.steps.every((s: { status: string }) => s.status === 'done'),
    `${where}: every step done`,
  );
  const kindOf = (id: string) => plan.steps.find((p) => p.id === id)?.kind;
  for (const s of show.steps.filter((x: { stepId: string }) => kindOf(x.stepId) === 'verify-data')) {
    assert.equal(
      s.output.differedPerRound.at(-1),
      0,
      `${where}: ${s.stepId} found differences: ${JSON.stringify(s.output)}`,
    );
  }
  assert.deepEqual(
    repeatedActions(show.audit as AuditEntry[]),
    [],
    `${where}: destructive or non-idempotent commands journaled twice`,
  );
  assert.deepEqual(
    sentBeforeRun(show.audit as AuditEntry[], chain.attempts),
    [],
    `${where}: commands sent before the runner recorded entering run`,
  );
  return { points, chain, where };
}

async function matrixCase(name: string, c: Case, base: number, t: { diagnostic(s: string): void }): Promise<void> {
  const started = Date.now();
  const home = tempStateDir('rr-sigkill-');
  const up = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'sk',
    '--base-port',
    String(base),
    '--keys',
    String(KEYS),
    ...c.sandbox,
  ]);
  assert.equal(up.code, 0, up.out);
  const inventory = up.stdout.trim().split('\n').pop()!;
  const e: Env = { home, inventory, password: readFileSync(join(dirname(inventory), 'password'), 'utf8').trim(), base };
  try {
    await c.prepare?.(e);
    const sourceBefore = await keysPerSlot(base, e.password);
    const targetBefore = c.target === 'unchanged' ? await keysPerSlot(base + 100, e.password) : sourceBefore;
    const params = (await c.params(e)).flatMap((p) => ['--param', p]);
    const first = await chainPass(e, name, params, 1);
    // A phase boundary is on every path: only an in-step point may go unreached.
    assert.deepEqual(
      first.chain.notReached.filter((p) => !p.includes(':')),
      [],
      `${first.where}: phase boundaries never reached`,
    );
    // The rest get runs of their own, armed with only them, while a run still reaches one.
    const { killed, notReached } = await chaseNotReached(
      name,
      first.chain,
      (n, points) => chainPass(e, name, params, n, points),
      (line) => t.diagnostic(line),
    );
    // Data, counted independently of the runbook: keys per slot, source unchanged, target as expected.
    const sourceDiff = slotDifferences(sourceBefore, await keysPerSlot(base, e.password));
    const targetDiff = c.target ? slotDifferences(targetBefore, await keysPerSlot(base + 100, e.password)) : [];
    figures(`${name}: SIGKILL at each of its ${first.points.length} failpoints, resumed`, {
      differences: sourceDiff.length + targetDiff.length,
    });
    assert.deepEqual(sourceDiff, [], `${name}: source keys per slot changed`);
    assert.deepEqual(targetDiff, [], `${name}: target keys per slot differ`);

    if (c.reachesAll) assert.deepEqual(notReached, [], `${name}: points never reached`);
    const ms = Date.now() - started;
    summary.push({ runbook: name, points: first.points.length, killed: killed.length, notReached, ms });
    t.diagnostic(
      `${name}: ${first.points.length} points, ${killed.length} killed and resumed (${first.chain.killed.length} in the first run), ${notReached.length} not reached, ${Math.round(ms / 1000)} s`,
    );
  } finally {
    await cli(home, ['sandbox', 'down', '--name', 'sk']);
  }
}

here.forEach((name, i) => {
  const c = CASES[name];
  test(
    `${name}: killed (SIGKILL) at every failpoint of its plan and resumed each time: succeeds, same keys per slot, no action repeated`,
    { skip: c ? false : 'no entry in CASES (the test above fails)' },
    (t) => matrixCase(name, c!, BASES[i % BASES.length]!, t),
  );
});

plainTest('matrix summary', (t) => {
  for (const s of summary)
    t.diagnostic(
      `${s.runbook}: ${s.points} points, ${s.killed} killed, not reached: ${s.notReached.join(' ') || 'none'}, ${Math.round(s.ms / 1000)} s`,
    );
  if (process.env.RR_SIGKILL_SUMMARY) writeFileSync(process.env.RR_SIGKILL_SUMMARY, JSON.stringify(summary, null, 2));
});
