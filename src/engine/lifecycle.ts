import { preconditionError, usageError } from '../errors.js';
import { describeDrift, type Topology } from '../redis/topology.js';
import { selfIdentity, processState, describeIdentity } from '../hosts/process-identity.js';
import { buildPlan, type Plan } from './plan.js';
import { discover, assertNoDrift } from './prepare.js';
import { loadRunbook, type Runbook } from './runbook.js';
import { Cleanup } from './cleanup.js';
import { assertDistinct, clusterNodes } from './cluster-identity.js';
import {
  assertNotForeign,
  assertInventoryPinned,
  assertSameToolVersion,
  planDifferences,
  sealStatus,
  tampered,
} from './plan-seal.js';
import type { ClusterNodes, RunRow, Store } from './store.js';
import type { StepEnv, StepKinds } from './step-contract.js';

/**
 * A run's lifecycle guards, in the engine so that every front end applies the
 * same ones: which saved plan may run (`acceptSavedPlan`), and which
 * unfinished run this process may take over to resume it or give it up
 * (`takeOverForResume`, `unfinishedRun`). The CLI calls them and renders.
 */

/**
 * A saved plan is executed only if it is exactly what `plan` made in this
 * state dir (plan-seal.ts), by this version, from this inventory, once, and
 * the live clusters still resolve the runbook to the same steps.
 */
export async function acceptSavedPlan(o: {
  saved: Plan;
  rb: Runbook;
  inventoryFile: string;
  store: Store;
  stateDir: string;
  env: StepEnv;
}): Promise<{ plan: Plan; nodes: ClusterNodes }> {
  const { saved, rb, env } = o;
  const seal = sealStatus(saved, o.stateDir);
  assertNotForeign(saved, seal, o.stateDir);
  // Signed here, so its version is the one that made it (an edited one is refused as tampered below).
  if (seal === 'ok') assertSameToolVersion(saved);
  if (saved.runbookHash !== rb.hash)
    throw preconditionError(
      'E_RUNBOOK_CHANGED',
      `runbook ${rb.name} changed since the plan was made`,
      'make a new plan and review it',
    );
  assertInventoryPinned(saved, o.inventoryFile);
  const used = o.store.listRuns().find((r) => (JSON.parse(r.planJson) as Plan).id === saved.id);
  if (used)
    throw preconditionError(
      'E_PLAN_USED',
      `plan ${saved.id} was already executed by run ${used.id}`,
      'a saved plan is single-use: make a new plan',
    );
  const live = await discover(rb, saved.params, env);
  assertNoDrift(saved, live, (name, t) => describeDrift(structureTopology(saved, name), t));
  const nodes = await clusterNodes(rb, saved.params, env, live);
  assertDistinct(rb, saved.params, nodes);
  // Resolve the runbook again, as of the plan's own time (file names derive from it), against the live topology.
  let fresh: Plan;
  try {
    const pinned = Object.fromEntries(
      Object.entries(live).map(([name, t]) => [name, { ...t, takenAt: saved.clusters[name]?.takenAt ?? t.takenAt }]),
    );
    fresh = buildPlan(rb, saved.params, saved.inventoryFile, pinned, new Date(saved.createdAt), env);
  } catch (err) {
    if (seal === 'ok') throw err;
    throw tampered(saved, `its parameters do not resolve (${(err as Error).message})`);
  }
  const differences = planDifferences(saved, fresh, { structuralOnly: seal === 'ok' });
  if (differences.length && seal === 'ok') {
    throw preconditionError(
      'E_PLAN_DRIFT',
      `the cluster changed since the plan was made (${saved.createdAt}) in a way that changes the plan: ` +
        differences.join('; '),
      `make a new plan with \`redis-runbook plan ${saved.runbook} ...\` and review it`,
    );
  }
  if (differences.length) throw tampered(saved, differences.join('; '));
  if (seal !== 'ok')
    throw tampered(
      saved,
      seal === 'unsigned'
        ? 'it has no signature (made by an older version, or the signature was removed)'
        : 'its signature does not match its content ' +
            '(a field outside the steps was changed: parameters, clusters, ids or times)',
    );
  return { plan: saved, nodes };
}

/** A recorded, unfinished run that no live process owns: what `resume` and `abort` both start from. */
export function unfinishedRun(
  store: Store,
  runId: string,
  stateDir: string,
  force: boolean | undefined,
  what: 'resume' | 'abort',
): RunRow {
  const run = store.getRun(runId);
  if (!run) throw usageError('E_RUN_UNKNOWN', `no run ${runId} in ${stateDir}`, 'list runs with `redis-runbook runs`');
  if (run.status === 'succeeded' || run.status === 'aborted' || run.status === 'refused') {
    const done = run.status === 'refused' ? 'been refused' : run.status;
    throw what === 'resume'
      ? preconditionError('E_RUN_FINISHED', `run ${runId} has already ${done}`, 'start a new run')
      : preconditionError('E_RUN_FINISHED', `run ${runId} is already ${run.status}`, 'nothing to abort');
  }
  assertNotActive(store, run, force, what);
  return run;
}

/**
 * Take over an unfinished run to resume it: claimed by this process (two
 * resumes at once: one drives it). What it runs is the plan recorded with
 * the run, which carries all a resume needs: the runbook's file is not read
 * again (it may have changed or gone since; the recorded steps are what
 * runs). A plan recorded before plans carried `lock` is completed from its
 * runbook, which must then be unchanged.
 */
export function takeOverForResume(
  store: Store,
  runId: string,
  stateDir: string,
  force: boolean | undefined,
  kinds: StepKinds,
): { run: RunRow; plan: Plan; access: 'read-write' | 'read-only' } {
  const run = unfinishedRun(store, runId, stateDir, force, 'resume');
  if (!store.claim(runId, run))
    throw preconditionError(
      'E_RUN_ACTIVE',
      `run ${runId} was just taken over by another process`,
      'let that one finish',
    );
  const plan = JSON.parse(run.planJson) as Plan;
  const lock = plan.lock ?? lockOfUnchangedRunbook(run, kinds);
  // Runbooks that take no lock (verify-data) are read-only, and the connection layer enforces it.
  return { run, plan, access: lock ? 'read-write' : 'read-only' };
}

function lockOfUnchangedRunbook(run: RunRow, kinds: StepKinds): boolean {
  const rb = loadRunbook(run.runbook, kinds);
  if (rb.hash !== run.runbookHash) {
    throw preconditionError(
      'E_RUNBOOK_CHANGED',
      `runbook ${rb.name} changed since run ${run.id} started (${run.runbookHash} -> ${rb.hash})`,
      'restore the runbook as it was, or abort the run and start a new one',
    );
  }
  return rb.lock;
}

/**
 * After an execution in this process, whatever its outcome: temporary files do
 * not outlive it (a resume makes them again). A changed setting stays while
 * the run may be resumed (its sync needs it); the sync's own stop puts it back
 * at cut-over, and `abort` does when the run is given up. A run another
 * process took over is that process's: its files are not ours to remove.
 */
export async function cleanupAfterExecution(
  store: Store,
  runId: string,
  env: StepEnv,
): Promise<{ done: string[]; left: string[] }> {
  try {
    store.assertOwner(runId);
  } catch {
    return { done: [], left: [] };
  }
  const cleanup = new Cleanup({
    get: (key) => store.getState(runId, key),
    set: (key, value) => store.setState(runId, key, value),
  });
  const succeeded = store.getRun(runId)?.status === 'succeeded';
  return cleanup.walk(env, succeeded ? ['local-dir', 'host-dir', 'config'] : ['local-dir', 'host-dir']);
}

/**
 * Refuse to take over (resume) or give up (abort) a run that its recorded
 * owner is still executing. The owner is a pid with its start time and host:
 * a pid that now belongs to another process does not count as the owner.
 * A run owned by a process on another host cannot be checked from here; it is
 * refused, naming that host, unless the operator passes --force after
 * making sure that process is gone.
 */
function assertNotActive(store: Store, run: RunRow, force: boolean | undefined, what: 'resume' | 'abort'): void {
  if (run.status !== 'running' && run.status !== 'waiting') return;
  const owner = store.owner(run);
  if (!owner) return;
  const me = selfIdentity();
  if (
    owner.pid === me.pid &&
    (!owner.host || owner.host === me.host) &&
    (owner.startTime ?? me.startTime) === me.startTime
  )
    return;
  const state = processState(owner);
  if (state === 'alive') {
    throw preconditionError(
      'E_RUN_ACTIVE',
      `run ${run.id} is still being executed by process ${owner.pid}`,
      what === 'resume'
        ? 'wait for it, or stop it with Ctrl-C there'
        : 'stop it there with Ctrl-C (it stops at a safe point), then abort',
    );
  }
  if (state === 'other-host' && !force) {
    throw preconditionError(
      'E_RUN_OTHER_HOST',
      `run ${run.id} is recorded as ${run.status} by ${describeIdentity(owner)}, not this host (${me.host}): ` +
        'whether that process still runs cannot be seen from here',
      `stop it on ${owner.host} (Ctrl-C there), or, if it is certainly gone, pass --force to \`${what}\``,
    );
  }
}

/** A topology-shaped value from a saved plan's structure, to describe drift in words. */
function structureTopology(plan: Plan, name: string): Topology {
  const c = plan.clusters[name]!;
  return {
    cluster: name,
    takenAt: c.takenAt,
    seed: '',
    nodeTimeoutMs: 0,
    fingerprint: c.fingerprint,
    nodes: c.structure.map((n) => ({
      id: n.id,
      address: n.address,
      role: n.role,
      masterId: n.masterId,
      flags: [],
      slots: n.slots.map(([a, b]) => [a, b] as const),
      configEpoch: 0,
      reachable: true,
    })),
  };
}
