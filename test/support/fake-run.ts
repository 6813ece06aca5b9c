import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/engine/store.js';
import type { Plan } from '../../src/engine/plan.js';
import type { StepKind, StepRunContext } from '../../src/engine/step-contract.js';

/**
 * The engine without a cluster: a real SQLite state dir, a run recorded from a plan of fake
 * steps, and fake step kinds. For the unit tests of the runner, intents and run resources.
 */

export function tempStore(prefix = 'rr-engine-'): Store {
  const dir = join(mkdtempSync(join(tmpdir(), prefix)), 'state');
  mkdirSync(dir, { mode: 0o700 });
  return new Store(dir);
}

/** A plan whose steps s0, s1, ... are of the given kinds, recorded as a running run. */
export function recordFakeRun(s: Store, id: string, kinds: string[]): Plan {
  const plan: Plan = {
    version: 1,
    id: `plan-${id}`,
    runbook: 'fake',
    runbookHash: 'h',
    params: {},
    inventoryFile: '/dev/null',
    clusters: {},
    createdAt: new Date().toISOString(),
    steps: kinds.map((kind, i) => ({ id: `s${i}`, kind, title: kind, args: {}, commands: [] })),
  };
  s.createRun(
    {
      id,
      runbook: 'fake',
      clusters: [],
      status: 'running',
      createdAt: Date.now(),
      pid: process.pid,
      planJson: JSON.stringify(plan),
      runbookHash: 'h',
      inventoryFile: '/dev/null',
    },
    plan.steps.map((st, idx) => ({ stepId: st.id, idx, kind: st.kind, title: st.title })),
    false,
  );
  return plan;
}

/** A step kind that checks and verifies nothing and runs `run`. */
export function fakeKind(kind: string, run: (ctx: StepRunContext<unknown>) => Promise<unknown>): StepKind {
  return {
    kind,
    summary: kind,
    params: {},
    resolve: () => ({}),
    title: () => kind,
    commands: () => [],
    check: async () => [],
    run,
    verify: async () => [],
  };
}
