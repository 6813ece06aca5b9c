import { RunResources } from './run-resources.js';
import { preconditionError } from '../errors.js';
import { kindOf, type StepEnv, type Condition, type RunState, type StepKinds } from './step-contract.js';
import type { Topology } from '../redis/topology.js';
import { buildPlan, type Plan, type PlanReport } from './plan.js';
import { clustersOf, type Runbook } from './runbook.js';
import { failpoint } from './failpoint.js';
import { assertDistinct, clusterNodes } from './cluster-identity.js';

/** Discover the clusters a runbook acts on (read-only). */
export async function discover(
  rb: Runbook,
  params: Record<string, string>,
  env: StepEnv,
): Promise<Record<string, Topology>> {
  const names = clustersOf(rb, params);
  const out: Record<string, Topology> = {};
  for (const name of names) out[name] = await env.topology(name);
  return out;
}

/**
 * Evaluate every step's preconditions against the live clusters. With a
 * read-only env this cannot change anything: the connection layer refuses
 * writes, whatever a step's check tries to do.
 */
export async function evaluatePreconditions(plan: Plan, env: StepEnv, kinds: StepKinds): Promise<PlanReport> {
  const preconditions: Record<string, Condition[]> = {};
  const resources = new RunResources();
  for (const step of plan.steps) {
    const kind = kindOf(kinds, step.kind, plan.runbook);
    try {
      preconditions[step.id] = await kind.check({
        runId: 'plan',
        state: planState(),
        // A check opens nothing; whatever one might is let go with the plan.
        resources,
        stepId: step.id,
        args: step.args,
        env,
        outputs: {},
        log: () => {},
        failpoint,
        // A check only reads; nothing is about to be done at plan time.
        intent: () => {
          throw new Error(`step ${step.id}: a check recorded an intent (checks must not act)`);
        },
        signal: new AbortController().signal,
        saveFindings: () => {},
        progress: () => {},
        planning: true,
        mayDestroy: (reason) => {
          throw preconditionError('E_READ_ONLY', `a plan destroys nothing (${reason})`, 'use `run`');
        },
      });
    } catch (err) {
      preconditions[step.id] = [{ name: 'check', ok: false, reason: (err as Error).message }];
    }
  }
  await resources.dispose();
  return { plan, preconditions };
}

/** A plan keeps no state: what a check stores is dropped with the plan. */
function planState(): RunState {
  const m = new Map<string, unknown>();
  return {
    get: <T>(k: string) => m.get(k) as T | undefined,
    set: (k, v) => {
      m.set(k, v);
    },
  };
}

export async function preparePlan(
  rb: Runbook,
  params: Record<string, string>,
  inventoryFile: string,
  env: StepEnv,
): Promise<PlanReport> {
  const topologies = await discover(rb, params, env);
  // A source and a target that are the same nodes are refused before anything is planned.
  assertDistinct(rb, params, await clusterNodes(rb, params, env, topologies));
  const plan = buildPlan(rb, params, inventoryFile, topologies, new Date(), env);
  return evaluatePreconditions(plan, env, rb.kinds);
}

/** Refuse a saved plan when a cluster's structure changed since it was made. */
export function assertNoDrift(
  plan: Plan,
  live: Record<string, Topology>,
  describe: (name: string, t: Topology) => string[],
): void {
  const drifted: string[] = [];
  for (const [name, saved] of Object.entries(plan.clusters)) {
    const t = live[name];
    if (!t) {
      drifted.push(`${name}: not discovered`);
      continue;
    }
    if (t.fingerprint !== saved.fingerprint)
      drifted.push(
        `${name}: ${describe(name, t).join('; ') || `fingerprint ${saved.fingerprint} -> ${t.fingerprint}`}`,
      );
  }
  if (drifted.length) {
    throw preconditionError(
      'E_PLAN_DRIFT',
      `the topology changed since the plan was made (${plan.createdAt}): ${drifted.join(' | ')}`,
      `make a new plan with \`redis-runbook plan ${plan.runbook} ...\` and review it`,
    );
  }
}
