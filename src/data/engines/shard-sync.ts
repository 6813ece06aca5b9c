import { setTimeout as sleep } from 'node:timers/promises';
import type { Endpoint } from '../endpoint.js';
import type { NodeClient } from '../../redis/connect.js';
import { parseAddress } from '../../inventory/load.js';
import type { TlsConfig } from '../../inventory/types.js';
import type { RespPipe } from '../protocol/resp-pipe.js';
import type { SlotRange } from '../../redis/slots.js';
import { formatRanges } from '../../redis/slots.js';
import { ReplicaLink } from '../readers/replica-link.js';
import { RdbParser, type BigPiece, type RawEntry } from '../protocol/rdb.js';
import { RdbLoader } from '../writer/full-load.js';
import { StreamApplier, type ApplierOptions } from '../writer/stream-apply.js';
import { checkpointKey, formatCheckpoint, parseCheckpoint } from '../writer/checkpoint.js';
import { clearSlots } from '../writer/clear-slots.js';

/**
 * RDB chunks (a socket read each, up to 64 KB) queued for the loader before the link is paused,
 * and the count it must fall under to resume. Chunks that wait are memory only: 64 of them on
 * each of three shards held up to 12 MB of the runner's peak RSS, for no speed (measured on a
 * 1M-key 3 -> 5 sync: the same wall time with 8; the kernel's socket buffer keeps the stream
 * flowing while the link is paused).
 */
const CHUNKS_PAUSE = 8;
const CHUNKS_RESUME = 2;

/** What is recorded (in SQLite, by the session) about one source shard's sync. */
export interface ShardState {
  /** Replication id of the source shard's history, and the offset every target master holds. */
  replid?: string;
  applied?: number;
  /** Set once a full sync has been loaded completely: from then on a resume can continue. */
  loaded: boolean;
  fullSyncs: number;
  partialSyncs: number;
  /** The last full sync: keys written, RDB bytes, duration. */
  keys: number;
  rdbBytes: number;
  fullSyncMs?: number;
  /** Why the last full sync happened (first sync, or why a continuation was not possible). */
  fullSyncWhy?: string;
  lastError?: string;
  /** Replicated commands the target refused: the target differs from the source (kept until the run ends). */
  failures?: string[];
}

export const newShardState = (): ShardState => ({ loaded: false, fullSyncs: 0, partialSyncs: 0, keys: 0, rdbBytes: 0 });

export interface ShardStatus {
  shard: number;
  ranges: string;
  master: string | undefined;
  phase: 'connecting' | 'full' | 'stream' | 'stopped';
  rdbReceived: number;
  rdbSize: number | undefined;
  keys: number;
  applied: number | undefined;
  sourceOffset: number | undefined;
  lagBytes: number | undefined;
  lagMs: number | undefined;
  opsPerSec: number;
  lastError: string | undefined;
  /** Scan mode following keyspace notifications: keys changed and not copied yet. */
  pendingKeys?: number;
  /** Replicated commands the target refused (the target differs from the source). */
  failures?: number;
}

export interface ShardSyncOptions {
  index: number;
  ranges: readonly SlotRange[];
  /** The target as it is now (opened again for each connection: it may have failed over or moved slots). */
  target(): Promise<Endpoint>;
  syncId: string;
  credentials: { username?: string; password?: string };
  /** The source cluster's TLS settings, for the replication link. */
  tls?: TlsConfig;
  tlsWhere?: string;
  /** The address of the shard's master now (it may have failed over), checked to answer as a master. */
  locateMaster(): Promise<string>;
  /** The master's replication offset (INFO replication), for the lag. */
  sourceOffset(address: string): Promise<number>;
  state: ShardState;
  persist(state: ShardState): void;
  log(line: string): void;
  payloadVersion(rdbVersion: number): number | undefined;
  bigKeyBytes: number;
  /** One journal entry summing up bulk writes (they are not journaled one by one). */
  journal?(target: string, command: string, args: string[]): void;
  /** Bare pipelined connections to the target masters for the full sync's RESTOREs. */
  pipe?: (node: NodeClient) => Promise<RespPipe>;
  /**
   * Called after each RDB chunk loaded while the full sync has not finished
   * (keys written, checkpoints not yet): the wait step's crash failpoint.
   */
  onLoading?(): void;
}

/** Where a continuation can start (from the target's checkpoints), or why it cannot. */
type ResumePoint = { replid: string; offset: number; skip: Map<string, number> } | { why: string };

/** One connection to the source master: what its link's handlers, its full-sync worker and its stream loop share. */
interface Connection {
  target: Endpoint;
  address: string;
  resume: ResumePoint;
  link: ReplicaLink;
  /** The applier of this connection only: a link that outlives its session must never feed the next one's. */
  applier?: StreamApplier;
  /** What ended the connection (its first error). */
  failure?: Error;
  /** RDB chunks received and not loaded yet, and whether the RDB has ended. */
  chunks: Buffer[];
  rdbEnded: boolean;
  /** The full sync's worker, once one started. */
  full?: Promise<void>;
}

/**
 * The sync of one source shard into the target, run in the background:
 * connect as a replica of the shard's master, load a full sync (its slots in
 * the target cleared first) or continue from the checkpoints, apply the
 * stream, and reconnect (to whichever node is master now) when the link
 * drops, continuing by partial resync when the source still has the stream.
 */
export class ShardSync {
  phase: ShardStatus['phase'] = 'connecting';
  master: string | undefined;
  private link: ReplicaLink | undefined;
  private applier: StreamApplier | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private srcOffset: number | undefined;
  private samples: Array<{ at: number; offset: number }> = [];
  private opsWindow: Array<{ at: number; commands: number }> = [];
  private loadedKeys = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: ShardSyncOptions) {}

  get state(): ShardState {
    return this.o.state;
  }

  /** Wake whatever waits for data (the full-sync worker, the stream loop). */
  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.link?.close();
    this.notify();
    await this.loop;
    this.phase = 'stopped';
    this.o.persist(this.o.state);
  }

  status(): ShardStatus {
    const applied = this.applier?.applied ?? this.o.state.applied;
    const now = Date.now();
    const first = this.opsWindow[0];
    const last = this.opsWindow[this.opsWindow.length - 1];
    const behind = applied === undefined ? undefined : this.samples.find((s) => s.offset > applied);
    return {
      shard: this.o.index,
      ranges: formatRanges(this.o.ranges),
      master: this.master,
      phase: this.phase,
      rdbReceived: this.link?.rdbReceived ?? 0,
      rdbSize: this.link?.rdbSize,
      keys: this.phase === 'full' ? this.loadedKeys : this.o.state.keys,
      applied,
      sourceOffset: this.srcOffset,
      lagBytes:
        this.srcOffset !== undefined && applied !== undefined ? Math.max(0, this.srcOffset - applied) : undefined,
      lagMs: this.phase !== 'stream' ? undefined : behind ? now - behind.at : 0,
      opsPerSec:
        first && last && last.at > first.at
          ? Math.round(((last.commands - first.commands) * 1000) / (last.at - first.at))
          : 0,
      lastError: this.o.state.failures?.length
        ? `the target refused ${this.o.state.failures.length} replicated command(s): ${this.o.state.failures[0]}`
        : this.o.state.lastError,
      failures: this.o.state.failures?.length ?? 0,
    };
  }

  /** Ask the master where its stream is now and wait for it to be applied (the lag reaching 0). */
  async refreshSourceOffset(): Promise<void> {
    if (!this.master) return;
    const offset = await this.o.sourceOffset(this.master);
    this.srcOffset = offset;
    const now = Date.now();
    if (!this.samples.length || this.samples[this.samples.length - 1]!.offset !== offset)
      this.samples.push({ at: now, offset });
    const applied = this.applier?.applied ?? 0;
    while (this.samples.length > 1 && this.samples[0]!.offset <= applied && this.samples[1]!.offset <= applied)
      this.samples.shift();
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        await this.session();
        backoff = 500;
      } catch (err) {
        if (this.stopped) break;
        this.o.state.lastError = (err as Error).message;
        this.o.log(`shard ${this.o.index} (${formatRanges(this.o.ranges)}): ${(err as Error).message}; reconnecting`);
        this.o.persist(this.o.state);
      }
      if (this.stopped) break;
      this.phase = 'connecting';
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  /** Where a continuation can start, read from the target's checkpoints; or why it cannot. */
  private async resumePoint(target: Endpoint): Promise<ResumePoint> {
    const s = this.o.state;
    if (!s.loaded || !s.replid)
      return { why: s.fullSyncs ? 'the last full sync did not finish loading' : 'first sync' };
    const cks = await Promise.all(
      target.masters.map(
        async (m) =>
          [
            m.address,
            parseCheckpoint(await m.call('GET', checkpointKey(target, m, this.o.syncId, this.o.index))),
          ] as const,
      ),
    );
    const missing = cks.filter(([, c]) => !c).map(([a]) => a);
    if (missing.length)
      return {
        why: `the target lost its checkpoint on ${missing.join(', ')} (restarted without persistence, or failed over)`,
      };
    const skip = new Map(cks.map(([a, c]) => [a, c!.offset]));
    return { replid: s.replid, offset: Math.min(...skip.values()), skip };
  }

  /** One connection to the source master, from locating it to the link's end; throws what ended it (unless stopped). */
  private async session(): Promise<void> {
    const target = await this.o.target();
    const address = await this.o.locateMaster();
    if (this.master && this.master !== address)
      this.o.log(`shard ${this.o.index}: the source master is now ${address} (was ${this.master}): continuing from it`);
    this.master = address;
    const resume = await this.resumePoint(target);
    if (this.stopped) return;
    const c = this.connection(target, address, resume);
    const link = c.link;
    const closed = this.whenClosed(c);
    this.handleFullSync(c);
    this.handleStream(c);

    try {
      await link.start();
      await this.stream(
        link,
        () => c.applier,
        () => c.failure,
      );
    } finally {
      // Whatever happened, this connection ends here: nothing of it may run on into the next one.
      link.close();
      await closed;
      await c.full?.catch(() => undefined);
    }
    if (c.failure && !this.stopped) throw c.failure;
  }

  /** A new connection's state and its link (not started yet), which becomes the current one. */
  private connection(target: Endpoint, address: string, resume: ResumePoint): Connection {
    const { host, port } = parseAddress(address)!;
    const c: Connection = {
      target,
      address,
      resume,
      link: new ReplicaLink({
        host,
        port,
        ...this.o.credentials,
        tls: this.o.tls,
        tlsWhere: this.o.tlsWhere,
        resume: 'replid' in resume ? { replid: resume.replid, offset: resume.offset } : undefined,
        // Called only once the link runs, when `c` exists.
        ackOffset: () => c.applier?.applied ?? 0,
      }),
      chunks: [],
      rdbEnded: false,
    };
    this.link = c.link;
    return c;
  }

  /** Settles when the link closes; the link's first error (or its closing) becomes the connection's failure. */
  private whenClosed(c: Connection): Promise<void> {
    return new Promise<void>((resolve) => {
      c.link.on('error', (err: Error) => {
        c.failure ??= err;
      });
      c.link.on('close', () => {
        c.failure ??= new Error(`the link to ${c.address} closed`);
        resolve();
        this.notify();
      });
    });
  }

  /** The checkpoint key of this shard on a target master. */
  private checkpointKeyOn(target: Endpoint, n: Parameters<typeof checkpointKey>[1]): string {
    return checkpointKey(target, n, this.o.syncId, this.o.index);
  }

  /** What a StreamApplier of this shard needs, besides where it starts. */
  private applierOptions(target: Endpoint): ApplierOptions {
    return {
      checkpointKey: (n) => this.checkpointKeyOn(target, n),
      replid: () => this.o.state.replid!,
      clearShard: () => this.clearShard(target),
    };
  }

  /** FLUSHALL/FLUSHDB on the source: delete the target's keys in this shard's slots. */
  private async clearShard(target: Endpoint): Promise<void> {
    const n = await clearSlots(target, this.o.ranges, undefined, (node, k) =>
      this.o.journal?.(node, 'UNLINK', [
        `${k} keys in the slots of source shard ${this.o.index}: the source flushed (FLUSHALL/FLUSHDB)`,
      ]),
    );
    this.o.log(`shard ${this.o.index}: the source flushed its data: ${n} keys deleted in its slots on the target`);
  }

  /** The link's full sync events: the worker started, and the RDB's chunks queued for it. */
  private handleFullSync(c: Connection): void {
    const link = c.link;
    link.on('fullsync', ({ replid: r, offset }: { replid: string; offset: number }) => {
      this.phase = 'full';
      c.applier = new StreamApplier(c.target, this.applierOptions(c.target), offset);
      this.applier = c.applier;
      c.full = this.fullSync(c, r, offset);
      c.full.catch((err: Error) => {
        c.failure ??= err;
        link.close();
      });
    });
    link.on('rdb-data', (chunk: Buffer) => {
      c.chunks.push(chunk);
      if (c.chunks.length >= CHUNKS_PAUSE) link.pause();
      this.notify();
    });
    link.on('rdb-end', () => {
      c.rdbEnded = true;
      this.notify();
    });
  }

  /** The link's stream events: a partial resync accepted, and each replicated command. */
  private handleStream(c: Connection): void {
    const link = c.link;
    link.on('continue', ({ replid: r }: { replid: string }) => this.continued(c, r));
    link.on('command', (args: Buffer[], offset: number) => {
      const applier = c.applier;
      if (!applier || c.failure) return;
      try {
        applier.add(args, offset);
      } catch (err) {
        c.failure ??= err as Error;
        link.close();
      }
      // Never inside a MULTI block: the flush waits for its EXEC, which a paused link would never read.
      if (applier.queued > 50000 && !applier.inBlock) link.pause();
      this.notify();
    });
  }

  /** The source continued from the checkpoints (partial resync): the stream goes on from there. */
  private continued(c: Connection, r: string): void {
    const s = this.o.state;
    const resume = c.resume;
    const from = 'replid' in resume ? resume.offset : 0;
    if (r !== s.replid)
      this.o.log(
        `shard ${this.o.index}: the source's replication id is now ${r} (a failover): continued from offset ${from}`,
      );
    s.replid = r;
    s.partialSyncs++;
    s.lastError = undefined; // failures stay: the target still differs
    this.o.persist(s);
    this.o.log(
      `shard ${this.o.index} (${formatRanges(this.o.ranges)}): continued from ${c.address} at offset ${from} (partial resync, no full sync)`,
    );
    c.applier = new StreamApplier(
      c.target,
      { ...this.applierOptions(c.target), skip: 'skip' in resume ? resume.skip : undefined },
      from,
    );
    this.applier = c.applier;
    this.phase = 'stream';
  }

  /** A full sync: the shard's slots cleared in the target, the RDB loaded as it arrives, the checkpoints set. */
  private async fullSync(c: Connection, rdbReplid: string, rdbOffset: number): Promise<void> {
    const started = Date.now();
    await this.beginFullSync(c, rdbReplid);
    const { parser, loader } = await this.loadRdb(c);
    await this.loadFunctions(c.target, parser);
    await this.writeFullSyncCheckpoints(c.target, rdbReplid, rdbOffset);
    this.recordFullSync(c, loader, rdbOffset, started);
  }

  /** Record why and from where a full sync starts (not loaded yet), and clear the target's keys in its slots. */
  private async beginFullSync(c: Connection, rdbReplid: string): Promise<void> {
    const s = this.o.state;
    s.fullSyncWhy =
      'why' in c.resume
        ? c.resume.why
        : 'the source refused to continue from the checkpoint (its backlog no longer holds it, or its history changed)';
    s.loaded = false;
    s.replid = rdbReplid;
    s.fullSyncs++;
    this.o.persist(s);
    this.o.log(
      `shard ${this.o.index} (${formatRanges(this.o.ranges)}): full sync from ${c.address} (${s.fullSyncWhy})`,
    );
    const cleared = await clearSlots(c.target, this.o.ranges, undefined, (node, n) =>
      this.o.journal?.(node, 'UNLINK', [
        `${n} keys in the slots of source shard ${this.o.index} (${formatRanges(this.o.ranges)}), before its full sync`,
      ]),
    );
    if (cleared)
      this.o.log(`shard ${this.o.index}: deleted ${cleared} keys the target held in these slots before the full sync`);
  }

  /** Parse the RDB's chunks as they arrive and load them into the target, to the end of the RDB. */
  private async loadRdb(c: Connection): Promise<{ parser: RdbParser; loader: RdbLoader }> {
    // Full sync: chunks are parsed and loaded in order by one worker; the link is paused while the target is behind.
    // Values of bigKeyBytes or more that are still arriving are read and written in pieces, never held whole.
    const parser = new RdbParser({ raw: true, bigBytes: this.o.bigKeyBytes });
    // Made at the first entry: by then the RDB's header gave its version, which decides RESTORE or type commands.
    const newLoader = () =>
      new RdbLoader(c.target, {
        payloadVersion: this.o.payloadVersion(parser.version),
        bigKeyBytes: this.o.bigKeyBytes,
        pipe: this.o.pipe,
      });
    let loader: RdbLoader | undefined;
    this.loadedKeys = 0;
    // One entry (or piece) at a time, each loaded before the next is decoded: see RdbParser.feed.
    const load = async (entries: Generator<RawEntry | BigPiece>) => {
      for (const e of entries) {
        // A large chunk is many entries: a stop or a dead link is seen between two, not after all.
        if (this.stopped || c.failure) throw c.failure ?? new Error('stopped');
        const l = (loader ??= newLoader());
        l.add(e);
        if (!l.ready) {
          this.loadedKeys = l.keys;
          while (!l.ready) await l.drained();
        }
      }
      if (loader) this.loadedKeys = loader.keys;
    };
    for (;;) {
      if (this.stopped || c.failure) throw c.failure ?? new Error('stopped');
      const chunk = c.chunks.shift();
      if (!chunk) {
        if (c.rdbEnded) break;
        c.link.resume();
        await this.nap(1000);
        continue;
      }
      await load(parser.feed(chunk) as Generator<RawEntry | BigPiece>);
      if (loader?.keys) this.o.onLoading?.();
      if (c.chunks.length < CHUNKS_RESUME) c.link.resume();
    }
    await load(parser.rest() as Generator<RawEntry | BigPiece>);
    loader ??= newLoader();
    await loader.finish();
    return { parser, loader };
  }

  /** Function libraries travel in the RDB too (Redis 7): every master gets them. */
  private async loadFunctions(target: Endpoint, parser: RdbParser): Promise<void> {
    for (const [k, code] of Object.entries(parser.aux)) {
      if (!k.startsWith('function:')) continue;
      const res = await Promise.all(target.masters.map((m) => m.pipeline([['FUNCTION', 'LOAD', 'REPLACE', code]])));
      const bad = res.find((r) => r[0]?.[0]);
      if (bad) throw new Error(`loading a function library from the RDB into the target: ${bad[0]![0]!.message}`);
    }
  }

  /** Every master holds this shard's stream up to the RDB's offset. */
  private async writeFullSyncCheckpoints(target: Endpoint, rdbReplid: string, rdbOffset: number): Promise<void> {
    const cks = await Promise.all(
      target.masters.map((m) =>
        m.pipeline([
          ['SET', this.checkpointKeyOn(target, m), formatCheckpoint({ replid: rdbReplid, offset: rdbOffset })],
        ]),
      ),
    );
    const bad = cks.find((r) => r[0]?.[0]);
    if (bad) throw new Error(`writing the checkpoint after the full sync: ${bad[0]![0]!.message}`);
  }

  /** The full sync is loaded: record it (from now on a resume can continue), and go on to the stream. */
  private recordFullSync(c: Connection, loader: RdbLoader, rdbOffset: number, started: number): void {
    const s = this.o.state;
    s.loaded = true;
    s.applied = rdbOffset;
    s.keys = loader.keys;
    s.rdbBytes = c.link.rdbReceived;
    s.fullSyncMs = Date.now() - started;
    s.lastError = undefined;
    this.o.persist(s);
    this.o.journal?.(c.target.name, 'RESTORE', [
      `${loader.keys} keys of source shard ${this.o.index} (${formatRanges(this.o.ranges)}) from ${c.address}'s RDB at offset ${rdbOffset}`,
      `${loader.rebuilt} rebuilt with type commands`,
    ]);
    this.o.log(
      `shard ${this.o.index}: full sync loaded: ${s.keys} keys, ${s.rdbBytes} bytes in ${s.fullSyncMs} ms${loader.rebuilt ? ` (${loader.rebuilt} rebuilt with type commands)` : ''}; applying the stream`,
    );
    this.phase = 'stream';
  }

  /** The stream: flush what arrived, move checkpoints on, keep the lag figures fresh. */
  private async stream(
    link: ReplicaLink,
    applierOf: () => StreamApplier | undefined,
    failureOf: () => Error | undefined,
  ): Promise<void> {
    let lastPersist = 0;
    let lastOffsetPoll = 0;
    const record = (a: StreamApplier) => {
      this.o.state.applied = a.applied;
      if (a.failures.length) this.o.state.failures = [...a.failures];
      this.o.persist(this.o.state);
    };
    while (!this.stopped && !failureOf()) {
      const now = Date.now();
      if (now - lastOffsetPoll >= 1000) {
        lastOffsetPoll = now;
        await this.refreshSourceOffset().catch(() => undefined);
      }
      const applier = applierOf();
      if (this.phase === 'stream' && applier) {
        const before = applier.applied;
        try {
          await applier.flush(now);
        } finally {
          if (applier.failures.length) record(applier);
        }
        if (applier.queued < 5000) link.resume();
        this.opsWindow.push({ at: now, commands: applier.commands });
        while (this.opsWindow.length > 2 && now - this.opsWindow[0]!.at > 5000) this.opsWindow.shift();
        if (now - lastPersist >= 1000) {
          lastPersist = now;
          record(applier);
        }
        // More to send, and the last flush got somewhere: go on at once; otherwise wait for data.
        if (applier.queued > 0 && applier.applied > before) continue;
      }
      await this.nap(100);
    }
    // Whatever arrived before the link dropped is applied, so a continuation starts from it.
    const applier = applierOf();
    const failure = failureOf();
    if (this.phase === 'stream' && applier && !(failure && /failed on|applying the stream/.test(failure.message))) {
      await applier.flush().catch(() => undefined);
      record(applier);
    }
  }
}
