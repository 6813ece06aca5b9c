import { Cleanup } from '../engine/cleanup.js';
import { randomBytes } from 'node:crypto';
import { loadRunbook, resolveParams, clustersOf } from '../engine/runbook.js';
import { buildPlan, planRefused, type Plan } from '../engine/plan.js';
import { discover, evaluatePreconditions } from '../engine/prepare.js';
import { executeRun, type RunnerEvent } from '../engine/runner.js';
import { usageError, EXIT } from '../errors.js';
import { Session, readPlanFile } from './session.js';
import type { ClusterNodes } from '../engine/store.js';
import { assertDistinct, clusterNodes } from '../engine/cluster-identity.js';
import { acceptSavedPlan, takeOverForResume } from '../engine/lifecycle.js';
import { terminalPrompter } from './prompter.js';
import { renderConditions } from './render.js';
import { bold, dim, green, red, yellow } from './style.js';
import { stepKinds } from '../steps/registry.js';

export interface RunFlags {
  inventory?: string;
  param: string[];
  plan?: string;
  yes?: boolean;
  allowDestructive?: boolean;
  stateDir?: string;
}

function newRunId(runbook: string): string {
  const t = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${runbook
    .split('-')
    .map((w) => w[0])
    .join('')}-${t}-${randomBytes(2).toString('hex')}`;
}

function guided(flags: { yes?: boolean }): boolean {
  if (flags.yes) return false;
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw usageError(
      'E_NOT_A_TERMINAL',
      'guided mode needs a terminal to ask you before each step',
      'run it in a terminal, or pass --yes for an unattended run',
    );
  }
  return true;
}

/** `run RUNBOOK ...` or `run --plan FILE`: record the run, then execute it. Returns the exit code. */
export async function runCommand(
  runbookName: string | undefined,
  flags: RunFlags,
  onFinished?: (runId: string, session: Session) => void,
): Promise<number> {
  const session = Session.from(flags);
  try {
    const isGuided = guided(flags);
    let plan: Plan;
    const saved = flags.plan ? readPlanFile(flags.plan) : undefined;
    if (saved && runbookName && runbookName !== saved.runbook)
      throw usageError(
        'E_USAGE',
        `the plan is for ${saved.runbook}, not ${runbookName}`,
        'drop the runbook name when passing --plan',
      );
    const rb = loadRunbook(saved?.runbook ?? runbookName ?? '', stepKinds);
    const inv = session.inventory(flags.inventory ?? saved?.inventoryFile);
    const readEnv = session.env(inv, 'read-only');
    let nodes: ClusterNodes;
    if (saved) {
      ({ plan, nodes } = await acceptSavedPlan({
        saved,
        rb,
        inventoryFile: inv.file,
        store: session.store,
        stateDir: session.stateDir,
        env: readEnv,
      }));
    } else {
      const params = resolveParams(rb, flags.param);
      const live = await discover(rb, params, readEnv);
      nodes = await clusterNodes(rb, params, readEnv, live);
      assertDistinct(rb, params, nodes);
      plan = buildPlan(rb, params, inv.file, live, new Date(), readEnv);
    }
    const runId = newRunId(rb.name);
    console.log(
      `run ${bold(runId)}: ${rb.name} ${Object.entries(plan.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
    console.log(dim(`  state ${session.stateDir}; ${isGuided ? 'guided' : 'unattended (--yes)'}`));

    // Unattended, a destructive step needs --allow-destructive: say so before anything runs,
    // rather than stopping half-way (a decommission that demoted a master, then stopped).
    const destructive = plan.steps.filter((s) => s.destructive);
    if (!isGuided && !flags.allowDestructive && destructive.length) {
      throw usageError(
        'E_DESTRUCTIVE',
        `this run has destructive steps: ${destructive.map((s) => `${s.id} (${s.destructive})`).join('; ')}`,
        'review them with `redis-runbook plan ...`, then add --allow-destructive to --yes, or run it guided (without --yes) to confirm each one',
      );
    }
    // One active run per cluster: refuse early and name the holder (createRun re-checks atomically).
    // A cluster is locked by name and by its node ids: another inventory name for the same nodes is the same cluster.
    if (rb.lock) session.store.assertFree(clustersOf(rb, plan.params, true), nodes);
    // Every precondition is evaluated read-only before anything is recorded or sent.
    const report = await evaluatePreconditions(plan, readEnv, stepKinds);
    const store = session.store;
    const record = (status: 'running' | 'refused', error?: string) =>
      store.createRun(
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
      const reasons = Object.entries(report.preconditions).flatMap(([id, cs]) =>
        cs.filter((c) => !c.ok).map((c) => `${id}: ${c.name}: ${c.reason}`),
      );
      record('refused', `refused before any change: ${reasons.join('; ')}`);
      for (const [id, cs] of Object.entries(report.preconditions)) {
        const bad = cs.filter((c) => !c.ok);
        if (bad.length) {
          console.log(red(`  [${id}]`));
          for (const l of renderConditions(bad)) console.log(l);
        }
      }
      console.error(red(`E_PRECONDITION: run ${runId} refused: a precondition fails (above); nothing was changed`));
      return EXIT.precondition;
    }
    record('running');
    const code = await execute(
      session,
      runId,
      plan,
      inv.file,
      isGuided,
      flags,
      undefined,
      rb.lock ? 'read-write' : 'read-only',
    );
    onFinished?.(runId, session);
    return code;
  } finally {
    await session.close();
  }
}

/** `resume RUN_ID`: restore the persisted snapshot and finish the run. */
export async function resumeCommand(
  runId: string,
  flags: { yes?: boolean; allowDestructive?: boolean; stateDir?: string; force?: boolean },
): Promise<number> {
  const session = Session.from(flags);
  try {
    const { run, rb, plan } = takeOverForResume(session.store, runId, session.stateDir, flags.force, stepKinds);
    const isGuided = guided(flags);
    console.log(`run ${bold(runId)}: resuming ${run.runbook} (was ${run.status})`);
    session.store.note(runId, undefined, 'RESUME', [`pid ${process.pid}`, isGuided ? 'guided' : '--yes']);
    return await execute(
      session,
      runId,
      plan,
      run.inventoryFile,
      isGuided,
      flags,
      run.snapshotJson ? JSON.parse(run.snapshotJson) : undefined,
      rb.lock ? 'read-write' : 'read-only',
    );
  } finally {
    await session.close();
  }
}

async function execute(
  session: Session,
  runId: string,
  plan: Plan,
  inventoryFile: string,
  isGuided: boolean,
  flags: { allowDestructive?: boolean },
  snapshot: unknown,
  access: 'read-write' | 'read-only',
): Promise<number> {
  // Secrets are resolved again from the inventory's references: never stored with the run.
  const inv = session.inventory(inventoryFile);
  // Runbooks that take no lock (verify-data) are read-only, and the connection layer enforces it.
  const env = session.env(inv, access, session.store);
  const stop = new AbortController();
  const cleanup = new Cleanup({
    get: (key) => session.store.getState(runId, key),
    set: (key, value) => session.store.setState(runId, key, value),
  });
  const onSigint = () => {
    if (stop.signal.aborted) {
      // No time for more than the local files: a RedisShake config holds passwords.
      cleanup.removeLocalDirs();
      console.error(red('\nforced exit; the journal is consistent, resume with `redis-runbook resume ' + runId + '`'));
      process.exit(130);
    }
    console.error(yellow('\nstopping at the next safe point (Ctrl-C again to quit at once)...'));
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const outcome = await executeRun({
      kinds: stepKinds,
      store: session.store,
      runId,
      plan,
      env,
      prompter: isGuided ? terminalPrompter() : undefined,
      allowDestructive: !!flags.allowDestructive,
      onEvent: (e) => printEvent(e, isGuided),
      stop: stop.signal,
      snapshot,
    });
    if (outcome.status === 'succeeded') {
      console.log(green(`run ${runId} succeeded`));
      return EXIT.ok;
    }
    console.error(red(`run ${runId} ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`));
    if (outcome.status !== 'aborted' && !outcome.lost)
      console.error(
        `resume with: redis-runbook resume ${runId}${session.stateDir ? ` --state-dir ${session.stateDir}` : ''}`,
      );
    return EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
    // Whatever the outcome, temporary files do not outlive this process: a resume makes them
    // again. A changed setting stays while the run may be resumed (its sync needs it); the
    // sync's own stop puts it back at cut-over, and `abort` does when the run is given up.
    const run = session.store.getRun(runId);
    const status = run?.status;
    // A run another process took over is that process's: its temporary files are not ours to remove.
    let owned = true;
    try {
      session.store.assertOwner(runId);
    } catch {
      owned = false;
    }
    const r = !owned
      ? { done: [], left: [] }
      : await cleanup.walk(
          env,
          status === 'succeeded' ? ['local-dir', 'host-dir', 'config'] : ['local-dir', 'host-dir'],
        );
    for (const l of r.done) console.log(dim(`  cleanup: ${l}`));
    for (const l of r.left) console.error(yellow(`  cleanup: ${l}`));
  }
}

// Progress lines: rewritten in place on a terminal, else one line every 5 s (logs stay readable).
let progressShown = false;
let lastProgressLine = 0;
function showProgress(line: string): void {
  if (process.stderr.isTTY) {
    process.stderr.write(`\r\x1b[K    ${line}`);
    progressShown = true;
  } else if (Date.now() - lastProgressLine >= 5000) {
    lastProgressLine = Date.now();
    process.stderr.write(`    ${line}\n`);
  }
}
function endProgress(): void {
  if (progressShown) process.stderr.write('\n');
  progressShown = false;
}

function printEvent(e: RunnerEvent, isGuided: boolean): void {
  if (e.type !== 'progress') endProgress();
  switch (e.type) {
    case 'phase':
      if (e.phase === 'check') console.log(`${bold(`[${e.index + 1}/${e.total}] ${e.step.id}`)} ${e.step.title}`);
      break;
    case 'conditions':
      // In guided mode the prompt shows the check results with the step.
      if (isGuided && e.phase === 'check' && e.conditions.every((c) => c.ok)) break;
      for (const l of renderConditions(e.conditions)) console.log(dim(`  ${e.phase}`) + l.slice(2));
      break;
    case 'log':
      console.log(dim(`    ${e.line}`));
      break;
    case 'progress':
      showProgress(e.line);
      break;
    case 'step-done':
      console.log(
        green(`    done in ${e.ms} ms`) +
          (e.output && typeof e.output === 'object' ? dim(` ${brief(JSON.stringify(e.output))}`) : ''),
      );
      break;
    case 'step-skipped':
      console.log(yellow(`    skipped`));
      break;
    case 'step-failed':
      console.log(red(`    failed: ${e.error}`));
      break;
  }
}

/** A step's output on one line; the whole of it is in `show --json`. */
function brief(json: string, max = 200): string {
  return json.length <= max ? json : `${json.slice(0, max)}... (all of it: show --json)`;
}
