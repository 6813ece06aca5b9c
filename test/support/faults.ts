import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, type CliResult } from './cli.js';
import { figures } from './reliability.js';
import { withNode } from './cluster.js';
import { heal, loss, partition as cutHost, type HostInfo } from './hosts.js';
import type { SandboxMeta } from '../../src/sandbox/metadata.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

/**
 * Fault injection for the chaos tests: a run watched while it goes (so a
 * fault lands inside the step the test wants), redis nodes killed and
 * restarted, helper processes killed, sshd stopped, a small tmpfs as a
 * node's data directory, and the independent per-slot comparison the tests
 * end with.
 */

export interface LiveRun {
  /** Resolves once the run's output (stdout + stderr) matches `re`; rejects after `ms` or when the run ends first. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
  output(): string;
  /** Send a signal to the runner (SIGSTOP/SIGCONT freeze it while a fault is put in place). */
  signal(sig: NodeJS.Signals): void;
  done: Promise<CliResult>;
}

/** Start the CLI as a child process and watch its output as it is written. */
export function startCli(home: string, args: string[], env: Record<string, string> = {}): LiveRun {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  const tick = () => {
    for (const w of [...watchers]) w();
  };
  child.stdout.on('data', (d) => {
    stdout += d;
    tick();
  });
  child.stderr.on('data', (d) => {
    stderr += d;
    tick();
  });
  let ended = false;
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => {
      ended = true;
      tick();
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 1), stdout, stderr, out: stdout + stderr });
    }),
  );
  const waitFor = (re: RegExp, ms = 120_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(new Error(`no ${re} in the run's output within ${ms} ms:\n${stdout}${stderr}`));
      }, ms);
      const check = () => {
        if (re.test(stdout + stderr)) {
          clearTimeout(timer);
          watchers.delete(check);
          resolve();
        } else if (ended) {
          clearTimeout(timer);
          watchers.delete(check);
          reject(new Error(`the run ended before ${re}:\n${stdout}${stderr}`));
        }
      };
      watchers.add(check);
      check();
    });
  return {
    waitFor,
    output: () => stdout + stderr,
    signal: (sig) => {
      child.kill(sig);
    },
    done,
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `kill -9` of a sandbox node, by the pid file it wrote. Returns the pid. */
export function killNode(sandboxDir: string, port: number): number {
  const pid = Number(readFileSync(join(sandboxDir, 'nodes', String(port), 'redis.pid'), 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  return pid;
}

/** Start a sandbox node again from its own config (it daemonizes) and wait until it answers PING. */
export async function startNode(sandboxDir: string, port: number, password: string): Promise<void> {
  const r = spawnSync('redis-server', [join(sandboxDir, 'nodes', String(port), 'redis.conf')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-server ${port} did not start: ${r.stderr}${r.stdout}`);
  for (let i = 0; ; i++) {
    try {
      if ((await withNode(port, password, (c) => c.ping())) === 'PONG') return;
    } catch {
      /* still loading or not yet listening */
    }
    if (i > 200) throw new Error(`node ${port} does not answer after its restart`);
    await sleep(100);
  }
}

/** The pids whose command line matches `pattern` (pgrep -f), this process and its parents excluded. */
export function pids(pattern: string): number[] {
  const r = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((p) => p !== process.pid && p !== process.ppid);
}

/** SIGKILL every process matching `pattern`; returns how many were killed. */
export function killMatching(pattern: string): number {
  let n = 0;
  for (const p of pids(pattern)) {
    try {
      process.kill(p, 'SIGKILL');
      n++;
    } catch {
      /* already gone */
    }
  }
  return n;
}

/** Poll until a process matching `pattern` exists; returns its pids. */
export async function waitForProcess(pattern: string, ms = 60_000): Promise<number[]> {
  const end = Date.now() + ms;
  for (;;) {
    const found = pids(pattern);
    if (found.length) return found;
    if (Date.now() > end) throw new Error(`no process matching ${pattern} within ${ms} ms`);
    await sleep(20);
  }
}

/**
 * Stop a sandbox's sshd the hard way: the listener and every session it
 * forked (the ssh connection-sharing masters would otherwise keep working
 * through their established sessions, which is not a host whose sshd is gone).
 */
export function stopSshd(sandboxDir: string): number {
  const conf = join(sandboxDir, 'ssh', 'sshd_config');
  const listener = pids(`sshd -f ${conf}`);
  const children = listener.flatMap((p) =>
    spawnSync('pgrep', ['-P', String(p)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number),
  );
  const grand = children.flatMap((p) =>
    spawnSync('pgrep', ['-P', String(p)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number),
  );
  let n = 0;
  for (const p of [...listener, ...children, ...grand]) {
    try {
      process.kill(p, 'SIGKILL');
      n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

export function startSshd(sandboxDir: string): void {
  const dir = join(sandboxDir, 'ssh');
  const r = spawnSync('/usr/sbin/sshd', ['-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`sshd did not start again: ${r.stderr}`);
}

export interface Tmpfs {
  grow(bytes: number): void;
  unmount(): void;
}

/**
 * Mount a tmpfs of `bytes` on a node's directory (stopped, or the runner
 * frozen), with the files it had copied in. `grow` enlarges it in place;
 * `unmount` puts the directory back with whatever the tmpfs holds then.
 */
export function mountTmpfs(dir: string, bytes: number): Tmpfs {
  const keep = mkdtempSync(join(tmpdir(), 'rr-chaos-tmpfs-'));
  cpSync(dir, keep, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${m.stderr}`);
  cpSync(keep, dir, { recursive: true });
  rmSync(keep, { recursive: true, force: true });
  let mounted = true;
  return {
    grow(size: number) {
      const r = spawnSync('mount', ['-o', `remount,size=${size}`, dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`remount ${dir}: ${r.stderr}`);
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      const now = mkdtempSync(join(tmpdir(), 'rr-chaos-tmpfs-'));
      cpSync(dir, now, { recursive: true });
      const u = spawnSync('umount', ['-l', dir], { encoding: 'utf8' });
      if (u.status !== 0) throw new Error(`umount ${dir}: ${u.stderr}`);
      for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
      cpSync(now, dir, { recursive: true });
      rmSync(now, { recursive: true, force: true });
    },
  };
}

/** Free bytes of the filesystem holding `dir` (df). */
export function freeBytes(dir: string): number {
  const r = spawnSync('df', ['-B1', '--output=avail', dir], { encoding: 'utf8' });
  return Number(r.stdout.trim().split('\n').pop());
}

/**
 * Key count of every slot of a cluster, each slot asked of the master that
 * owns it (as the node at `seed` sees the cluster), one pipeline per master.
 */
export async function slotCounts(seed: number | string, password: string): Promise<number[]> {
  const nodes = parseClusterNodes((await withNode(seed, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const counts = new Array<number>(16384).fill(-1);
  for (const m of nodes.filter((n) => n.flags.includes('master') && !n.flags.includes('fail') && n.slots.length > 0)) {
    await withNode(m.address, password, async (r) => {
      const pipe = r.pipeline();
      const slots: number[] = [];
      for (const [a, b] of m.slots)
        for (let s = a; s <= b; s++) {
          slots.push(s);
          pipe.call('CLUSTER', 'COUNTKEYSINSLOT', String(s));
        }
      const res = (await pipe.exec())!;
      res.forEach(([err, n], i) => {
        if (!err) counts[slots[i]!] = Number(n);
      });
    });
  }
  return counts;
}

/** Slots whose key counts differ between two clusters (an unanswered slot counts as a difference). */
export async function slotDifferences(
  source: number | string,
  target: number | string,
  password: string,
): Promise<{ differ: number[]; sourceKeys: number; targetKeys: number }> {
  const [a, b] = await Promise.all([slotCounts(source, password), slotCounts(target, password)]);
  const differ: number[] = [];
  for (let s = 0; s < 16384; s++) if (a[s] !== b[s] || a[s]! < 0) differ.push(s);
  const sum = (x: number[]) => x.reduce((t, v) => t + Math.max(v, 0), 0);
  return { differ, sourceKeys: sum(a), targetKeys: sum(b) };
}

export interface AuditRow {
  command: string;
  target: string;
  args: string[];
  ok?: boolean;
}

/** The commands of `audit` that `pick` selects and that appear more than once with the same target and arguments. */
export function journaledTwice(audit: AuditRow[], pick: (a: AuditRow) => boolean): string[] {
  const seen = new Map<string, number>();
  for (const a of audit.filter(pick)) {
    const k = `${a.command} ${a.target} ${(a.args ?? []).join(' ')}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} (x${n})`);
}

/** Wait until `fn` holds, polling; throws with `what` after `ms`. */
export async function until(what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * What a finished case measured, for the reliability table (see reliability.ts):
 * the differences its final comparison found, slot by slot and by the runbook's verify.
 */
export function record(name: string, fields: { slotDiffs?: number; verifyDiffs?: number; [k: string]: unknown }): void {
  const measured = fields.slotDiffs !== undefined || fields.verifyDiffs !== undefined;
  figures(name, measured ? { differences: (fields.slotDiffs ?? 0) + (fields.verifyDiffs ?? 0) } : {});
}

/** A simulated host of a `sandbox up --hosts N` sandbox, as sandbox.json names it. */
export type ChaosHost = HostInfo;

export function sandboxHosts(sandboxDir: string): { runner: string; hosts: ChaosHost[] } {
  const meta = JSON.parse(readFileSync(join(sandboxDir, 'sandbox.json'), 'utf8')) as SandboxMeta;
  if (!meta.network) throw new Error(`${sandboxDir} is not a --hosts sandbox`);
  return { runner: meta.network.runnerAddress, hosts: meta.network.hosts };
}

/**
 * Cut a host off, with the sandbox's own fault plumbing (hosts.ts). `link`: its
 * veth down (from everyone, both directions). `runner`: what comes from and goes
 * to the runner dropped (the other hosts still reach it). `in` / `out`: one
 * direction only (packets from the runner dropped, or packets to the runner
 * dropped). `loss`: a percentage of the host's packets to and from the runner
 * dropped at random. Returns the function that heals it.
 */
export function partition(
  host: ChaosHost,
  runner: string,
  mode: 'link' | 'runner' | 'in' | 'out' | { loss: number },
): () => void {
  if (mode === 'link') cutHost(host, 'both');
  else if (typeof mode === 'object') loss(host, mode.loss, runner);
  else cutHost(host, mode === 'runner' ? 'both' : mode, runner);
  return () => heal(host);
}

/** A bandwidth limit on a host's link (tc tbf on its root-side veth, i.e. what the host receives). */
export function rateLimit(host: ChaosHost, rate: string): () => void {
  const r = spawnSync(
    'tc',
    ['qdisc', 'add', 'dev', host.vethRoot, 'root', 'tbf', 'rate', rate, 'burst', '16kb', 'latency', '400ms'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`tc on ${host.vethRoot}: ${r.stderr}`);
  return () => {
    spawnSync('tc', ['qdisc', 'del', 'dev', host.vethRoot, 'root']);
  };
}

/**
 * A node's service start as a sandbox inventory writes it: the node's own server binary (named
 * in its directory's `server` file) on its redis.conf; `redis-server <conf>` in older inventories
 * and in the test pairs. What the "never twice" checks count as a start.
 */
export function isNodeStart(command: string): boolean {
  return /^"\$\(cat \S+\/server\)" \S+\/redis\.conf$/.test(command) || /^redis-server \S+\/redis\.conf$/.test(command);
}
