import { randomBytes } from 'node:crypto';
import { usageError } from '../errors.js';
import type { Inventory } from '../inventory/types.js';
import { assertDistinct, clusterNodes } from './cluster-identity.js';
import { acceptSavedPlan } from './lifecycle.js';
import { buildPlan, planRefused, type Plan } from './plan.js';
import { discover, evaluatePreconditions } from './prepare.js';
import { clustersOf, loadRunbook, resolveParams, type Runbook } from './runbook.js';
import type { Condition, StepEnv, StepKinds } from './step-contract.js';
import type { ClusterNodes, Store } from './store.js';

/**
 * Starting a run, the engine's half of `run`: build the plan (or accept a
 * saved one), refuse what must not start, and record the run. Nothing is
 * sent to a cluster but reads until the run is recorded as running; a run
 * refused by a precondition is recorded as refused, with the reasons. The CLI
 * renders the result and then executes the run (executeRun).
 */
export interface StartOptions {
  store: Store;
  stateDir: string;
  kinds: StepKinds;
  /** The runbook named on the command line; with a saved plan, the plan's (a different name is refused). */
  runbook?: string;
  /** `--param k=v` as given. */
  params: string[];
  saved?: Plan;
  /** The inventory file given, else the saved plan's. */
  inventoryFile?: string;
  /** Load an inventory (secrets resolved from its references), and open a read-only env on it. */
  inventory(file: string | undefined): Inventory;
  readEnv(inv: Inventory): StepEnv;
  guided: boolean;
  allowDestructive: boolean;
  /** Told once the plan is built and has a run id, before it is checked against the live state. */
  onPlanned?(runId: string, plan: Plan): void;
}

export type StartResult =
  | { status: 'running'; runId: string; plan: Plan; inventoryFile: string; access: 'read-write' | 'read-only' }
  | { status: 'refused'; runId: string; plan: Plan; failed: Array<{ stepId: string; conditions: Condition[] }> };

export async function startRun(o: StartOptions): Promise<StartResult> {
  if (o.saved && o.runbook && o.runbook !== o.saved.runbook)
    throw usageError(
      'E_USAGE',
      `the plan is for ${o.saved.runbook}, not ${o.runbook}`,
      'drop the runbook name when passing --plan',
    );
  const rb = loadRunbook(o.saved?.runbook ?? o.runbook ?? '', o.kinds);
  const inv = o.inventory(o.inventoryFile ?? o.saved?.inventoryFile);
  const env = o.readEnv(inv);
  const { plan, nodes } = await planFor(rb, o, inv.file, env);
  const runId = newRunId(rb.name);
  o.onPlanned?.(runId, plan);
  assertConsentPossible(plan, o);
  // One active run per cluster: refuse early and name the holder (createRun re-checks atomically).
  // A cluster is locked by name and by its node ids: another inventory name for the same nodes is the same cluster.
  if (rb.lock) o.store.assertFree(clustersOf(rb, plan.params, true), nodes);
  // Every precondition is evaluated read-only before anything is recorded or sent.
  const report = await evaluatePreconditions(plan, env, o.kinds);
  const record = (status: 'running' | 'refused', error?: string) =>
    o.store.createRun(
      {
        id: runId,
        runbook: rb.name,
        clusters: clustersOf(rb, plan.params, true),
        status,
        createdAt: Date.now(),
        pid: process.pid,
        planJson: JSON.stringify(plan),
        runbookHash: rb.hash,
        inventoryFile: inv.file,
        error,
      },
      plan.steps.map((s, idx) => ({ stepId: s.id, idx, kind: s.kind, title: s.title })),
      rb.lock,
      nodes,
    );
  if (planRefused(report)) {
    const failed = Object.entries(report.preconditions)
      .map(([stepId, cs]) => ({ stepId, conditions: cs.filter((c) => !c.ok) }))
      .filter((f) => f.conditions.length);
    const reasons = failed.flatMap((f) => f.conditions.map((c) => `${f.stepId}: ${c.name}: ${c.reason}`));
    record('refused', `refused before any change: ${reasons.join('; ')}`);
    return { status: 'refused', runId, plan, failed };
  }
  record('running');
  // Runbooks that take no lock (verify-data) are read-only, and the connection layer enforces it.
  return { status: 'running', runId, plan, inventoryFile: inv.file, access: rb.lock ? 'read-write' : 'read-only' };
}

/** The plan to run: a saved one that may still run, or a new one from the live clusters. */
async function planFor(
  rb: Runbook,
  o: StartOptions,
  inventoryFile: string,
  env: StepEnv,
): Promise<{ plan: Plan; nodes: ClusterNodes }> {
  if (o.saved) return acceptSavedPlan({ saved: o.saved, rb, inventoryFile, store: o.store, stateDir: o.stateDir, env });
  const params = resolveParams(rb, o.params);
  const live = await discover(rb, params, env);
  const nodes = await clusterNodes(rb, params, env, live);
  assertDistinct(rb, params, nodes);
  return { plan: buildPlan(rb, params, inventoryFile, live, new Date(), env), nodes };
}

/**
 * Unattended, a destructive step needs --allow-destructive: say so before anything runs,
 * rather than stopping half-way (a decommission that demoted a master, then stopped).
 */
function assertConsentPossible(plan: Plan, o: StartOptions): void {
  const destructive = plan.steps.filter((s) => s.destructive);
  if (o.guided || o.allowDestructive || !destructive.length) return;
  throw usageError(
    'E_DESTRUCTIVE',
    `this run has destructive steps: ${destructive.map((s) => `${s.id} (${s.destructive})`).join('; ')}`,
    'review them with `redis-runbook plan ...`, then add --allow-destructive to --yes, ' +
      'or run it guided (without --yes) to confirm each one',
  );
}

/** A run id that says what it is and when: `mf-20261202073825-1a2b` for a manual-failover. */
function newRunId(runbook: string): string {
  const t = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${runbook
    .split('-')
    .map((w) => w[0])
    .join('')}-${t}-${randomBytes(2).toString('hex')}`;
}
