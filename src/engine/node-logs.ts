import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { messageOf } from '../errors.js';
import { hostOf } from '../address.js';
import { shellWord } from '../hosts/host.js';
import { boundRows, linesInWindow, note, parseZoneOffset, type HostZone, type LogRow } from './node-log-lines.js';
import { NodeLogStore } from './node-log-store.js';
import { kindOf, type StepEnv, type StepKinds } from './step-contract.js';
import type { Plan } from './plan.js';
import type { Store } from './store.js';

/**
 * The nodes' own logs, kept with the run: for a step whose kind names the
 * nodes that tell its story (StepKind.logNodes: failovers, the drill, a
 * decommission), each node's log lines of the step's time window are read
 * once the step has finished or failed, and stored (node-log-store.ts).
 *
 * Where a node logs is asked (CONFIG GET logfile) when the step is checked,
 * while the node still answers, and remembered for the rest of the run (in
 * the run state, so a resume knows it too): the master a drill stops has the
 * most telling log, and it is down by the time it is read.
 *
 * Best effort, always: a log that cannot be read is a note among the rows,
 * never a failed step; every read is bounded in time and size.
 */
export const NODE_LOG_LIMITS = {
  /** Only the end of a log file is read. */
  tailBytes: 256 * 1024,
  /** Per node and step attempt, kept rows (the first and the last, see boundRows). */
  maxLines: 400,
  maxBytes: 64 * 1024,
  /** The window reaches this far before the step began and after it ended. */
  beforeMs: 2000,
  afterMs: 2000,
  /** CONFIG GET at the check; a file read or an ssh round trip after the step. */
  configTimeoutMs: 2000,
  readTimeoutMs: 10_000,
};

/** Where a node's log goes: a file on its host, or standard output / syslog (nothing to read). */
export type LogSource = { path: string } | { stream: 'stdout' | 'syslog'; detail: string };

const SOURCES = 'node-log-sources';
const UNTIL = 'node-log-until';

export class NodeLogCollector {
  private readonly pending = new Set<Promise<void>>();
  private readonly last = new Map<string, Promise<void>>();
  private readonly rows: NodeLogStore;

  constructor(private readonly o: { store: Store; runId: string; plan: Plan; env: StepEnv; kinds: StepKinds }) {
    this.rows = new NodeLogStore(o.store);
  }

  /** The step's cluster and nodes whose logs are kept, or undefined for a step that keeps none. */
  private nodesOf(stepId: string): { cluster: string; nodes: string[] } | undefined {
    const step = this.o.plan.steps.find((s) => s.id === stepId);
    if (!step) return undefined;
    const spec = kindOf(this.o.kinds, step.kind, this.o.plan.runbook).logNodes?.(step.args);
    if (!spec) return undefined;
    const nodes = spec.nodes ?? this.o.plan.clusters[spec.cluster]?.structure.map((n) => n.address) ?? [];
    return { cluster: spec.cluster, nodes: [...new Set(nodes)] };
  }

  private sources(): Record<string, LogSource> {
    return this.o.store.getState<Record<string, LogSource>>(this.o.runId, SOURCES) ?? {};
  }

  /** At the step's check: learn where each of its nodes logs, unless known from an earlier step. Never throws. */
  async before(stepId: string): Promise<void> {
    try {
      const spec = this.nodesOf(stepId);
      if (!spec) return;
      const known = this.sources();
      const found = await Promise.all(
        spec.nodes
          .filter((n) => !known[n])
          .map(async (n) => [
            n,
            await within(logSourceOf(this.o.env, spec.cluster, n), NODE_LOG_LIMITS.configTimeoutMs),
          ]),
      );
      const learned = Object.fromEntries(found.filter(([, s]) => s !== undefined));
      if (Object.keys(learned).length) this.o.store.setState(this.o.runId, SOURCES, { ...this.sources(), ...learned });
    } catch {
      // best effort: a node that does not answer now is noted when its log is wanted
    }
  }

  /**
   * The step finished (done or failed): collect its window in the background (see drain).
   * Collections of one step run one after the other: each starts where the one before ended.
   */
  after(stepId: string): void {
    if (!this.nodesOf(stepId)) return;
    const p: Promise<void> = (this.last.get(stepId) ?? Promise.resolve())
      .then(() => this.collect(stepId))
      .catch(() => undefined)
      .finally(() => this.pending.delete(p));
    this.last.set(stepId, p);
    this.pending.add(p);
  }

  /** Wait for the collections under way (before the run's connections close). Never throws. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async collect(stepId: string): Promise<void> {
    const { store, runId, env } = this.o;
    const spec = this.nodesOf(stepId)!;
    const row = store.steps(runId).find((r) => r.stepId === stepId);
    if (!row?.startedAt || !row.finishedAt) return;
    // The window of this attempt: an earlier attempt's window is not collected twice.
    const until = store.getState<Record<string, number>>(runId, UNTIL) ?? {};
    let from = Math.max(row.startedAt - NODE_LOG_LIMITS.beforeMs, until[stepId] ?? 0);
    let to = row.finishedAt + NODE_LOG_LIMITS.afterMs;
    // The lines just after the step (the last nodes noticing) are written by then.
    const wait = Math.min(to - Date.now(), NODE_LOG_LIMITS.afterMs);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // The margins stop at the neighbouring steps that keep logs of their own: a line belongs to
    // one step (the failover's election lines are the failover's, not the wait before it's).
    for (const r of store.steps(runId)) {
      if (r.stepId === stepId || !r.startedAt || !this.nodesOf(r.stepId)) continue;
      if (r.finishedAt && r.finishedAt <= row.startedAt) from = Math.max(from, r.finishedAt);
      if (r.startedAt >= row.finishedAt) to = Math.min(to, r.startedAt);
    }
    if (from >= to) return;
    const sources = this.sources();
    let secrets: string[] = [];
    try {
      secrets = env.pool(spec.cluster).secrets();
    } catch {
      // the registered secrets are scrubbed all the same
    }
    await Promise.all(
      spec.nodes.map(async (node) => {
        const source = sources[node];
        const { where, rows } = await nodeRows(env, node, source, from, to);
        this.rows.add(runId, stepId, node, where, rows, secrets);
      }),
    );
    store.setState(runId, UNTIL, { ...(store.getState<Record<string, number>>(runId, UNTIL) ?? {}), [stepId]: to });
  }
}

/** One node's rows for the window: its lines, or one note saying why there are none to read. */
async function nodeRows(
  env: StepEnv,
  node: string,
  source: LogSource | undefined,
  from: number,
  to: number,
): Promise<{ where: string; rows: LogRow[] }> {
  if (!source)
    return {
      where: 'unknown',
      rows: [
        {
          at: null,
          line: note(`where ${node} logs is unknown: it did not answer CONFIG GET logfile when the step began`),
        },
      ],
    };
  if ('stream' in source) return { where: source.stream, rows: [{ at: null, line: note(source.detail) }] };
  try {
    const tail = await within(readTail(env, node, source.path), NODE_LOG_LIMITS.readTimeoutMs);
    if (!tail) throw new Error(`no answer within ${NODE_LOG_LIMITS.readTimeoutMs} ms`);
    const lines = linesInWindow(tail.text, tail.zone, from, to, tail.partial);
    return { where: source.path, rows: boundRows(lines, NODE_LOG_LIMITS.maxLines, NODE_LOG_LIMITS.maxBytes) };
  } catch (err) {
    return { where: source.path, rows: [{ at: null, line: note(`could not read ${source.path}: ${messageOf(err)}`) }] };
  }
}

/** Resolves undefined when `p` takes longer than `ms` (p itself is left to finish or fail on its own). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function configValue(env: StepEnv, cluster: string, node: string, name: string): Promise<string> {
  const r = await env.pool(cluster).node(node).call('CONFIG', 'GET', name);
  const v = Array.isArray(r) ? r[1] : undefined;
  return v === undefined || v === null ? '' : String(v);
}

/** Where a node logs, from its own settings (reads only). */
export async function logSourceOf(env: StepEnv, cluster: string, node: string): Promise<LogSource> {
  const file = await configValue(env, cluster, node, 'logfile');
  const hostName = env.host(node)?.name ?? hostOf(node);
  if (file) {
    // A relative logfile is opened from the server's working directory, which is `dir`.
    if (file.startsWith('/')) return { path: file };
    return { path: posix.join(await configValue(env, cluster, node, 'dir'), file) };
  }
  if ((await configValue(env, cluster, node, 'syslog-enabled')) === 'yes') {
    const ident = (await configValue(env, cluster, node, 'syslog-ident')) || 'redis';
    return {
      stream: 'syslog',
      detail:
        `${node} logs to syslog (syslog-ident ${ident}), not to a file: on host ${hostName} ` +
        `see \`journalctl -t ${ident}\` or /var/log/syslog for the step's time`,
    };
  }
  return {
    stream: 'stdout',
    detail:
      `${node} has logfile "": it logs to standard output (lost when it runs with daemonize yes); ` +
      `on host ${hostName} see its service manager's log (\`journalctl -u <its unit>\`, \`docker logs\`) ` +
      `for the step's time, or set logfile to keep a file`,
  };
}

const isLoopback = (host: string) => /^127\./.test(host) || host === '::1' || host === 'localhost';

/**
 * The last tailBytes of a log file, from this machine when the node's host
 * is this machine (transport local, or a loopback node no inventory host
 * lists), else over the inventory's ssh (a read: not journaled).
 */
async function readTail(
  env: StepEnv,
  node: string,
  path: string,
): Promise<{ text: string; partial: boolean; zone: HostZone }> {
  const host = env.host(node);
  const n = NODE_LOG_LIMITS.tailBytes;
  if (host?.config.transport === 'ssh') {
    // The host's own UTC offset: its log's timestamps are its local time (a change of
    // offset, DST, within the tail is not accounted for).
    const r = await host.read(`date +%z && wc -c < ${shellWord(path)} && tail -c ${n} -- ${shellWord(path)}`, {
      timeoutMs: NODE_LOG_LIMITS.readTimeoutMs,
    });
    if (r.exitCode !== 0) throw new Error(`on host ${host.name}: ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`);
    const [zoneLine = '', sizeLine = '', ...rest] = r.stdout.split('\n');
    const zone = parseZoneOffset(zoneLine);
    if (zone === undefined) throw new Error(`on host ${host.name}: \`date +%z\` said ${JSON.stringify(zoneLine)}`);
    return { text: rest.join('\n'), partial: Number(sizeLine.trim()) > n, zone };
  }
  if (host?.config.transport !== 'local' && !(host === undefined && isLoopback(hostOf(node))))
    throw new Error(`no inventory host lists ${hostOf(node)}: add it under hosts: to have its nodes' logs read`);
  // This machine: the timestamps are read in this process's time zone (TZ), assumed to be the
  // server's too (same machine; a server started with another TZ would be off by the difference).
  const f = await open(path, 'r');
  try {
    const size = (await f.stat()).size;
    const len = Math.min(size, n);
    const buf = Buffer.alloc(len);
    await f.read(buf, 0, len, size - len);
    return { text: buf.toString('utf8'), partial: size > n, zone: 'local' };
  } finally {
    await f.close();
  }
}
