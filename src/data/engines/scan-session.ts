import { Redis } from 'ioredis';
import type { ClusterPool, NodeClient } from '../../redis/connect.js';
import { parseAddress } from '../../inventory/load.js';
import { openEndpoint, type Endpoint } from '../endpoint.js';
import { parseRanges, formatRanges, slotKey, type SlotRange } from '../../redis/slots.js';
import { newShardState, type ShardStatus } from './shard-sync.js';
import { shardsOf, unstopped, type SyncRecord } from './session.js';
import { describeShard, type SyncEngine } from './engine.js';
import { copyKeys, scanCopy } from '../readers/scan-copy.js';
import { clearSlots } from '../writer/clear-slots.js';
import { NET_LIMITS } from '../../redis/socket.js';
import type { CleanupSink } from '../../leftovers.js';

export interface ScanRecord extends SyncRecord {
  /** notify-keyspace-events as it was on each source master before the sync changed it (restored at the end). */
  notify?: Record<string, string>;
}

export interface ScanOptions {
  /** Called once the sync ends here (stopped or detached), so its owner lets go of it. */
  onEnd?(): void;
  id: string;
  source: ClusterPool;
  target: ClusterPool;
  load(): ScanRecord | undefined;
  save(r: ScanRecord): void;
  log(line: string): void;
  /** Follow changes through keyspace notifications (turned on for the sync, restored after). */
  notify: boolean;
  /** A subscriber whose PING goes unanswered this long is dropped and its shard copied again (default NET_LIMITS.subscriberIdleMs). */
  subscriberIdleMs?: number;
  /** The run's cleanup registry: each changed setting is recorded in it with its old value. */
  cleanup?: CleanupSink;
}

const CHANNEL = '__keyspace@0__:';

/** The notify-keyspace-events value with keyspace events of every type ("K" + "A") added. */
export function withKeyspaceEvents(current: string): string {
  const flags = new Set(current.split(''));
  if (flags.has('A')) {
    flags.add('K');
    return [...flags].join('');
  }
  flags.add('K');
  flags.add('A');
  // "A" stands for g$lshzxetd: drop the letters it covers.
  return [...flags].filter((f) => !'g$lshzxetd'.includes(f)).join('');
}

export interface Subscriber {
  close(): void;
}

/**
 * A pattern subscription on one node, over TLS when the cluster's inventory
 * says so. A subscriber only listens, so a link that died silently (a host
 * gone, a half-open connection) would look like a quiet source for hours of
 * OS keepalive: it PINGs, and a PING unanswered for `idleMs` drops the
 * connection and calls onLost (also called when the connection closes).
 */
export async function openSubscriber(o: {
  address: string;
  pool: ClusterPool;
  pattern: string;
  idleMs?: number;
  connectTimeoutMs?: number;
  onMessage(channel: Buffer, message: Buffer): void;
  onLost(): void;
}): Promise<Subscriber> {
  const { host, port } = parseAddress(o.address)!;
  const { username, password } = o.pool.credentials();
  const idleMs = o.idleMs ?? NET_LIMITS.subscriberIdleMs;
  const sub = new Redis({
    host,
    port,
    username,
    password,
    tls: o.pool.tlsOptions(),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    // commandTimeout bounds what the connect sends (AUTH, the ready check) and PSUBSCRIBE: a peer that
    // takes the connection and says nothing fails the subscription instead of holding it.
    connectTimeout: o.connectTimeoutMs ?? NET_LIMITS.connectTimeoutMs,
    commandTimeout: idleMs,
    enableReadyCheck: false,
  });
  sub.on('error', () => {});
  let lastAnswer = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  const close = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    sub.disconnect();
  };
  sub.on('close', () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (!done) {
      done = true;
      o.onLost();
    }
  });
  try {
    await sub.connect();
    sub.on('pmessageBuffer', (_p: Buffer, channel: Buffer, message: Buffer) => o.onMessage(channel, message));
    await sub.psubscribe(o.pattern);
  } catch (err) {
    done = true;
    close();
    throw err;
  }
  timer = setInterval(
    () => {
      if (Date.now() - lastAnswer > idleMs) {
        close();
        return;
      }
      sub.ping().then(
        () => {
          lastAnswer = Date.now();
        },
        () => undefined,
      );
    },
    Math.min(5000, Math.max(50, Math.floor(idleMs / 4))),
  );
  timer.unref();
  return {
    close: () => {
      done = true;
      close();
    },
  };
}

class ScanShard {
  phase: ShardStatus['phase'] = 'connecting';
  copied = 0;
  master: NodeClient | undefined;
  readonly pending = new Map<string, { key: Buffer; at: number }>();
  private sub: Subscriber | undefined;
  private window: Array<{ at: number; n: number }> = [];
  constructor(
    readonly index: number,
    readonly ranges: readonly SlotRange[],
    readonly state: ReturnType<typeof newShardState>,
  ) {}

  async subscribe(o: ScanOptions, onLost: () => void): Promise<void> {
    const sub = await openSubscriber({
      address: this.master!.address,
      pool: o.source,
      pattern: `${CHANNEL}*`,
      idleMs: o.subscriberIdleMs,
      onMessage: (channel) => {
        const key = channel.subarray(CHANNEL.length);
        const id = key.toString('latin1');
        if (!this.pending.has(id)) this.pending.set(id, { key: Buffer.from(key), at: Date.now() });
      },
      // Events missed while nobody listened cannot be known: the shard is copied again.
      onLost: () => {
        if (this.sub === sub) onLost();
      },
    });
    this.sub = sub;
  }

  unsubscribe(): void {
    const s = this.sub;
    this.sub = undefined;
    s?.close();
  }

  rate(now: number): number {
    this.window.push({ at: now, n: this.copied });
    while (this.window.length > 2 && now - this.window[0]!.at > 5000) this.window.shift();
    const a = this.window[0]!;
    const b = this.window[this.window.length - 1]!;
    return b.at > a.at ? Math.round(((b.n - a.n) * 1000) / (b.at - a.at)) : 0;
  }
}

/**
 * Scan mode: each source master's keys are copied with SCAN + DUMP +
 * RESTORE. With `notify`, keyspace notifications are subscribed to before
 * the copy, and every key they name is copied again after it (or deleted,
 * when it is gone), so writes during and after the copy arrive too. Pub/sub
 * loses what is sent while nobody listens: a dropped subscription, or a
 * resumed run, copies the shard again from scratch (its slots cleared
 * first), instead of trusting what the target holds.
 */
export class ScanSession implements SyncEngine {
  readonly engine = 'builtin (scan)';
  readonly incremental: boolean;
  private shards: ScanShard[] = [];
  private source!: Endpoint;
  private target!: Endpoint;
  private record!: ScanRecord;
  private stopped = false;
  private loops: Array<Promise<void>> = [];

  private constructor(private readonly o: ScanOptions) {
    this.incremental = o.notify;
  }

  static async start(o: ScanOptions): Promise<ScanSession> {
    const s = new ScanSession(o);
    await s.begin();
    return s;
  }

  private async begin(): Promise<void> {
    this.source = await openEndpoint(this.o.source);
    this.target = await openEndpoint(this.o.target);
    const record = unstopped(this.o.load());
    this.record = record ?? { shards: shardsOf(this.source) };
    if (this.o.notify) for (const m of this.source.masters) await this.ensureNotify(m);
    this.o.save(this.record);
    this.shards = this.record.shards.map((sh, i) => new ScanShard(i, parseRanges(sh.ranges), sh.state));
    this.loops = this.shards.map((s) => this.runShard(s));
  }

  /**
   * Keyspace events on a node about to be subscribed to: on every master at
   * the start, and on a promoted replica after a failover (it does not have
   * them). Its value is recorded before it is changed, so a crash leaves
   * what to restore.
   */
  private async ensureNotify(m: NodeClient): Promise<void> {
    const original = (this.record.notify ??= {});
    const now = String(((await m.call('CONFIG', 'GET', 'notify-keyspace-events')) as string[])[1] ?? '');
    if (original[m.address] === undefined) {
      original[m.address] = now;
      this.o.save(this.record);
      // In the journal too: an aborted run does not set it back, and `show` must say what it was.
      this.o.source.recordSummary(m.address, 'CONFIG-WAS', ['notify-keyspace-events', JSON.stringify(now)]);
      // And in the cleanup registry, which `abort` and the run's end walk to set it back.
      this.o.cleanup?.add(`notify:${m.address}`, {
        kind: 'config',
        cluster: this.o.source.config.name,
        address: m.address,
        parameter: 'notify-keyspace-events',
        value: now,
        what: 'keyspace events turned on for the scan sync',
      });
    }
    const want = withKeyspaceEvents(now);
    if (want !== now) await m.call('CONFIG', 'SET', 'notify-keyspace-events', want);
  }

  private async runShard(s: ScanShard): Promise<void> {
    let lost = true; // a shard starts as "must be copied" unless it finished before and nothing follows it
    if (s.state.loaded && !this.o.notify) {
      s.phase = 'stream';
      return;
    }
    while (!this.stopped) {
      try {
        if (lost) {
          lost = false;
          await this.copyShard(s, () => {
            lost = true;
          });
          if (!this.o.notify) return;
        }
        if (!(await this.copyNotified(s))) await new Promise((r) => setTimeout(r, 20));
      } catch (err) {
        if (this.stopped) return;
        s.state.lastError = (err as Error).message;
        this.o.log(`shard ${s.index}: ${(err as Error).message}; copying the shard again`);
        s.unsubscribe();
        lost = true;
        await new Promise((r) => setTimeout(r, 1000));
        this.source = await openEndpoint(this.o.source).catch(() => this.source);
      }
    }
  }

  /**
   * Copy a whole shard: subscribe first (with notifications), so that no change
   * made during the scan is missed, clear the target's copy of its slots, then
   * SCAN + DUMP. `onLost`: notifications were lost, the copy must be made again.
   */
  private async copyShard(s: ScanShard, onLost: () => void): Promise<void> {
    s.master = this.source.route(slotKey(s.ranges[0]![0]));
    s.phase = 'full';
    s.pending.clear();
    if (this.o.notify) {
      await this.ensureNotify(s.master);
      await s.subscribe(this.o, onLost);
    }
    s.state.fullSyncWhy = s.state.fullSyncs
      ? 'the earlier copy cannot be trusted (a resumed run, or lost notifications)'
      : 'first sync';
    s.state.fullSyncs++;
    s.state.loaded = false;
    this.o.save(this.record);
    const started = Date.now();
    const cleared = await clearSlots(this.target, s.ranges, this.stopSignal, (node, n) =>
      this.o.target.recordSummary(node, 'UNLINK', [
        `${n} keys in the slots of source shard ${s.index}, before its copy`,
      ]),
    );
    if (cleared) this.o.log(`shard ${s.index}: deleted ${cleared} keys the target held in these slots before the copy`);
    s.copied = 0;
    const r = await scanCopy({ masters: [s.master] }, this.target, {
      onProgress: (n) => {
        s.copied = n;
      },
      signal: this.stopSignal,
    });
    Object.assign(s.state, {
      loaded: true,
      keys: r.keys,
      rdbBytes: r.bytes,
      fullSyncMs: Date.now() - started,
      lastError: undefined,
    });
    this.o.target.recordSummary(this.target.name, 'RESTORE', [
      `${r.keys} keys of source shard ${s.index} (${formatRanges(s.ranges)}) copied by SCAN + DUMP`,
    ]);
    this.o.save(this.record);
    this.o.log(
      `shard ${s.index} (${formatRanges(s.ranges)}): copied ${r.keys} keys (${r.bytes} bytes) in ${r.ms} ms${this.o.notify ? '; following changes' : ''}`,
    );
    s.phase = 'stream';
  }

  /**
   * Keys named by notifications, copied after the scan (a copy never races an
   * older scan read); up to 500 at a time. False when none were waiting.
   */
  private async copyNotified(s: ScanShard): Promise<boolean> {
    const batch = [...s.pending.entries()].slice(0, 500);
    if (!batch.length) return false;
    for (const [id] of batch) s.pending.delete(id);
    const r = await copyKeys(
      s.master!,
      batch.map(([, v]) => v.key),
      this.target,
      { deleteMissing: true },
    );
    s.copied += r.copied + r.vanished;
    return true;
  }

  private readonly stopper = new AbortController();
  private get stopSignal(): AbortSignal {
    return this.stopper.signal;
  }

  status(): ShardStatus[] {
    const now = Date.now();
    return this.shards.map((s) => {
      const oldest = s.pending.size ? Math.min(...[...s.pending.values()].slice(0, 1000).map((p) => p.at)) : undefined;
      return {
        shard: s.index,
        ranges: formatRanges(s.ranges),
        master: s.master?.address,
        phase: s.phase,
        rdbReceived: 0,
        rdbSize: undefined,
        keys: s.phase === 'full' ? s.copied : s.state.keys,
        applied: undefined,
        sourceOffset: undefined,
        lagBytes: undefined,
        lagMs: this.o.notify && s.phase === 'stream' ? (oldest === undefined ? 0 : now - oldest) : undefined,
        opsPerSec: s.rate(now),
        lastError: s.state.lastError,
        pendingKeys: this.o.notify && s.phase === 'stream' ? s.pending.size : undefined,
      };
    });
  }

  async refresh(): Promise<void> {}

  lagWithin(): boolean {
    return this.status().every((s) => s.phase === 'stream' && (s.lagMs ?? 0) <= 1000);
  }

  async catchUp(o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<boolean> {
    // Notifications of writes made just before this call may still be on their way.
    await new Promise((r) => setTimeout(r, 200));
    const deadline = Date.now() + o.timeoutMs;
    let clear = 0;
    while (Date.now() < deadline && !o.signal?.aborted) {
      const st = this.status();
      o.onProgress?.(st.map(describeShard).join(' | '));
      clear = st.every((s) => s.phase === 'stream' && !s.pendingKeys) ? clear + 1 : 0;
      if (clear >= 3) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  async stop(): Promise<void> {
    await this.halt();
    for (const [address, value] of Object.entries(this.record.notify ?? {})) {
      await this.o.source.node(address).call('CONFIG', 'SET', 'notify-keyspace-events', value);
      this.o.cleanup?.done(`notify:${address}`);
    }
    this.record.stopped = { at: Date.now(), applied: this.shards.map(() => undefined) };
    this.o.save(this.record);
  }

  async detach(): Promise<void> {
    await this.halt();
  }

  private async halt(): Promise<void> {
    this.stopped = true;
    this.stopper.abort();
    for (const s of this.shards) {
      s.unsubscribe();
      s.phase = 'stopped';
    }
    await Promise.allSettled(this.loops);
    this.o.onEnd?.();
  }
}
