import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cli, runIdOf, type CliResult } from './cli.js';
import { withNode } from './cluster.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

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
  /** Per kill, how long the attempt that hit it took (ms). */
  ms: number[];
}

export async function killChain(home: string, runArgs: string[], resumeFlags: string[], points: string[], hitFile: string): Promise<ChainResult> {
  const remaining = new Set(points);
  const killed: string[] = [];
  const ms: number[] = [];
  writeFileSync(hitFile, '');
  let runId = '';
  for (;;) {
    const args = runId ? ['resume', runId, ...resumeFlags] : runArgs;
    const started = Date.now();
    const r = await cli(home, args, { REDIS_RUNBOOK_FAILPOINT: [...remaining].join(','), REDIS_RUNBOOK_FAILPOINT_HIT: hitFile });
    if (!runId) runId = runIdOf(r);
    const hits = readFileSync(hitFile, 'utf8').split('\n').filter(Boolean);
    if (r.code !== 137) return { runId, killed, notReached: [...remaining], last: r, ms };
    const hit = hits.at(-1);
    if (hits.length !== killed.length + 1 || !hit || !remaining.has(hit)) {
      throw new Error(`the runner died (SIGKILL) without a failpoint of the chain firing (hits: ${hits.join(', ') || 'none'}):\n${r.out.slice(-3000)}`);
    }
    remaining.delete(hit);
    killed.push(hit);
    ms.push(Date.now() - started);
  }
}

/** Keys per slot of a cluster, read from the master that owns each slot (CLUSTER COUNTKEYSINSLOT). */
export async function keysPerSlot(port: number, password: string): Promise<number[]> {
  const view = parseClusterNodes((await withNode(port, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const counts = new Array<number>(16384).fill(-1);
  for (const m of view.filter((n) => n.flags.includes('master') && n.slots.length)) {
    const slots = m.slots.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
    const mport = Number(m.address.split(':').pop());
    const got = await withNode(mport, password, async (r) => {
      const p = r.pipeline();
      for (const s of slots) p.call('CLUSTER', 'COUNTKEYSINSLOT', String(s));
      return (await p.exec())!.map(([err, v]) => { if (err) throw err; return Number(v); });
    });
    slots.forEach((s, i) => (counts[s] = got[i]!));
  }
  return counts;
}

/** The slots whose counts differ, as `slot: expected -> got` (at most `max` of them). */
export function slotDifferences(expected: number[], got: number[], max = 10): string[] {
  const out: string[] = [];
  for (let s = 0; s < 16384; s++) if (expected[s] !== got[s]) out.push(`${s}: ${expected[s]} -> ${got[s]}`);
  return out.length > max ? [...out.slice(0, max), `... ${out.length - max} more`] : out;
}

export interface AuditEntry { stepId: string | null; target: string; command: string; args: string[]; ok?: boolean }

/**
 * The commands that must not reach the same target twice in one run, however
 * often it was killed and resumed: each either destroys something or changes
 * roles, so a repeat after a resume is a second, unplanned action (a second
 * failover flips the roles back, a second SHUTDOWN or service stop takes down
 * a node that was started since, a second backup moves the copied files aside).
 * Keyed by step, target and the command's identifying words.
 */
export function repeatedActions(audit: AuditEntry[]): string[] {
  const once = (a: AuditEntry): string | undefined => {
    const sub = (a.args[0] ?? '').toUpperCase();
    if (a.command === 'CLUSTER' && ['FAILOVER', 'RESET'].includes(sub)) return `CLUSTER ${sub}`;
    if (['SHUTDOWN', 'FLUSHALL', 'FLUSHDB'].includes(a.command)) return a.command;
    if (a.command === 'HOST' && /\b(stop|kill|rm|mv)\b/.test(a.args[0] ?? '')) return `HOST ${a.args[0]}`;
    if (['DELETE-FILES', 'BACKUP-FILES', 'MOVE-ASIDE'].includes(a.command)) return `${a.command} ${a.args.join(' ')}`;
    return undefined;
  };
  const seen = new Map<string, number>();
  for (const a of audit) {
    const k = once(a);
    if (k) seen.set(`${a.stepId} ${a.target} ${k}`, (seen.get(`${a.stepId} ${a.target} ${k}`) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} (x${n})`);
}

export const fileExists = existsSync;
