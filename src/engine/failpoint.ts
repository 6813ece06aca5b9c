import { appendFileSync } from 'node:fs';
import { kindOf, type StepKind, type StepKinds } from './step-contract.js';

/**
 * Test hook for crash tests: when REDIS_RUNBOOK_FAILPOINT names `name`, the
 * process kills itself with SIGKILL at that point, exactly as a crash would
 * (no cleanup, no final write). Names are `<stepId>.<phase>` (just after the
 * runner persisted entering that phase) and `<stepId>:<point>` (inside a step,
 * declared by its kind's `failpoints`). The variable holds one name or several
 * separated by commas (the first one reached kills); REDIS_RUNBOOK_FAILPOINT_HIT,
 * when set, is a file the name is appended to just before the kill, so a test
 * that armed several knows which one fired.
 */
export function failpoint(name: string): void {
  const armed = process.env.REDIS_RUNBOOK_FAILPOINT;
  if (!armed || !armed.split(',').includes(name)) return;
  const hit = process.env.REDIS_RUNBOOK_FAILPOINT_HIT;
  if (hit) appendFileSync(hit, `${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** The phases the runner persists for each step, in the order a step goes through them. */
export const PHASE_POINTS = ['check', 'confirm', 'run', 'verify', 'done'] as const;

interface PlannedStep {
  id: string;
  kind: string;
  args: unknown;
}

/** The in-step points a step of this plan declares (its kind's `failpoints`, resolved with its args). */
export function inStepFailpoints(step: PlannedStep, kinds: StepKinds, where = 'plan'): string[] {
  const k: StepKind = kindOf(kinds, step.kind, where);
  const d = k.failpoints;
  return d === undefined ? [] : [...(typeof d === 'function' ? d(step.args) : d)];
}

/**
 * Every failpoint of a plan, in the order a run reaches them: for each step
 * its check, confirm and run boundaries, the points inside its run, then its
 * verify and done boundaries. Crash tests enumerate from this, so a new step
 * or a new declared point joins them without a list to edit.
 */
export function failpointsOf(plan: { runbook: string; steps: PlannedStep[] }, kinds: StepKinds): string[] {
  return plan.steps.flatMap((s) => [
    ...(['check', 'confirm', 'run'] as const).map((p) => `${s.id}.${p}`),
    ...inStepFailpoints(s, kinds, plan.runbook).map((p) => `${s.id}:${p}`),
    ...(['verify', 'done'] as const).map((p) => `${s.id}.${p}`),
  ]);
}

/**
 * The failpoint a step calls from inside its run. A name the step's kind does
 * not declare is a bug that would leave a point out of the crash matrix: while
 * a crash test arms failpoints (the variable is set) it throws instead.
 */
export function stepFailpoint(step: PlannedStep, name: string, kinds: StepKinds, where = 'plan'): void {
  if (process.env.REDIS_RUNBOOK_FAILPOINT !== undefined && !inStepFailpoints(step, kinds, where).includes(name)) {
    throw new Error(
      `step ${step.id} (${step.kind}) reached failpoint \`${name}\`, which its kind does not declare: add it to the kind's \`failpoints\``,
    );
  }
  failpoint(`${step.id}:${name}`);
}
