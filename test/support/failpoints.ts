import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { CLI, runIdOf, type CliResult } from './cli.js';
import { slotCounts } from './faults.js';

/**
 * The SIGKILL chain of the crash matrix: every failpoint of a plan armed at
 * once, the runner killed at the first one it reaches, resumed with the ones
 * not yet hit, and so on until a resume finishes. Each point reached is a
 * kill and a resume from that exact state, for about one run's worth of work;
 * a point the run never passes stays in `notReached`.
 */
export interface ChainResult {
  runId: string;
  killed: string[];
  notReached: string[];
  last: CliResult;
  /** Per kill, when the attempt that hit it started and ended (epoch ms). */
  attempts: Array<{ point: string; from: number; to: number }>;
}

/** Run the CLI as cli() does, but a run that hangs is killed after `timeoutMs` and says so. */
function cliBounded(
  home: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<CliResult & { hung: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 1), stdout, stderr, out: stdout + stderr, hung });
    });
  });
}

/** One attempt of a chain (a run or a resume) longer than this is hung, not slow: the sandbox's data is small. */
const ATTEMPT_MS = 180_000;

export async function killChain(
  home: string,
  runArgs: string[],
  resumeFlags: string[],
  points: string[],
  hitFile: string,
): Promise<ChainResult> {
  const remaining = new Set(points);
  const killed: string[] = [];
  const attempts: ChainResult['attempts'] = [];
  writeFileSync(hitFile, '');
  let runId = '';
  for (;;) {
    const args = runId ? ['resume', runId, ...resumeFlags] : runArgs;
    const started = Date.now();
    const r = await cliBounded(
      home,
      args,
      { REDIS_RUNBOOK_FAILPOINT: [...remaining].join(','), REDIS_RUNBOOK_FAILPOINT_HIT: hitFile },
      ATTEMPT_MS,
    );
    if (r.hung)
      throw new Error(
        `\`${args.join(' ')}\` did not finish in ${ATTEMPT_MS / 1000} s (killed at ${killed.length} points so far: ${killed.join(' ')}); its output:\n${r.out.slice(-3000)}`,
      );
    if (!runId) runId = runIdOf(r);
    const hits = readFileSync(hitFile, 'utf8').split('\n').filter(Boolean);
    if (r.code !== 137) return { runId, killed, notReached: [...remaining], last: r, attempts };
    const hit = hits.at(-1);
    if (hits.length !== killed.length + 1 || !hit || !remaining.has(hit)) {
      throw new Error(
        `the runner died (SIGKILL) without a failpoint of the chain firing (hits: ${hits.join(', ') || 'none'}):\n${r.out.slice(-3000)}`,
      );
    }
    remaining.delete(hit);
    killed.push(hit);
    attempts.push({ point: hit, from: started, to: Date.now() });
  }
}

/** Keys per slot of a cluster (CLUSTER COUNTKEYSINSLOT of each slot's master; -1: no answer), asked through a seed node: a loopback port or HOST:PORT. */
export const keysPerSlot = (seed: number | string, password: string): Promise<number[]> => slotCounts(seed, password);

/** The slots whose counts differ, as `slot: expected -> got` (at most `max` of them). */
export function slotDifferences(expected: number[], got: number[], max = 10): string[] {
  const out: string[] = [];
  for (let s = 0; s < 16384; s++) if (expected[s] !== got[s]) out.push(`${s}: ${expected[s]} -> ${got[s]}`);
  return out.length > max ? [...out.slice(0, max), `... ${out.length - max} more`] : out;
}

export interface AuditEntry {
  at: number;
  stepId: string | null;
  target: string;
  command: string;
  args: string[];
  ok?: boolean;
  write?: boolean;
}

/**
 * The runner persists entering `run` before the step acts: an attempt killed
 * at `<step>.run` sent nothing for that step. The commands it did send, per point.
 */
export function sentBeforeRun(audit: AuditEntry[], attempts: ChainResult['attempts']): string[] {
  return attempts
    .filter((a) => a.point.endsWith('.run'))
    .flatMap((a) => {
      const stepId = a.point.slice(0, -'.run'.length);
      return audit
        .filter((e) => e.write && e.target !== 'operator' && e.stepId === stepId && e.at >= a.from && e.at <= a.to)
        .map((e) => `${a.point}: ${e.target} ${e.command} ${e.args.join(' ').slice(0, 80)}`);
    });
}

/**
 * Commands that must not be journaled twice in one run, however often it was
 * killed and resumed. Never twice at all: CLUSTER FAILOVER and RESET, SHUTDOWN,
 * FLUSHALL/FLUSHDB and a service stop or kill (`kill ...` in the sandbox): a
 * repeat flips roles back or takes down a node started since; a step must read
 * the cluster (ctx.inDoubt) instead of sending them again. Not twice after one
 * was recorded as done: the guarded file commands (`rm -rf` of a node's files,
 * `mv` into the backup only while the file is there and the backup has none),
 * which a resume may repeat when the earlier one is in doubt (sent, no reply)
 * because the guard makes a repeat a no-op. Left out on purpose, as idempotent
 * by construction: CLUSTER FORGET (repeated until no node lists the node),
 * SETSLOT NODE (assigning a slot to its owner again changes nothing), MIGRATE
 * (a moved key is no longer in the source slot to be moved again), a service
 * start of a node that is down, a verified file copy (same bytes, renamed into
 * place only once verified).
 */
export function repeatedActions(audit: AuditEntry[]): string[] {
  const never = (a: AuditEntry): string | undefined => {
    const sub = (a.args[0] ?? '').toUpperCase();
    if (a.command === 'CLUSTER' && ['FAILOVER', 'RESET'].includes(sub)) return `CLUSTER ${sub}`;
    if (['SHUTDOWN', 'FLUSHALL', 'FLUSHDB'].includes(a.command)) return a.command;
    if (a.command === 'HOST' && /^kill /.test(a.args[0] ?? '')) return `HOST ${a.args[0]}`;
    return undefined;
  };
  const guarded = (a: AuditEntry): string | undefined =>
    a.command === 'HOST' && /\b(rm -rf|mv) --/.test(a.args[0] ?? '') ? `HOST ${a.args[0]}` : undefined;
  const out: string[] = [];
  const seen = new Map<string, number>();
  const done = new Set<string>();
  for (const a of audit) {
    const n = never(a);
    if (n) {
      const k = `${a.stepId} ${a.target} ${n}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      if (seen.get(k) === 2) out.push(`${k}: sent twice`);
    }
    const g = guarded(a);
    if (g) {
      const k = `${a.stepId} ${a.target} ${g}`;
      if (done.has(k)) out.push(`${k}: sent again after it was recorded as done`);
      if (a.ok) done.add(k);
    }
  }
  return out;
}

export const fileExists = existsSync;

/** Extra chains for points the first one did not reach (a node started in parallel with the one killed). */
export const MAX_PASSES = 3;

/**
 * Points the first chain did not reach get chains of their own, armed with
 * only them, while a chain still reaches one (at most MAX_PASSES in all).
 * What no chain reaches is reported through `report`, never dropped: a step
 * passes such a point only in a state the runs did not meet (a start sent
 * only to a node found down, a full sync seen while it loads).
 */
export async function chaseNotReached(
  name: string,
  first: { killed: string[]; notReached: string[] },
  pass: (n: number, points: string[]) => Promise<{ chain: { killed: string[] } }>,
  report: (line: string) => void,
): Promise<{ killed: string[]; notReached: string[] }> {
  let notReached = first.notReached;
  const killed = [...first.killed];
  for (let n = 2; notReached.length && n <= MAX_PASSES; n++) {
    const more = await pass(n, notReached);
    killed.push(...more.chain.killed);
    notReached = notReached.filter((p) => !more.chain.killed.includes(p));
    if (!more.chain.killed.length) break;
  }
  for (const p of notReached) {
    const step = p.slice(0, p.indexOf(':'));
    report(
      `NOT REACHED ${name} ${p}: no run of step ${step} passed it (killed there at ${killed.filter((k) => k.startsWith(`${step}.`) || k.startsWith(`${step}:`)).join(' ')}); the step passes it only in a state the runs did not meet`,
    );
  }
  return { killed, notReached };
}
