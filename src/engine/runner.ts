import { RunResources } from './run-resources.js';
import { createActor, fromPromise, type Snapshot } from 'xstate';
import { failedError, messageOf, RunbookError } from '../errors.js';
import { kindOf, type Condition, type StepEnv, type StepKinds, type StepRunContext } from './step-contract.js';
import { compilePlan, position, type PhaseResult, type StepInput } from './machine.js';
import type { Plan, StepInstance } from './plan.js';
import type { RunStatus, StepStatus, Store } from './store.js';
import { failpoint, stepFailpoint } from './failpoint.js';
import { JOURNAL_ONLY } from './schema.js';

export type StepDecision = 'continue' | 'skip' | 'abort';
export type FailureDecision = 'retry' | 'skip' | 'abort';

/** How the operator is asked (guided mode). The CLI implements it with inquirer. */
export interface Prompter {
  confirmStep(step: StepInstance, conditions: Condition[]): Promise<StepDecision>;
  onFailure(step: StepInstance, error: string, conditions: Condition[]): Promise<FailureDecision>;
}

/** What the runner tells the terminal as it goes. */
export type RunnerEvent =
  | { type: 'phase'; step: StepInstance; index: number; total: number; phase: string }
  | { type: 'conditions'; step: StepInstance; phase: 'check' | 'verify'; conditions: Condition[] }
  | { type: 'log'; step: StepInstance; line: string }
  | { type: 'progress'; step: StepInstance; line: string }
  | { type: 'step-done'; step: StepInstance; ms: number; output: unknown }
  | { type: 'step-skipped'; step: StepInstance }
  | { type: 'step-failed'; step: StepInstance; error: string };

export interface RunOptions {
  store: Store;
  runId: string;
  plan: Plan;
  env: StepEnv;
  /** The step kinds the plan's steps name. */
  kinds: StepKinds;
  /** undefined = unattended (--yes). */
  prompter?: Prompter;
  /** Unattended runs take destructive steps only with this set. */
  allowDestructive: boolean;
  onEvent?: (e: RunnerEvent) => void;
  /** Aborted by Ctrl-C: the run stops at the next safe point. */
  stop: AbortSignal;
  /** A persisted snapshot to resume from. */
  snapshot?: unknown;
}

export interface RunOutcome {
  status: RunStatus;
  error?: string;
  /** Another process owns the run now (or finished it): this one stopped without recording anything. */
  lost?: boolean;
}

const PHASE_STATUS: Record<string, StepStatus> = {
  check: 'checking',
  confirm: 'confirming',
  run: 'running',
  verify: 'verifying',
  failed: 'failed',
  done: 'done',
};

/**
 * Execute a plan as an XState actor, persisting the snapshot and step status
 * at every transition. Decisions (continue / skip / abort / retry) are taken
 * here, outside the machine, by the prompter or by the unattended policy.
 */
export function executeRun(o: RunOptions): Promise<RunOutcome> {
  const { store, runId, plan } = o;
  const steps = new Map(plan.steps.map((s, i) => [s.id, { step: s, index: i }]));
  const outputs: Record<string, unknown> = {};
  const lastError = new Map<string, { error: string; conditions: Condition[] }>();
  for (const row of store.steps(runId)) {
    // Any recorded output counts: a run killed in `verify` still has its step's own output.
    if (row.output !== null) outputs[row.stepId] = row.output;
    // A resumed failed step keeps the reason it failed for.
    if (row.status === 'failed' && row.error)
      lastError.set(row.stepId, { error: row.error, conditions: row.conditions?.conditions ?? [] });
  }

  // Which step's run was in flight when the snapshot was taken: it is "in doubt".
  let inDoubt: { stepId: string; startedAt: number } | undefined;
  if (o.snapshot) {
    const pos = position((o.snapshot as { value: unknown }).value);
    if ('stepId' in pos && pos.phase === 'run') {
      const row = store.steps(runId).find((r) => r.stepId === pos.stepId);
      inDoubt = { stepId: pos.stepId, startedAt: row?.runStartedAt ?? 0 };
      store.note(runId, pos.stepId, 'RESUME-IN-DOUBT', [
        `run phase started ${row?.runStartedAt ? new Date(row.runStartedAt).toISOString() : 'at an unknown time'}`,
      ]);
    }
  }

  // Steps whose destruction the operator consented to in this process: --allow-destructive
  // covers every step; a guided confirmation covers a step that was shown as destructive.
  const consented = new Set<string>();
  // Owned by this execution of the run, and let go when it ends (runWithResources).
  const resources = new RunResources();
  const ctxFor = (stepId: string): StepRunContext<unknown> => {
    const { step } = steps.get(stepId)!;
    return {
      runId,
      state: { get: (key) => store.getState(runId, key), set: (key, value) => store.setState(runId, key, value) },
      resources,
      stepId,
      args: step.args,
      env: o.env,
      outputs,
      // In doubt after a crash, or on any retry that follows recorded intents: the step is
      // handed every intent its earlier attempts recorded (a setting's old value recorded by
      // the first attempt still matters after the third one crashed).
      inDoubt: (() => {
        const intents = store.intents(runId, stepId);
        if (inDoubt?.stepId === stepId) return { startedAt: inDoubt.startedAt, intents };
        return intents.length ? { startedAt: intents[0]!.at, intents } : undefined;
      })(),
      intent: (name, detail) => store.recordIntent(runId, stepId, name, detail),
      log: (line) => o.onEvent?.({ type: 'log', step, line }),
      failpoint: (name) => stepFailpoint(step, name, o.kinds, plan.runbook),
      saveFindings: (rows) => store.setFindings(runId, stepId, rows),
      progress: (line) => o.onEvent?.({ type: 'progress', step, line }),
      signal: o.stop,
      mayDestroy: (reason) => {
        if (o.allowDestructive || consented.has(stepId)) return;
        store.note(runId, stepId, 'REFUSED-DESTRUCTIVE', [reason, 'found at run time']);
        throw failedError(
          'E_DESTRUCTIVE',
          `step ${stepId} would now destroy data that the plan did not show: ${reason}; nothing was deleted`,
          o.prompter
            ? 'retry the step: it is shown again as destructive and asks before it acts'
            : `review the cluster, then \`redis-runbook resume ${runId} --yes --allow-destructive\` to accept it, or resume it guided`,
        );
      },
    };
  };
  const conditionsPhase = (phase: 'check' | 'verify') =>
    fromPromise<PhaseResult, StepInput>(async ({ input }) => {
      const { step } = steps.get(input.stepId)!;
      store.currentStepId = step.id;
      try {
        const kind = kindOf(o.kinds, step.kind, plan.runbook);
        const conditions = await (phase === 'check' ? kind.check : kind.verify)(ctxFor(step.id));
        store.setStepConditions(runId, step.id, phase, conditions);
        o.onEvent?.({ type: 'conditions', step, phase, conditions });
        const failed = conditions.filter((c) => !c.ok);
        if (failed.length)
          lastError.set(step.id, {
            error: `${phase === 'check' ? 'precondition' : 'postcondition'} failed: ${failed.map((c) => `${c.name}: ${c.reason}`).join('; ')}`,
            conditions,
          });
        return { ok: failed.length === 0 };
      } catch (err) {
        lastError.set(step.id, { error: describe(err), conditions: [] });
        throw err;
      }
    });
  const runPhase = fromPromise<PhaseResult, StepInput>(async ({ input }) => {
    // The actor starts this before it tells the subscriber, which persists entering `run`:
    // without this yield a step's first commands went out while the journal still said
    // `confirm` (a crash then resumed the step as not yet started, nothing in doubt).
    await new Promise<void>((r) => setImmediate(r));
    const { step } = steps.get(input.stepId)!;
    store.currentStepId = step.id;
    const started = Date.now();
    // Right before a step acts: this process must still own the run (another one may have claimed it).
    try {
      store.assertOwner(runId);
    } catch (err) {
      if (ownershipLost(err)) lost(err);
      throw err;
    }
    try {
      const kind = kindOf(o.kinds, step.kind, plan.runbook);
      assertPastReadable(store, runId, step.id);
      const output = await kind.run(ctxFor(step.id));
      // A step that changed a topology is done when every node agrees on it, not when
      // the nodes it spoke to do: the next step must not act on a cluster still moving.
      for (const spec of kind.settles?.(step.args) ?? []) {
        const r = await o.env.settle(spec.cluster, {
          tolerate: spec.tolerate,
          signal: o.stop,
          progress: (line) => o.onEvent?.({ type: 'progress', step, line }),
        });
        o.onEvent?.({
          type: 'log',
          step,
          line: `all ${r.nodes} nodes of ${spec.cluster} agree on the new topology and report cluster_state:ok (${r.ms} ms)`,
        });
      }
      outputs[step.id] = output ?? null;
      store.setStepOutput(runId, step.id, output ?? null);
      if (inDoubt?.stepId === step.id) inDoubt = undefined;
      o.onEvent?.({ type: 'step-done', step, ms: Date.now() - started, output });
      return { ok: true };
    } catch (err) {
      lastError.set(step.id, { error: describe(err), conditions: [] });
      throw err;
    }
  });

  // Set once the run is known to be owned by another process: nothing more is written or sent.
  let lost: (err: unknown) => void = () => {};

  const machine = compilePlan(plan).provide({
    actors: { checkStep: conditionsPhase('check'), verifyStep: conditionsPhase('verify'), runStep: runPhase },
  });
  const actor = createActor(machine, o.snapshot ? { snapshot: o.snapshot as Snapshot<unknown> as never } : undefined);

  const outcome = new Promise<RunOutcome>((resolve, reject) => {
    let settled = false;
    // The journal cannot be written (E_STATE_WRITE): stop at once, write nothing more, and
    // let the error reach the CLI. The run stays unfinished in the journal, for `resume`.
    const journalFailed = (err: unknown): boolean => {
      if (!(err instanceof RunbookError && err.code === 'E_STATE_WRITE')) return false;
      if (settled) return true;
      settled = true;
      try {
        actor.stop();
      } catch {
        /* stopping only */
      }
      store.attach(undefined);
      reject(err);
      return true;
    };
    let deciding = false;
    let lastKey = '';
    // A resumed run does not act on decisions made before it stopped: at a prompt the
    // cluster is checked again (RECHECK), and a failed step is retried (it re-checks
    // first) when unattended; guided, the operator is asked as usual.
    let resumeKick = o.snapshot !== undefined;
    // The step and phase seen last. A step's `done` state is final and left in the
    // same macrostep, so no snapshot shows it: leaving a step from `verify` is done.
    let last: { stepId: string; phase: string } | undefined;
    const leaving = (nextStepId: string | undefined) => {
      if (!last || last.stepId === nextStepId || last.phase !== 'verify') return [];
      return [{ stepId: last.stepId, status: 'done' as StepStatus }];
    };
    // The run was claimed by another process (or finished from elsewhere): stop without another write.
    lost = (err: unknown) => {
      if (settled) return;
      settled = true;
      actor.stop();
      store.attach(undefined);
      resolve({ status: 'stopped', error: describe(err), lost: true });
    };
    const finish = (status: RunStatus, error?: string) => {
      if (settled) return;
      const persisted = actor.getPersistedSnapshot();
      try {
        store.persist(runId, persisted, status, status === 'succeeded' ? leaving(undefined) : []);
        store.setRunStatus(runId, status, error ?? null);
      } catch (err) {
        if (ownershipLost(err)) return lost(err);
        if (journalFailed(err)) return;
        // Anything else reaches the CLI as this run's error, never as an unhandled rejection.
        settled = true;
        try {
          actor.stop();
        } catch {
          /* stopping only */
        }
        store.attach(undefined);
        reject(err);
        return;
      }
      settled = true;
      actor.stop();
      store.attach(undefined);
      resolve({ status, error });
    };

    // A step's own reading of the live state wins over the plan's; an unreadable state counts as destructive.
    const liveDestructive = async (stepId: string): Promise<string | undefined> => {
      const { step } = steps.get(stepId)!;
      const kind = kindOf(o.kinds, step.kind, plan.runbook);
      if (!kind.liveDestructive) return step.destructive;
      try {
        return await kind.liveDestructive(ctxFor(stepId));
      } catch (err) {
        return `could not read the live state to tell whether it destroys data (${describe(err)})`;
      }
    };
    const decide = async (stepId: string, phase: 'confirm' | 'failed') => {
      const { step } = steps.get(stepId)!;
      deciding = true;
      try {
        if (o.stop.aborted)
          return finish(
            'stopped',
            `stopped by the operator before ${phase === 'confirm' ? 'step' : 'retrying step'} ${stepId}`,
          );
        if (phase === 'confirm') {
          let d: StepDecision;
          // Destructive or not is decided again from the live state, right before the step acts.
          const destructive = await liveDestructive(stepId);
          const shown = { ...step, destructive };
          if (o.prompter) {
            d = await o.prompter.confirmStep(
              shown,
              store.steps(runId).find((r) => r.stepId === stepId)?.conditions?.conditions ?? [],
            );
          } else if (destructive && !o.allowDestructive) {
            store.note(runId, stepId, 'REFUSED-DESTRUCTIVE', [destructive]);
            return finish(
              'stopped',
              `step ${stepId} is destructive (${destructive}); unattended runs take it only with --allow-destructive. Resume with \`redis-runbook resume ${runId}\` to confirm it, or add --yes --allow-destructive`,
            );
          } else d = 'continue';
          if (d === 'continue' && destructive) consented.add(stepId);
          else consented.delete(stepId);
          if (o.stop.aborted) return finish('stopped', `stopped by the operator before step ${stepId}`);
          store.note(runId, stepId, `OPERATOR-${d.toUpperCase()}`, o.prompter ? ['guided'] : ['--yes']);
          if (d === 'skip') {
            store.setStepStatus(runId, stepId, 'skipped');
            o.onEvent?.({ type: 'step-skipped', step });
          }
          actor.send({ type: d === 'continue' ? 'CONTINUE' : d === 'skip' ? 'SKIP' : 'ABORT' });
        } else {
          const err = lastError.get(stepId) ?? {
            error: store.steps(runId).find((r) => r.stepId === stepId)?.error ?? 'failed earlier (see show)',
            conditions: [],
          };
          o.onEvent?.({ type: 'step-failed', step, error: err.error });
          if (!o.prompter) return finish('failed', `step ${stepId} failed: ${err.error}`);
          const d = await o.prompter.onFailure(step, err.error, err.conditions);
          if (o.stop.aborted) return finish('stopped', `stopped by the operator at failed step ${stepId}`);
          store.note(runId, stepId, `OPERATOR-${d.toUpperCase()}`, ['after failure']);
          if (d === 'skip') {
            store.setStepStatus(runId, stepId, 'skipped', err.error);
            o.onEvent?.({ type: 'step-skipped', step });
          }
          actor.send({ type: d === 'retry' ? 'RETRY' : d === 'skip' ? 'SKIP' : 'ABORT' });
        }
      } catch (err) {
        if (!journalFailed(err)) finish('stopped', `stopped while asking the operator: ${messageOf(err)}`);
      } finally {
        deciding = false;
      }
    };

    actor.subscribe({
      next: (snap) => {
        try {
          onSnapshot(snap);
        } catch (err) {
          if (!journalFailed(err)) throw err;
        }
      },
      error: (err) => {
        if (!journalFailed(err)) finish('failed', `internal error: ${messageOf(err)}`);
      },
    });
    function onSnapshot(snap: { value: unknown }): void {
      if (settled) return;
      const pos = position(snap.value);
      const key = JSON.stringify(snap.value);
      if (key === lastKey) return;
      lastKey = key;
      if ('final' in pos) {
        if (pos.final === 'succeeded') {
          const finished = leaving(undefined);
          try {
            store.persist(runId, actor.getPersistedSnapshot(), 'running', finished);
          } catch (err) {
            if (ownershipLost(err)) return lost(err);
            throw err;
          }
          for (const f of finished) failpoint(`${f.stepId}.done`);
        }
        return finish(pos.final, pos.final === 'aborted' ? 'aborted by the operator' : undefined);
      }
      const { step, index } = steps.get(pos.stepId)!;
      const waiting = pos.phase === 'confirm' || pos.phase === 'failed';
      const stepStatus = PHASE_STATUS[pos.phase]!;
      const finished = leaving(pos.stepId);
      try {
        store.persist(runId, actor.getPersistedSnapshot(), waiting ? 'waiting' : 'running', [
          ...finished,
          {
            stepId: pos.stepId,
            status: stepStatus,
            error: pos.phase === 'failed' ? (lastError.get(pos.stepId)?.error ?? null) : null,
          },
        ]);
      } catch (err) {
        if (ownershipLost(err)) return lost(err);
        throw err;
      }
      last = { stepId: pos.stepId, phase: pos.phase };
      for (const f of finished) failpoint(`${f.stepId}.done`);
      failpoint(`${pos.stepId}.${pos.phase}`);
      o.onEvent?.({ type: 'phase', step, index, total: plan.steps.length, phase: pos.phase });
      if (waiting && resumeKick) {
        resumeKick = false;
        if (pos.phase === 'confirm') {
          store.note(runId, pos.stepId, 'RESUME-RECHECK');
          actor.send({ type: 'RECHECK' });
          return;
        }
        if (!o.prompter && !o.stop.aborted) {
          store.note(runId, pos.stepId, 'RESUME-RETRY', ['--yes']);
          actor.send({ type: 'RETRY' });
          return;
        }
      }
      resumeKick = false;
      if (waiting && !deciding) void decide(pos.stepId, pos.phase as 'confirm' | 'failed');
    }

    store.attach(runId);
    // start() notifies the subscriber of the restored snapshot too: a run resumed at a
    // prompt or a failed step is handled there, once.
    actor.start();
  });
  // However the run ends here, what it kept open is let go (a sync stays resumable from its record).
  return outcome.finally(() => resources.dispose());
}

/** Another process claimed the run, or finished it from elsewhere. */
function ownershipLost(err: unknown): boolean {
  return err instanceof RunbookError && (err.code === 'E_RUN_TAKEN_OVER' || err.code === 'E_RUN_FINISHED');
}

function describe(err: unknown): string {
  if (err instanceof RunbookError) return `${err.code}: ${err.message}${err.remedy ? ` (fix: ${err.remedy})` : ''}`;
  return messageOf(err);
}

/**
 * A step of a run that an older redis-runbook left unfinished, and that had
 * already sent commands, has its past in the journal only: that version kept
 * no intents, and this one reads none from the journal. Acting without it
 * could send a failover or a start twice, or put back the wrong setting.
 */
function assertPastReadable(store: Store, runId: string, stepId: string): void {
  if (!store.getState<boolean>(runId, JOURNAL_ONLY)) return;
  if (store.intents(runId, stepId).length) return;
  const acted = store.audit(runId, stepId).filter((a) => a.write);
  if (!acted.length) return;
  throw failedError(
    'E_IN_DOUBT_OLDER_RUN',
    `step ${stepId} of run ${runId}, started by an older redis-runbook, already sent ${acted.length} command(s) ` +
      `(${[...new Set(acted.map((a) => a.command))].join(', ')}); this version cannot read what they did`,
    'finish the run with the redis-runbook version that started it, or abort it and look at the cluster',
  );
}
