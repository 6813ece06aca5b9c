import {
  mkdtempSync,
  writeFileSync,
  rmSync,
  existsSync,
  openSync as openFd,
  readSync,
  closeSync,
  statSync,
} from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { clearSlots } from '../writer/clear-slots.js';
import type { ClusterPool } from '../../redis/connect.js';
import { openEndpoint, type Endpoint } from '../endpoint.js';
import { newShardState, type ShardStatus } from './shard-sync.js';
import { unstopped, type SyncRecord } from './session.js';
import { describeShard, type SyncEngine } from './engine.js';
import { scrub } from '../../redis/audit.js';
import { failedError } from '../../errors.js';
import {
  identityOf,
  isSameProcess,
  signalIfSame,
  startTimeOf,
  type ProcessIdentity,
} from '../../hosts/process-identity.js';
import type { CleanupSink } from '../../leftovers.js';
import {
  shakeConfigV2,
  shakeConfigV4,
  parseShakeLine,
  parseShakeStatus,
  checkShakeBinary,
  shakeTls,
  type ShakeSide,
  type ShakeStatus,
} from './redis-shake.js';

export interface ShakeRecord extends SyncRecord {
  /** The RedisShake process this run started (a resumed run stops it before starting a new one). */
  pid?: number;
  /** With pid: its start time (/proc/<pid>/stat) and host, so a reused pid is never taken for it. */
  startTime?: string;
  host?: string;
  /** Its config file: its command line holds this path. */
  conf?: string;
  /** Its private directory (config with passwords, log): removed by a resumed run if the killed one left it. */
  dir?: string;
  /** v4: its status port on loopback. */
  statusPort?: number;
}

export interface ShakeOptions {
  /** Called once the sync ends here (stopped or detached), so its owner lets go of it. */
  onEnd?(): void;
  id: string;
  source: ClusterPool;
  target: ClusterPool;
  binary: string | undefined;
  format: 'v4' | 'v2';
  load(): ShakeRecord | undefined;
  save(r: ShakeRecord): void;
  log(line: string): void;
  /** The run's cleanup registry: the config directory is recorded in it while it exists. */
  cleanup?: CleanupSink;
}

/**
 * Stop the RedisShake process an interrupted run left, if it is still that
 * process: same pid, same start time, same host, and its command line names
 * the config file this run wrote. A pid that now belongs to anything else is
 * left alone (it is reported, not signalled). Every signal re-reads the
 * identity right before it is sent.
 */
export async function stopLeftoverShake(
  record: Pick<ShakeRecord, 'pid' | 'startTime' | 'host' | 'conf' | 'dir'>,
  log: (line: string) => void,
): Promise<'none' | 'stopped' | 'not-ours'> {
  if (!record.pid) return 'none';
  const id: ProcessIdentity = { pid: record.pid, startTime: record.startTime, host: record.host ?? '' };
  // The command line must name this run's config (or, for a record without one, its private directory).
  const mark = record.conf ?? record.dir;
  if (!isSameProcess(id, mark)) {
    if (startTimeOf(record.pid) !== undefined)
      log(
        `pid ${record.pid} is no longer the RedisShake this run started (its start time or command line differ): left alone`,
      );
    return record.host && record.host !== hostname() ? 'not-ours' : 'none';
  }
  log(
    `stopping RedisShake (pid ${record.pid}) left by the interrupted run: it cannot continue a sync, the new one starts over`,
  );
  await stopShakeProcess(id, mark, log);
  return 'stopped';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long RedisShake gets to exit after SIGINT before SIGKILL. */
export const SHAKE_STOP_MS = 10_000;

/**
 * Stop a RedisShake process: SIGINT (v4.2.0 only logs SIGTERM and SIGQUIT
 * and goes on syncing; SIGINT makes it close its files and exit), then,
 * if it is still that process after SHAKE_STOP_MS, SIGKILL. Both are
 * logged (the step's log is journaled), the SIGKILL as a last resort.
 */
export async function stopShakeProcess(
  id: ProcessIdentity,
  mark: string | undefined,
  log: (line: string) => void,
  waitMs = SHAKE_STOP_MS,
): Promise<'exited' | 'killed' | 'gone'> {
  if (!signalIfSame(id, 'SIGINT', mark)) return 'gone';
  log(`sent SIGINT to RedisShake (pid ${id.pid})`);
  const until = Date.now() + waitMs;
  while (Date.now() < until && isSameProcess(id, mark)) await sleep(100);
  if (!signalIfSame(id, 'SIGKILL', mark)) return 'exited';
  log(`RedisShake (pid ${id.pid}) still ran ${waitMs / 1000} s after SIGINT: sent SIGKILL (last resort)`);
  for (let i = 0; i < 50 && isSameProcess(id, mark); i++) await sleep(100);
  return 'killed';
}

/** A loopback port free right now, for RedisShake's status page. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * RedisShake as the sync engine: its config written from the inventory into
 * a private directory (mode 0600: it holds the passwords) and deleted when
 * the sync stops, the binary run as a child process in its own process group
 * (a Ctrl-C at the terminal reaches this process, which stops it; a killed
 * run leaves it running, and `resume` or `abort` stop it), followed through
 * v4's status port (phases, RDB progress, offsets, `consistent`) and its log
 * (errors, and everything for v2), and stopped at cut-over. RedisShake
 * cannot continue a sync it did not finish: a resumed run stops the old
 * process, empties the target and syncs again.
 */
export class ShakeSession implements SyncEngine {
  readonly engine: string;
  readonly incremental = true;
  private proc: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  private dir = '';
  private record!: ShakeRecord;
  private readonly shards = new Map<number, ShakeStatus & { at: number }>();
  private expected = 1;
  private lastError: string | undefined;
  private exited: string | undefined;
  private tail: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private readonly tailPos = new Map<string, number>();
  private source!: Endpoint;
  private secrets: string[] = [];
  /** The status page's last answers: `consistent` and when (two in a row after a catch-up began end it). */
  private page: { consistent: boolean; at: number; sent: Map<string, number> } | undefined;

  private constructor(private readonly o: ShakeOptions) {
    this.engine = `redis-shake (${o.format})`;
  }

  static async start(o: ShakeOptions): Promise<ShakeSession> {
    const s = new ShakeSession(o);
    await s.begin();
    return s;
  }

  private side(ep: Endpoint, pool: ClusterPool): ShakeSide {
    const { username, password } = pool.credentials();
    return {
      cluster: ep.kind === 'cluster',
      addresses: ep.masters.map((m) => m.address),
      username,
      password,
      tls: shakeTls(pool.config),
    };
  }

  private async begin(): Promise<void> {
    const binary = checkShakeBinary(this.o.binary);
    // Refused before anything starts: RedisShake cannot give the TLS the inventory asks for.
    shakeTls(this.o.source.config);
    shakeTls(this.o.target.config);
    this.source = await openEndpoint(this.o.source);
    const target = await openEndpoint(this.o.target);
    const record = unstopped(this.o.load());
    this.record = record ?? { shards: this.source.masters.map((m) => ({ ranges: m.address, state: newShardState() })) };
    if ((await stopLeftoverShake(this.record, this.o.log)) === 'not-ours') {
      // Started on another machine (a resume there with --force): it may still be syncing, and this host cannot see or stop it.
      throw failedError(
        'E_SYNC_OTHER_HOST',
        `the RedisShake this run started (pid ${this.record.pid}) ran on host ${this.record.host}, not here: it cannot be checked or stopped from this host`,
        `stop it on ${this.record.host}, then retry the step`,
      );
    }
    if (this.record.dir) rmSync(this.record.dir, { recursive: true, force: true });
    // v4.2.0 writes the RDB as type commands (RPUSH, HSET, XADD...): onto a key the target holds
    // they append or fail. The target is emptied first, as a replica does on a full sync; the
    // start step had consent for its keys, and on a resume they are this run's earlier sync's.
    const cleared = await clearSlots(target, [[0, 16383]], undefined, (node, n) =>
      this.o.log(`deleted ${n} keys on ${node} before RedisShake's full sync`),
    );
    if (cleared) this.o.log(`the target was emptied (${cleared} keys) for RedisShake's full sync`);
    this.expected = this.source.masters.length;
    this.dir = mkdtempSync(join(tmpdir(), 'redis-runbook-shake-'));
    // Recorded before the passwords are written into it: `abort` and the run's end remove it.
    this.o.cleanup?.add('shake-dir', {
      kind: 'local-dir',
      path: this.dir,
      what: 'RedisShake config directory (holds passwords)',
    });
    const v4 = this.o.format === 'v4';
    const logFile = join(this.dir, v4 ? 'shake.log' : 'redis-shake.log');
    const conf = join(this.dir, v4 ? 'shake.toml' : 'redis-shake.conf');
    const statusPort = v4 ? await freePort() : undefined;
    const src = this.side(this.source, this.o.source);
    const tgt = this.side(target, this.o.target);
    this.secrets = [src.password, tgt.password, src.username, tgt.username].filter((x): x is string => !!x);
    writeFileSync(
      conf,
      v4
        ? shakeConfigV4({ source: src, target: tgt, dir: this.dir, logFile, statusPort })
        : shakeConfigV2({ source: src, target: tgt, logFile }),
      { mode: 0o600 },
    );
    this.launch(binary, v4 ? [conf] : ['-type=sync', `-conf=${conf}`]);
    const pid = this.proc!.pid;
    this.record.pid = pid;
    this.record.startTime = pid ? identityOf(pid)?.startTime : undefined;
    this.record.host = hostname();
    this.record.conf = conf;
    this.record.dir = this.dir;
    this.record.statusPort = statusPort;
    for (const sh of this.record.shards) sh.state.fullSyncs++;
    this.o.save(this.record);
    this.o.log(`RedisShake started (pid ${pid}, ${this.o.format} config in a private directory, mode 0600)`);
    // Its output (v4: its console log, with the errors the status page does not carry, and a Go
    // panic's trace; v2: little) and, for v2, its log file (where v2 writes its progress). v4's own
    // log file repeats its console log as JSON: not read twice.
    this.files = v4 ? [join(this.dir, 'stdout.log')] : [join(this.dir, 'stdout.log'), logFile];
    this.tail = setInterval(() => this.readLogs(), 250);
    this.tail.unref();
    if (statusPort) {
      this.poll = setInterval(() => void this.readStatus(statusPort), 500);
      this.poll.unref();
    }
  }

  /**
   * The binary itself (no shell: the pid recorded is RedisShake's), in its own
   * process group so a terminal's Ctrl-C reaches only this process, which stops
   * it with SIGINT. Its stdout and stderr go to a file in its directory, not a
   * pipe: a run killed with SIGKILL leaves it running (a write to a dead pipe
   * would kill it mid-write), and `resume`/`abort` stop it by its record.
   */
  private launch(binary: string, args: string[]): void {
    const out = openFd(join(this.dir, 'stdout.log'), 'a', 0o600);
    try {
      this.proc = spawn(binary, args, { cwd: this.dir, detached: true, stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    this.exit = new Promise((resolve) => {
      this.proc!.once('error', (err) => {
        this.exited ??= `RedisShake did not start: ${err.message}`;
        resolve();
      });
      this.proc!.once('exit', (code, signal) => {
        this.readLogs(); // its last words (the error it exited on) before they are summed up
        this.exited ??= `RedisShake exited (${signal ?? `code ${code}`})${this.lastError ? `: ${this.lastError}` : ''}`;
        resolve();
      });
    });
    this.proc.unref();
  }

  /**
   * v4's status page: the phase, RDB progress and replication offsets of each
   * reader, and `consistent`. Preferred to the log, which names one reader per
   * line in turn (src-0, src-1...) and carries no offsets; the log still gives
   * the errors (the page has none) and the phases before the page answers.
   */
  private async readStatus(port: number): Promise<void> {
    if (this.exited) return;
    let body: string;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      body = await res.text();
    } catch {
      return; // not listening yet, or busy: the next poll (or the log) says more
    }
    const page = parseShakeStatus(body);
    if (!page) return;
    const now = Date.now();
    const consistent = page.consistent; // v4 computes it with its writers' unanswered commands too
    this.page = {
      consistent,
      at: now,
      sent: new Map(page.readers.map((r) => [r.address ?? '', r.sentOffset ?? 0])),
    };
    // v4 lists its readers in no fixed order (seen: 15807, 15808, 15806): each is matched by address.
    page.readers.forEach((r, i) => {
      const shard = this.record.shards.findIndex((sh) => sh.ranges === r.address);
      if (r.phase) this.update(shard >= 0 ? shard : i, { phase: r.phase, percent: r.percent, diff: r.diff }, now);
    });
  }

  private files: string[] = [];
  private readLogs(): void {
    for (const f of this.files) this.readLog(f);
  }

  private readLog(file: string): void {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    const pos = this.tailPos.get(file) ?? 0;
    if (size <= pos) return;
    const fd = openFd(file, 'r');
    const buf = Buffer.alloc(size - pos);
    readSync(fd, buf, 0, buf.length, pos);
    closeSync(fd);
    const text = buf.toString();
    const cut = text.lastIndexOf('\n') + 1;
    this.tailPos.set(file, pos + Buffer.byteLength(text.slice(0, cut)));
    for (const line of text.slice(0, cut).split('\n')) if (line.trim()) this.onLine(line);
  }

  private onLine(raw: string): void {
    // RedisShake may print what its config holds (an auth error with the password): never pass that on.
    const line = scrub(raw, this.secrets);
    const st = parseShakeLine(line);
    if (!st) return;
    if (st.error) {
      if (st.error !== this.lastError) this.o.log(`RedisShake: ${st.error}`);
      this.lastError = st.error;
      return;
    }
    // Once v4's status page answers, it speaks for every reader at once, by address: the log's phases
    // are older news, and its src-N numbers follow v4's own order of readers, not the source's masters.
    if (this.page) return;
    this.update(Number(/src-(\d+)/.exec(line)?.[1] ?? 0), st, Date.now());
  }

  private update(src: number, st: ShakeStatus, at: number): void {
    const prev = this.shards.get(src);
    const next = { ...prev, ...st, at };
    if (prev?.phase !== next.phase && next.phase)
      this.o.log(
        `RedisShake source ${src}: ${next.phase}${next.phase === 'full' && next.percent !== undefined ? ` ${next.percent}%` : ''}`,
      );
    this.shards.set(src, next);
    const rec = this.record.shards[src];
    if (next.phase === 'incremental' && rec && !rec.state.loaded) {
      rec.state.loaded = true;
      this.o.save(this.record);
    }
  }

  status(): ShardStatus[] {
    const out: ShardStatus[] = [];
    // v4 numbers its readers src-0..n-1 for a cluster; lines without a number speak for all of them.
    const n = Math.max(this.expected, this.shards.size);
    for (let i = 0; i < n; i++) {
      const s = this.shards.get(i) ?? (this.shards.size === 1 ? this.shards.get(0) : undefined);
      const phase: ShardStatus['phase'] = this.exited
        ? 'stopped'
        : !s?.phase || s.phase === 'handshake'
          ? 'connecting'
          : s.phase === 'incremental'
            ? 'stream'
            : 'full';
      out.push({
        shard: i,
        ranges: this.record.shards[i]?.ranges ?? `src-${i}`,
        master: this.record.shards[i]?.ranges,
        phase,
        rdbReceived: s?.percent ?? 0,
        rdbSize: s?.percent !== undefined ? 100 : undefined,
        keys: 0,
        applied: undefined,
        sourceOffset: undefined,
        lagBytes: phase === 'stream' ? s?.diff : undefined,
        lagMs: undefined,
        opsPerSec: Math.round(s?.writeOps ?? 0),
        lastError: this.exited ?? this.lastError,
      });
    }
    return out;
  }

  async refresh(): Promise<void> {}

  lagWithin(maxLag: number): boolean {
    // v2 reports no lag figure: its incremental phase is all there is to go on.
    return this.status().every((s) => s.phase === 'stream' && (s.lagBytes === undefined || s.lagBytes <= maxLag));
  }

  /**
   * Caught up: each v4 reader has passed on the source master's replication
   * offset read when this call began, and the status page said `consistent`
   * (every reader has written all it received, every writer's commands
   * answered) twice in a row, both after this call began. `consistent` needs some replication stream first (a source
   * master PINGs its replicas every repl-ping-replica-period, 10 s by default,
   * so an idle source gets there too). Without the page (v2): fresh log lines
   * saying nothing is left to write.
   */
  async catchUp(o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<boolean> {
    const since = Date.now();
    let [seen, streak] = [0, 0];
    // Where each source master's replication stream is now: RedisShake must have passed it on.
    const marks = this.record.statusPort ? await this.sourceOffsets() : new Map<string, number>();
    // The page has answered by now if it ever will (it polls every 500 ms from the start).
    if (this.record.statusPort && !this.page) this.o.log('RedisShake status page not answering: its log is read');
    const deadline = since + o.timeoutMs;
    while (Date.now() < deadline && !o.signal?.aborted && !this.exited) {
      const st = this.status();
      o.onProgress?.(st.map(describeShard).join(' | '));
      // The page once it answered (a binary without one, or a stand-in, goes by its log).
      if (this.page) {
        const p = this.page;
        // A master the page names otherwise (another address form) has only `consistent` to go on.
        // Counted per page read after this call began (a streak that began before it proves nothing new).
        if (p && p.at > since && p.at !== seen) {
          seen = p.at;
          const passed = [...marks].every(([addr, off]) => !p.sent.has(addr) || p.sent.get(addr)! >= off);
          streak = passed && p.consistent ? streak + 1 : 0;
          if (streak >= 2) return true;
        }
      } else {
        const fresh = [...this.shards.values()].every(
          (s) => s.at > since + 1000 && s.phase === 'incremental' && (s.diff ?? 0) === 0,
        );
        if (this.shards.size && fresh) return true;
      }
      await sleep(100);
    }
    return false;
  }

  /** master_repl_offset of each source master, by address (as v4's readers name them). */
  private async sourceOffsets(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const m of this.source.masters) {
      const off = /master_repl_offset:(\d+)/.exec(await m.text('INFO', 'replication'))?.[1];
      if (off !== undefined) out.set(m.address, Number(off));
    }
    return out;
  }

  async stop(): Promise<void> {
    await this.halt();
    this.record.stopped = { at: Date.now(), applied: [] };
    this.record.pid = undefined;
    this.record.startTime = undefined;
    this.record.host = undefined;
    this.record.conf = undefined;
    this.record.dir = undefined;
    this.o.save(this.record);
  }

  async detach(): Promise<void> {
    await this.halt();
  }

  private async halt(): Promise<void> {
    if (this.tail) clearInterval(this.tail);
    if (this.poll) clearInterval(this.poll);
    const running = this.proc?.pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
    this.exited ??= 'stopped at cut-over';
    if (running) {
      const pid = this.proc!.pid!;
      // SIGINT to RedisShake itself, SIGKILL if it does not exit in time (both logged, so journaled).
      await stopShakeProcess({ pid, startTime: this.record.startTime, host: hostname() }, this.record.conf, this.o.log);
      await Promise.race([this.exit, sleep(2000)]);
    }
    // The config holds passwords: it goes with the sync.
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (this.dir) this.o.cleanup?.done('shake-dir');
    this.o.onEnd?.();
  }
}
