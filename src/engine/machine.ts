import { assign, setup, fromPromise } from 'xstate';
import type { Plan } from './plan.js';

export interface StepInput {
  stepId: string;
}
export interface PhaseResult {
  ok: boolean;
}

/**
 * What the machine remembers besides where it is: the steps it finished
 * (verified), in order. A step's `done` state is final and left in the same
 * step as it is entered, so no snapshot shows it; this list does.
 */
export interface RunContext {
  done: string[];
}

/** A snapshot persisted before the machine kept a context (its context is {}): what it stands for. */
export const EMPTY_CONTEXT: RunContext = { done: [] };

/** The phases a step goes through, as they appear in the machine's state value. */
export type Phase = 'check' | 'confirm' | 'run' | 'verify' | 'failed' | 'done';

const missing = fromPromise<PhaseResult, StepInput>(async () => {
  throw new Error('step actor not provided');
});

/**
 * Compile a plan into a state machine. The machine is pure data: each step is
 * a compound state check -> confirm -> run -> verify -> done, with a `failed`
 * state that waits for the operator (RETRY / SKIP / ABORT). The machine owns
 * where the run is and which steps are done (`context.done`); the runner only
 * projects that onto the journal's step rows. Effects live in
 * three named promise actors that the runner provides; names, not closures,
 * are what make the snapshot persistable.
 */
export function compilePlan(plan: Plan) {
  const ids = plan.steps.map((s) => s.id);
  const after = (i: number) => (i + 1 < ids.length ? `#run.${ids[i + 1]}` : '#run.succeeded');
  const passed = ({ event }: { event: unknown }) => (event as { output?: PhaseResult }).output?.ok === true;
  const states: Record<string, unknown> = {};
  plan.steps.forEach((s, i) => {
    const input = { stepId: s.id };
    states[s.id] = {
      initial: 'check',
      states: {
        check: {
          invoke: {
            src: 'checkStep',
            input,
            onDone: [{ guard: 'passed', target: 'confirm' }, { target: 'failed' }],
            onError: 'failed',
          },
        },
        // RECHECK: a run resumed at a prompt checks the live cluster again before it may act.
        confirm: { on: { CONTINUE: 'run', SKIP: after(i), ABORT: '#run.aborted', RECHECK: 'check' } },
        run: { invoke: { src: 'runStep', input, onDone: 'verify', onError: 'failed' } },
        verify: {
          invoke: {
            src: 'verifyStep',
            input,
            onDone: [
              { guard: 'passed', target: 'done', actions: { type: 'markDone', params: input } },
              { target: 'failed' },
            ],
            onError: 'failed',
          },
        },
        failed: { on: { RETRY: 'check', SKIP: after(i), ABORT: '#run.aborted' } },
        done: { type: 'final' },
      },
      onDone: after(i),
    };
  });
  states.succeeded = { type: 'final' };
  states.aborted = { type: 'final' };
  return setup({
    types: {} as { context: RunContext },
    actors: { checkStep: missing, runStep: missing, verifyStep: missing },
    guards: { passed },
    actions: {
      // The step whose verify passed: the only place a step becomes done.
      markDone: assign({
        done: ({ context }, params: StepInput) => [...(context?.done ?? []), params.stepId],
      }),
    },
  }).createMachine({ id: 'run', context: EMPTY_CONTEXT, initial: ids[0], states: states as never });
}

export type RunMachine = ReturnType<typeof compilePlan>;

/** Where a snapshot value stands: the step and its phase, or a final state. */
export function position(value: unknown): { stepId: string; phase: Phase } | { final: 'succeeded' | 'aborted' } {
  if (value === 'succeeded' || value === 'aborted') return { final: value };
  const [stepId, phase] = Object.entries(value as Record<string, string>)[0]!;
  return { stepId, phase: phase as Phase };
}
