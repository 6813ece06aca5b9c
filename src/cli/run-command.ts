import { Cleanup } from '../engine/cleanup.js';
import type { Plan } from '../engine/plan.js';
import { readPlanFile } from '../engine/plan-file.js';
import { executeRun, type RunnerEvent } from '../engine/runner.js';
import { startRun } from '../engine/start-run.js';
import { usageError, EXIT } from '../errors.js';
import { Session } from './session.js';
import { cleanupAfterExecution, takeOverForResume } from '../engine/lifecycle.js';
import { terminalPrompter } from './prompter.js';
import { renderConditions } from './render.js';
import { bold, dim, green, red, yellow } from './style.js';
import { stepKinds } from '../steps/registry.js';
import type { ProgressFigures } from '../engine/step-contract.js';
import { barOf, plainLine } from './progress-bar.js';
import { startMetrics, type MetricsServer } from './metrics.js';
import { stepSummary } from '../report/step-summary.js';

export interface RunFlags {
  inventory?: string;
  param: string[];
  plan?: string;
  yes?: boolean;
  allowDestructive?: boolean;
  stateDir?: string;
  /** Where the run's narration goes: stdout (default), or stderr when stdout carries a report (verify --json). */
  narration?: 'stdout' | 'stderr';
  /** --metrics-addr: serve the run's metrics there while it lasts. */
  metricsAddr?: string;
}

type Say = (...a: unknown[]) => void;

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

/** `run RUNBOOK ...` or `run --plan FILE`: record the run (the engine's startRun), then execute it. Returns the exit code. */
export async function runCommand(
  runbookName: string | undefined,
  flags: RunFlags,
  onFinished?: (runId: string, session: Session) => void,
): Promise<number> {
  const session = Session.from(flags);
  const say: Say = flags.narration === 'stderr' ? console.error : console.log;
  let metrics: MetricsServer | undefined;
  try {
    const isGuided = guided(flags);
    metrics = await startMetrics(flags.metricsAddr, () => session.store.db);
    const started = await startRun({
      store: session.store,
      stateDir: session.stateDir,
      kinds: stepKinds,
      runbook: runbookName,
      params: flags.param,
      saved: flags.plan ? readPlanFile(flags.plan) : undefined,
      inventoryFile: flags.inventory,
      inventory: (file) => session.inventory(file),
      readEnv: (inv) => session.env(inv, 'read-only'),
      guided: isGuided,
      allowDestructive: !!flags.allowDestructive,
      onPlanned: (runId, plan) => {
        metrics?.setRun(runId);
        say(
          `run ${bold(runId)}: ${plan.runbook} ${Object.entries(plan.params)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
        );
        say(dim(`  state ${session.stateDir}; ${isGuided ? 'guided' : 'unattended (--yes)'}`));
      },
    });
    if (started.status === 'refused') {
      for (const f of started.failed) {
        say(red(`  [${f.stepId}]`));
        for (const l of renderConditions(f.conditions)) say(l);
      }
      console.error(
        red(`E_PRECONDITION: run ${started.runId} refused: a precondition fails (above); nothing was changed`),
      );
      return EXIT.precondition;
    }
    const { runId, plan, inventoryFile, access } = started;
    const code = await execute(session, runId, plan, inventoryFile, isGuided, flags, undefined, access, say);
    onFinished?.(runId, session);
    return code;
  } finally {
    await metrics?.close();
    await session.close();
  }
}

/** `resume RUN_ID`: restore the persisted snapshot and finish the run. */
export async function resumeCommand(
  runId: string,
  flags: { yes?: boolean; allowDestructive?: boolean; stateDir?: string; force?: boolean; metricsAddr?: string },
): Promise<number> {
  const session = Session.from(flags);
  let metrics: MetricsServer | undefined;
  try {
    metrics = await startMetrics(flags.metricsAddr, () => session.store.db);
    metrics.setRun(runId);
    const { run, plan, access } = takeOverForResume(session.store, runId, session.stateDir, flags.force, stepKinds);
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
      access,
      console.log,
    );
  } finally {
    await metrics?.close();
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
  say: Say,
): Promise<number> {
  // Secrets are resolved again from the inventory's references: never stored with the run.
  const inv = session.inventory(inventoryFile);
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
      onEvent: (e) => printEvent(e, isGuided, say),
      stop: stop.signal,
      snapshot,
    });
    if (outcome.status === 'succeeded') {
      say(green(`run ${runId} succeeded`));
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
    const r = await cleanupAfterExecution(session.store, runId, env);
    for (const l of r.done) say(dim(`  cleanup: ${l}`));
    for (const l of r.left) console.error(yellow(`  cleanup: ${l}`));
  }
}

// Progress lines: rewritten in place on a terminal (a bar when done/total are known), else one
// plain line every 5 s: a stream that is not a terminal never receives \r, escapes or padding.
let progressShown = false;
let lastProgressLine = 0;
function showProgress(line: string, figures?: ProgressFigures): void {
  if (process.stderr.isTTY) {
    const bar = figures && barOf(figures);
    // One terminal row at most: \x1b[K clears only the row the cursor is on, so a wrapped line would stay.
    const width = Math.max(20, (process.stderr.columns || 80) - 5);
    process.stderr.write(`\r\x1b[K    ${(bar ? `${bar}  ${line}` : line).slice(0, width)}`);
    progressShown = true;
  } else if (Date.now() - lastProgressLine >= 5000) {
    lastProgressLine = Date.now();
    const summary = figures && !line.includes('%') ? barOf(figures, 0) : undefined;
    process.stderr.write(`    ${plainLine(summary ? `${line} [${summary}]` : line)}\n`);
  }
}
function endProgress(): void {
  if (progressShown) process.stderr.write('\n');
  progressShown = false;
}

function printEvent(e: RunnerEvent, isGuided: boolean, say: Say): void {
  if (e.type !== 'progress') endProgress();
  switch (e.type) {
    case 'phase':
      if (e.phase === 'check') say(`${bold(`[${e.index + 1}/${e.total}] ${e.step.id}`)} ${e.step.title}`);
      break;
    case 'conditions':
      // In guided mode the prompt shows the check results with the step.
      if (isGuided && e.phase === 'check' && e.conditions.every((c) => c.ok)) break;
      for (const l of renderConditions(e.conditions)) say(dim(`  ${e.phase}`) + l.slice(2));
      break;
    case 'log':
      say(dim(`    ${e.line}`));
      break;
    case 'progress':
      showProgress(e.line, e.figures);
      break;
    case 'step-done':
      // A one-line summary of what the step measured; the output itself is in `show --json`.
      say(green(`    done in ${e.ms} ms`) + dimIf(stepSummary(e.step.kind, e.output, e.ms)));
      break;
    case 'step-skipped':
      say(yellow(`    skipped`));
      break;
    case 'step-failed':
      say(red(`    failed: ${e.error}`));
      break;
  }
}

/** A step's summary after its "done" line, dimmed; nothing when it has none. */
function dimIf(summary: string): string {
  return summary ? dim(`: ${summary}`) : '';
}
