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
import { execa, type ResultPromise } from 'execa';
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
  signalIfSame(id, 'SIGTERM', mark);
  for (let i = 0; i < 50 && isSameProcess(id, mark); i++) await new Promise((r) => setTimeout(r, 100));
  signalIfSame(id, 'SIGKILL', mark);
  return 'stopped';
}

/**
 * RedisShake as the sync engine: its config written from the inventory into
 * a private directory (mode 0600: it holds the passwords) and deleted when
 * the sync stops, the binary run as a child process, its log read back as
 * phases and progress (redis-shake.ts), and the process stopped at
 * cut-over. RedisShake cannot continue a sync it did not finish: a resumed
 * run stops the old process and syncs again (it rewrites existing keys).
 */
export class ShakeSession implements SyncEngine {
  readonly engine: string;
  readonly incremental = true;
  private proc: ResultPromise | undefined;
  private dir = '';
  private record!: ShakeRecord;
  private readonly shards = new Map<number, ShakeStatus & { at: number }>();
  private expected = 1;
  private lastError: string | undefined;
  private exited: string | undefined;
  private tail: NodeJS.Timeout | undefined;
  private tailPos = 0;
  private source!: Endpoint;
  private secrets: string[] = [];

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
    this.expected = this.source.masters.length;
    this.dir = mkdtempSync(join(tmpdir(), 'redis-runbook-shake-'));
    // Recorded before the passwords are written into it: `abort` and the run's end remove it.
    this.o.cleanup?.add('shake-dir', {
      kind: 'local-dir',
      path: this.dir,
      what: 'RedisShake config directory (holds passwords)',
    });
    const logFile = join(this.dir, this.o.format === 'v4' ? 'shake.log' : 'redis-shake.log');
    const conf = join(this.dir, this.o.format === 'v4' ? 'shake.toml' : 'redis-shake.conf');
    const src = this.side(this.source, this.o.source);
    const tgt = this.side(target, this.o.target);
    this.secrets = [src.password, tgt.password, src.username, tgt.username].filter((x): x is string => !!x);
    writeFileSync(
      conf,
      this.o.format === 'v4'
        ? shakeConfigV4({ source: src, target: tgt, dir: this.dir, logFile })
        : shakeConfigV2({ source: src, target: tgt, logFile }),
      { mode: 0o600 },
    );
    const args = this.o.format === 'v4' ? [conf] : ['-type=sync', `-conf=${conf}`];
    this.proc = execa(binary, args, { cwd: this.dir, reject: false, stdin: 'ignore', buffer: false, cleanup: true });
    this.record.pid = this.proc.pid;
    const me = this.proc.pid ? identityOf(this.proc.pid) : undefined;
    this.record.startTime = me?.startTime;
    this.record.host = hostname();
    this.record.conf = conf;
    this.record.dir = this.dir;
    for (const sh of this.record.shards) sh.state.fullSyncs++;
    this.o.save(this.record);
    this.o.log(`RedisShake started (pid ${this.proc.pid}, ${this.o.format} config in a private directory, mode 0600)`);
    const onText = (chunk: Buffer | string) => {
      for (const line of String(chunk).split('\n')) if (line.trim()) this.onLine(line);
    };
    this.proc.stdout?.on('data', onText);
    this.proc.stderr?.on('data', onText);
    void this.proc.then((r) => {
      if (this.exited === undefined)
        this.exited = `RedisShake exited (${r.signal ?? `code ${r.exitCode}`})${this.lastError ? `: ${this.lastError}` : ''}`;
    });
    // RedisShake also (v2: only) writes its log file.
    this.tail = setInterval(() => this.readLog(logFile), 250);
    this.tail.unref();
  }

  private readLog(file: string): void {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size <= this.tailPos) return;
    const fd = openFd(file, 'r');
    const buf = Buffer.alloc(size - this.tailPos);
    readSync(fd, buf, 0, buf.length, this.tailPos);
    closeSync(fd);
    const text = buf.toString();
    const cut = text.lastIndexOf('\n') + 1;
    this.tailPos += Buffer.byteLength(text.slice(0, cut));
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
    const src = Number(/src-(\d+)/.exec(line)?.[1] ?? 0);
    const prev = this.shards.get(src);
    const next = { ...prev, ...st, at: Date.now() };
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

  async catchUp(o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<boolean> {
    const since = Date.now();
    const deadline = since + o.timeoutMs;
    while (Date.now() < deadline && !o.signal?.aborted) {
      const st = this.status();
      o.onProgress?.(st.map(describeShard).join(' | '));
      // A status line written after this call began, saying nothing is left to write.
      const fresh = [...this.shards.values()].every(
        (s) => s.at > since + 1000 && s.phase === 'incremental' && (s.diff ?? 0) === 0,
      );
      if (this.shards.size && fresh) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
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
    this.exited ??= 'stopped at cut-over';
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc?.kill('SIGKILL'), 5000);
      await this.proc;
      clearTimeout(t);
    }
    // The config holds passwords: it goes with the sync.
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (this.dir) this.o.cleanup?.done('shake-dir');
    this.o.onEnd?.();
  }
}
