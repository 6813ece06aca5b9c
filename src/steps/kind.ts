import { failedError } from '../errors.js';
import type { Condition, Intent, PlanHosts, PlannedCommand, StepRunContext } from '../engine/step-contract.js';

// The contract itself is the engine's (engine/step-contract.ts); step kinds import it from here.
export type {
  Condition,
  Intent,
  KindParam,
  PlanHosts,
  PlannedCommand,
  RunState,
  SettleSpec,
  StepEnv,
  StepKind,
  StepKinds,
  StepRunContext,
} from '../engine/step-contract.js';

/**
 * A node's service command as the plan shows it: the filled-in template of
 * its host, exactly as it will run (passwords redacted), or `otherwise` when
 * the inventory has none. Without `hosts` (a plan built from topology alone)
 * the template is named instead.
 */
export function serviceCommand(
  hosts: PlanHosts | undefined,
  address: string,
  action: 'start' | 'stop' | 'kill',
  otherwise: PlannedCommand | undefined,
  when?: string,
): PlannedCommand {
  if (!hosts)
    return {
      target: `host of ${address}`,
      command: `service.${action} from the inventory${otherwise ? `, or ${otherwise.command} on ${otherwise.target}` : ''}`,
      when,
    };
  const h = hosts.host(address);
  let cmd: string | undefined;
  try {
    cmd = h?.service(action);
  } catch {
    cmd = undefined; // an address that cannot go into a command: the step's check refuses it
  }
  if (h && cmd) return { target: `host ${h.name}`, command: h.shown(cmd), when };
  return otherwise
    ? { ...otherwise, when: otherwise.when ?? when }
    : { target: `host of ${address}`, command: `(no service.${action} in the inventory)`, when };
}

export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw failedError(
      'E_STOPPED',
      'stopped by the operator before the step finished',
      'resume the run; the step checks the cluster again before it acts',
    );
}

export const pass = (name: string, reason: string): Condition => ({ name, ok: true, reason });
/** The check (or verify) of a step that only reads: nothing to hold before it runs. */
export const onlyReads = async (): Promise<Condition[]> => [pass('read-only', 'this step only reads')];
export const fail = (name: string, reason: string): Condition => ({ name, ok: false, reason });
export const cond = (name: string, ok: boolean, okReason: string, failReason: string): Condition => ({
  name,
  ok,
  reason: ok ? okReason : failReason,
});

/**
 * Wait until `probe` returns a value, polling; undefined after `timeoutMs`.
 * A stop request (Ctrl-C) is not a timeout: it throws E_STOPPED, so that no
 * step mistakes it for "the cluster did not get there" or acts after it.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<T | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    throwIfStopped(opts.signal);
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    throwIfStopped(opts.signal);
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/**
 * The newest intent named `name` that an earlier attempt of this step
 * recorded (`ctx.intent`, written before it acted), if it is younger than
 * `withinMs`: what a retry or a resume must reckon with before acting again.
 */
export function earlierIntent(ctx: StepRunContext<unknown>, name: string, withinMs = Infinity): Intent | undefined {
  const since = Date.now() - withinMs;
  return ctx.inDoubt?.intents.filter((i) => i.name === name && i.at > since).at(-1);
}
