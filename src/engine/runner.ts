import { RunResources } from './run-resources.js';
import { createActor, fromPromise, type Actor, type Snapshot } from 'xstate';
import { failedError, messageOf, RunbookError } from '../errors.js';
import {
  kindOf,
  type Condition,
  type StepEnv,
  type StepKind,
  type StepKinds,
  type StepRunContext,
  type ProgressFigures,
} from './step-contract.js';
import { ProgressRecorder } from './progress-store.js';
import { compilePlan, EMPTY_CONTEXT, position, type PhaseResult, type RunContext, type StepInput } from './machine.js';
import type { Plan, StepInstance } from './plan.js';
import type { RunStatus, StepStatus, Store } from './store.js';
import { failpoint, stepFailpoint } from './failpoint.js';
import { JOURNAL_ONLY } from './schema.js';
import { NodeLogCollector } from './node-logs.js';

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
  | { type: 'progress'; step: StepInstance; line: string; figures?: ProgressFigures }
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

/** The journal's status of a step in each phase of the machine. */
const PHASE_STATUS: Record<string, StepStatus> = {
  check: 'checking',
  confirm: 'confirming',
  run: 'running',
  verify: 'verifying',
  failed: 'failed',
  done: 'done',
};

type StepRef = { step: StepInstance; index: number };
type RunActor = Actor<ReturnType<typeof compilePlan>>;

/**
 * Execute a plan as an XState actor, persisting the snapshot and step status
 * at every transition. Decisions (continue / skip / abort / retry) are taken
 * here, outside the machine, by the prompter or by the unattended policy.
 */
export function executeRun(o: RunOptions): Promise<RunOutcome> {
  return new RunExecution(o).start();
}

/**
 * One execution of a run in this process: the actor, what it learned so far
 * (outputs, the last error of each step), and how it ends. The machine says
 * where the run is and which steps are done; this class carries out its
 * phases, asks for decisions, and writes the journal.
 */
class RunExecution {
  private readonly store: Store;
  private readonly runId: string;
  private readonly plan: Plan;
  private readonly steps: Map<string, StepRef>;
  private readonly outputs: Record<string, unknown> = {};
  private readonly lastError = new Map<string, { error: string; conditions: Condition[] }>();
  /** Which step's run was in flight when the snapshot was taken: it is "in doubt". */
  private inDoubt: { stepId: string; startedAt: number } | undefined;
  /**
   * Steps whose destruction the operator consented to in this process: --allow-destructive
   * covers every step; a guided confirmation covers a step that was shown as destructive.
   */
  private readonly consented = new Set<string>();
  /** Owned by this execution of the run, and let go when it ends. */
  private readonly resources = new RunResources();
  /**
   * The nodes' own logs of failover / drill / decommission steps (StepKind.logNodes): a part of
   * the runner, not an option of it, so every caller gets them; kinds opt in where they are defined.
   */
  private readonly nodeLogs: NodeLogCollector;
  /** Progress samples into the journal's progress table (throttled, bounded, never failing the run). */
  private readonly progress: ProgressRecorder;
  /** Steps the journal already records as done (the machine's context.done projected). */
  private readonly journaledDone = new Set<string>();
  private actor!: RunActor;
  private settled = false;
  private deciding = false;
  private lastKey = '';
  /**
   * A resumed run does not act on decisions made before it stopped: at a prompt the
   * cluster is checked again (RECHECK), and a failed step is retried (it re-checks
   * first) when unattended; guided, the operator is asked as usual.
   */
  private resumeKick: boolean;
  private resolve!: (o: RunOutcome) => void;
  private reject!: (err: unknown) => void;

  constructor(private readonly o: RunOptions) {
    this.store = o.store;
    this.runId = o.runId;
    this.plan = o.plan;
    this.steps = new Map(o.plan.steps.map((s, i) => [s.id, { step: s, index: i }]));
    this.resumeKick = o.snapshot !== undefined;
    this.nodeLogs = new NodeLogCollector(o);
    this.progress = new ProgressRecorder(o.store, o.runId);
    for (const row of this.store.steps(this.runId)) {
      // Any recorded output counts: a run killed in `verify` still has its step's own output.
      if (row.output !== null) this.outputs[row.stepId] = row.output;
      // A resumed failed step keeps the reason it failed for.
      if (row.status === 'failed' && row.error)
        this.lastError.set(row.stepId, { error: row.error, conditions: row.conditions?.conditions ?? [] });
      if (row.status === 'done') this.journaledDone.add(row.stepId);
    }
    if (o.snapshot) this.noteInDoubt(o.snapshot as { value: unknown });
  }

  private noteInDoubt(snapshot: { value: unknown }): void {
    const pos = position(snapshot.value);
    if (!('stepId' in pos) || pos.phase !== 'run') return;
    const row = this.store.steps(this.runId).find((r) => r.stepId === pos.stepId);
    this.inDoubt = { stepId: pos.stepId, startedAt: row?.runStartedAt ?? 0 };
    this.store.note(this.runId, pos.stepId, 'RESUME-IN-DOUBT', [
      `run phase started ${row?.runStartedAt ? new Date(row.runStartedAt).toISOString() : 'at an unknown time'}`,
    ]);
  }

  start(): Promise<RunOutcome> {
    const machine = compilePlan(this.plan).provide({
      actors: {
        checkStep: this.conditionsPhase('check'),
        verifyStep: this.conditionsPhase('verify'),
        runStep: fromPromise<PhaseResult, StepInput>(({ input }) => this.runPhase(input.stepId)),
      },
    });
    // A snapshot persisted before the machine kept a context (context {}) stands for an empty one.
    const restored = this.o.snapshot as { context?: Partial<RunContext> } | undefined;
    const snapshot = restored && { ...restored, context: { ...EMPTY_CONTEXT, ...restored.context } };
    this.actor = createActor(
      machine,
      snapshot ? { snapshot: snapshot as unknown as Snapshot<unknown> as never } : undefined,
    );
    const outcome = new Promise<RunOutcome>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.actor.subscribe({
        next: (snap) => {
          try {
            this.onSnapshot(snap);
          } catch (err) {
            if (!this.journalFailed(err)) throw err;
          }
        },
        error: (err) => {
          if (!this.journalFailed(err)) this.finish('failed', `internal error: ${messageOf(err)}`);
        },
      });
      this.store.attach(this.runId);
      // start() notifies the subscriber of the restored snapshot too: a run resumed at a
      // prompt or a failed step is handled there, once.
      this.actor.start();
    });
    // However the run ends here, what it kept open is let go (a sync stays resumable from its record).
    // The node logs of the last steps are kept before the CLI closes the connections they need.
    return outcome
      .finally(() => this.nodeLogs.drain())
      .finally(() => {
        this.progress.flushAll();
        return this.resources.dispose();
      });
  }

  // ---- what a step is handed

  private ctxFor(stepId: string): StepRunContext<unknown> {
    const { step } = this.steps.get(stepId)!;
    const { store, runId, o } = this;
    return {
      runId,
      state: { get: (key) => store.getState(runId, key), set: (key, value) => store.setState(runId, key, value) },
      resources: this.resources,
      stepId,
      args: step.args,
      env: o.env,
      outputs: this.outputs,
      inDoubt: this.pastOf(stepId),
      intent: (name, detail) => store.recordIntent(runId, stepId, name, detail),
      log: (line) => o.onEvent?.({ type: 'log', step, line }),
      failpoint: (name) => stepFailpoint(step, name, o.kinds, this.plan.runbook),
      saveFindings: (rows) => store.setFindings(runId, stepId, rows),
      progress: (line, figures) => {
        const f = this.progress.record(stepId, line, figures);
        o.onEvent?.({ type: 'progress', step, line, figures: figures ? f : undefined });
      },
      signal: o.stop,
      mayDestroy: (reason) => this.mayDestroy(stepId, reason),
    };
  }

  /**
   * In doubt after a crash, or on any retry that follows recorded intents: the step is
   * handed every intent its earlier attempts recorded (a setting's old value recorded by
   * the first attempt still matters after the third one crashed).
   */
  private pastOf(stepId: string): StepRunContext<unknown>['inDoubt'] {
    const intents = this.store.intents(this.runId, stepId);
    if (this.inDoubt?.stepId === stepId) return { startedAt: this.inDoubt.startedAt, intents };
    return intents.length ? { startedAt: intents[0]!.at, intents } : undefined;
  }

  private mayDestroy(stepId: string, reason: string): void {
    if (this.o.allowDestructive || this.consented.has(stepId)) return;
    this.store.note(this.runId, stepId, 'REFUSED-DESTRUCTIVE', [reason, 'found at run time']);
    throw failedError(
      'E_DESTRUCTIVE',
      `step ${stepId} would now destroy data that the plan did not show: ${reason}; nothing was deleted`,
      this.o.prompter
        ? 'retry the step: it is shown again as destructive and asks before it acts'
        : `review the cluster, then \`redis-runbook resume ${this.runId} --yes --allow-destructive\` to accept it, or resume it guided`,
    );
  }

  // ---- the machine's three effects

  private conditionsPhase(phase: 'check' | 'verify') {
    return fromPromise<PhaseResult, StepInput>(async ({ input }) => {
      const { step } = this.steps.get(input.stepId)!;
      this.store.currentStepId = step.id;
      try {
        const kind = kindOf(this.o.kinds, step.kind, this.plan.runbook);
        if (phase === 'check') await this.nodeLogs.before(step.id);
        const conditions = await (phase === 'check' ? kind.check : kind.verify)(this.ctxFor(step.id));
        this.store.setStepConditions(this.runId, step.id, phase, conditions);
        this.o.onEvent?.({ type: 'conditions', step, phase, conditions });
        const failed = conditions.filter((c) => !c.ok);
        if (failed.length)
          this.lastError.set(step.id, {
            error: `${phase === 'check' ? 'precondition' : 'postcondition'} failed: ${failed.map((c) => `${c.name}: ${c.reason}`).join('; ')}`,
            conditions,
          });
        return { ok: failed.length === 0 };
      } catch (err) {
        this.lastError.set(step.id, { error: describe(err), conditions: [] });
        throw err;
      }
    });
  }

  private async runPhase(stepId: string): Promise<PhaseResult> {
    // The actor starts this before it tells the subscriber, which persists entering `run`:
    // without this yield a step's first commands went out while the journal still said
    // `confirm` (a crash then resumed the step as not yet started, nothing in doubt).
    await new Promise<void>((r) => setImmediate(r));
    const { step } = this.steps.get(stepId)!;
    this.store.currentStepId = step.id;
    const started = Date.now();
    // Right before a step acts: this process must still own the run (another one may have claimed it).
    try {
      this.store.assertOwner(this.runId);
    } catch (err) {
      if (ownershipLost(err)) this.lost(err);
      throw err;
    }
    try {
      const kind = kindOf(this.o.kinds, step.kind, this.plan.runbook);
      assertPastReadable(this.store, this.runId, step.id);
      const output = await kind.run(this.ctxFor(step.id));
      await this.settleAfter(step, kind);
      this.outputs[step.id] = output ?? null;
      this.store.setStepOutput(this.runId, step.id, output ?? null);
      if (this.inDoubt?.stepId === step.id) this.inDoubt = undefined;
      this.o.onEvent?.({ type: 'step-done', step, ms: Date.now() - started, output });
      return { ok: true };
    } catch (err) {
      this.lastError.set(step.id, { error: describe(err), conditions: [] });
      throw err;
    } finally {
      // The step's last sample is always kept, whatever the throttle said.
      this.progress.flush(step.id);
    }
  }

  /**
   * A step that changed a topology is done when every node agrees on it, not when
   * the nodes it spoke to do: the next step must not act on a cluster still moving.
   */
  private async settleAfter(step: StepInstance, kind: StepKind): Promise<void> {
    for (const spec of kind.settles?.(step.args) ?? []) {
      const r = await this.o.env.settle(spec.cluster, {
        tolerate: spec.tolerate,
        signal: this.o.stop,
        progress: (line) => this.o.onEvent?.({ type: 'progress', step, line }),
      });
      this.o.onEvent?.({
        type: 'log',
        step,
        line: `all ${r.nodes} nodes of ${spec.cluster} agree on the new topology and report cluster_state:ok (${r.ms} ms)`,
      });
    }
  }

  // ---- how the execution ends

  private stopActor(): void {
    try {
      this.actor.stop();
    } catch {
      /* stopping only */
    }
  }

  /**
   * The journal cannot be written (E_STATE_WRITE): stop at once, write nothing more, and
   * let the error reach the CLI. The run stays unfinished in the journal, for `resume`.
   */
  private journalFailed(err: unknown): boolean {
    if (!(err instanceof RunbookError && err.code === 'E_STATE_WRITE')) return false;
    if (this.settled) return true;
    this.settled = true;
    this.stopActor();
    this.store.attach(undefined);
    this.reject(err);
    return true;
  }

  /** The run was claimed by another process (or finished from elsewhere): stop without another write. */
  private lost(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.actor.stop();
    this.store.attach(undefined);
    this.resolve({ status: 'stopped', error: describe(err), lost: true });
  }

  private finish(status: RunStatus, error?: string): void {
    if (this.settled) return;
    try {
      this.store.persist(this.runId, this.actor.getPersistedSnapshot(), status, []);
      this.store.setRunStatus(this.runId, status, error ?? null);
    } catch (err) {
      if (ownershipLost(err)) return this.lost(err);
      if (this.journalFailed(err)) return;
      // Anything else reaches the CLI as this run's error, never as an unhandled rejection.
      this.settled = true;
      this.stopActor();
      this.store.attach(undefined);
      this.reject(err);
      return;
    }
    this.settled = true;
    this.actor.stop();
    this.store.attach(undefined);
    this.resolve({ status, error });
  }

  // ---- decisions

  /** A step's own reading of the live state wins over the plan's; an unreadable state counts as destructive. */
  private async liveDestructive(stepId: string): Promise<string | undefined> {
    const { step } = this.steps.get(stepId)!;
    const kind = kindOf(this.o.kinds, step.kind, this.plan.runbook);
    if (!kind.liveDestructive) return step.destructive;
    try {
      return await kind.liveDestructive(this.ctxFor(stepId));
    } catch (err) {
      return `could not read the live state to tell whether it destroys data (${describe(err)})`;
    }
  }

  private async decide(stepId: string, phase: 'confirm' | 'failed'): Promise<void> {
    this.deciding = true;
    try {
      if (this.o.stop.aborted)
        return this.finish(
          'stopped',
          `stopped by the operator before ${phase === 'confirm' ? 'step' : 'retrying step'} ${stepId}`,
        );
      if (phase === 'confirm') await this.confirm(stepId);
      else await this.afterFailure(stepId);
    } catch (err) {
      if (!this.journalFailed(err)) this.finish('stopped', `stopped while asking the operator: ${messageOf(err)}`);
    } finally {
      this.deciding = false;
    }
  }

  private async confirm(stepId: string): Promise<void> {
    const { step } = this.steps.get(stepId)!;
    const { store, runId, o } = this;
    let d: StepDecision;
    // Destructive or not is decided again from the live state, right before the step acts.
    const destructive = await this.liveDestructive(stepId);
    const shown = { ...step, destructive };
    if (o.prompter) {
      d = await o.prompter.confirmStep(
        shown,
        store.steps(runId).find((r) => r.stepId === stepId)?.conditions?.conditions ?? [],
      );
    } else if (destructive && !o.allowDestructive) {
      store.note(runId, stepId, 'REFUSED-DESTRUCTIVE', [destructive]);
      return this.finish(
        'stopped',
        `step ${stepId} is destructive (${destructive}); unattended runs take it only with --allow-destructive. Resume with \`redis-runbook resume ${runId}\` to confirm it, or add --yes --allow-destructive`,
      );
    } else d = 'continue';
    if (d === 'continue' && destructive) this.consented.add(stepId);
    else this.consented.delete(stepId);
    if (o.stop.aborted) return this.finish('stopped', `stopped by the operator before step ${stepId}`);
    store.note(runId, stepId, `OPERATOR-${d.toUpperCase()}`, o.prompter ? ['guided'] : ['--yes']);
    if (d === 'skip') {
      store.setStepStatus(runId, stepId, 'skipped');
      o.onEvent?.({ type: 'step-skipped', step });
    }
    this.actor.send({ type: d === 'continue' ? 'CONTINUE' : d === 'skip' ? 'SKIP' : 'ABORT' });
  }

  private async afterFailure(stepId: string): Promise<void> {
    const { step } = this.steps.get(stepId)!;
    const { store, runId, o } = this;
    const err = this.lastError.get(stepId) ?? {
      error: store.steps(runId).find((r) => r.stepId === stepId)?.error ?? 'failed earlier (see show)',
      conditions: [],
    };
    o.onEvent?.({ type: 'step-failed', step, error: err.error });
    if (!o.prompter) return this.finish('failed', `step ${stepId} failed: ${err.error}`);
    const d = await o.prompter.onFailure(step, err.error, err.conditions);
    if (o.stop.aborted) return this.finish('stopped', `stopped by the operator at failed step ${stepId}`);
    store.note(runId, stepId, `OPERATOR-${d.toUpperCase()}`, ['after failure']);
    if (d === 'skip') {
      store.setStepStatus(runId, stepId, 'skipped', err.error);
      o.onEvent?.({ type: 'step-skipped', step });
    }
    this.actor.send({ type: d === 'retry' ? 'RETRY' : d === 'skip' ? 'SKIP' : 'ABORT' });
  }

  // ---- every transition

  /** Steps the machine finished that the journal does not yet record as done. */
  private newlyDone(snap: { context?: RunContext }): Array<{ stepId: string; status: StepStatus }> {
    return (snap.context?.done ?? [])
      .filter((id) => !this.journaledDone.has(id))
      .map((stepId) => ({ stepId, status: 'done' as StepStatus }));
  }

  /** Persist the snapshot and the step rows it implies; false when another process owns the run now. */
  private persist(
    snap: { context?: RunContext },
    status: RunStatus,
    rows: Array<{ stepId: string; status: StepStatus; error?: string | null }>,
  ): boolean {
    const finished = this.newlyDone(snap);
    try {
      this.store.persist(this.runId, this.actor.getPersistedSnapshot(), status, [...finished, ...rows]);
    } catch (err) {
      if (ownershipLost(err)) {
        this.lost(err);
        return false;
      }
      throw err;
    }
    for (const f of finished) {
      this.journaledDone.add(f.stepId);
      this.nodeLogs.after(f.stepId);
      failpoint(`${f.stepId}.done`);
    }
    return true;
  }

  private onSnapshot(snap: { value: unknown; context?: RunContext }): void {
    if (this.settled) return;
    const pos = position(snap.value);
    const key = JSON.stringify(snap.value);
    if (key === this.lastKey) return;
    this.lastKey = key;
    if ('final' in pos) {
      if (pos.final === 'succeeded' && !this.persist(snap, 'running', [])) return;
      return this.finish(pos.final, pos.final === 'aborted' ? 'aborted by the operator' : undefined);
    }
    const { step, index } = this.steps.get(pos.stepId)!;
    const waiting = pos.phase === 'confirm' || pos.phase === 'failed';
    const error = pos.phase === 'failed' ? (this.lastError.get(pos.stepId)?.error ?? null) : null;
    const row = { stepId: pos.stepId, status: PHASE_STATUS[pos.phase]!, error };
    if (!this.persist(snap, waiting ? 'waiting' : 'running', [row])) return;
    // A resumed run restored at a failure re-records it: that attempt's lines were kept by the process it failed in.
    if (pos.phase === 'failed' && !this.resumeKick) this.nodeLogs.after(pos.stepId);
    failpoint(`${pos.stepId}.${pos.phase}`);
    this.o.onEvent?.({ type: 'phase', step, index, total: this.plan.steps.length, phase: pos.phase });
    // Only the first snapshot of a resumed run may kick, whatever its phase.
    const kick = this.resumeKick;
    this.resumeKick = false;
    if (waiting && kick && this.kickAfterResume(pos.stepId, pos.phase as 'confirm' | 'failed')) return;
    if (waiting && !this.deciding) void this.decide(pos.stepId, pos.phase as 'confirm' | 'failed');
  }

  /** A resumed run restored at a wait: check again, or retry unattended (see resumeKick). True when it acted. */
  private kickAfterResume(stepId: string, phase: 'confirm' | 'failed'): boolean {
    if (phase === 'confirm') {
      this.store.note(this.runId, stepId, 'RESUME-RECHECK');
      this.actor.send({ type: 'RECHECK' });
      return true;
    }
    if (!this.o.prompter && !this.o.stop.aborted) {
      this.store.note(this.runId, stepId, 'RESUME-RETRY', ['--yes']);
      this.actor.send({ type: 'RETRY' });
      return true;
    }
    return false;
  }
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
