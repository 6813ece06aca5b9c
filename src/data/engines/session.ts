import type { ClusterPool } from '../../redis/connect.js';
import { openEndpoint, type Endpoint } from '../endpoint.js';
import { parseInfo } from '../../redis/cluster-nodes.js';
import { parseRanges, formatRanges, toRanges, slotKey, type SlotRange } from '../../redis/slots.js';
import { ShardSync, newShardState, type ShardState, type ShardStatus } from './shard-sync.js';
import { checkpointKey } from '../writer/checkpoint.js';
import { payloadVersion } from '../protocol/crc64.js';
import { RespPipe } from '../protocol/resp-pipe.js';
import { describeShard, type SyncEngine } from './engine.js';

/** What a sync records about itself (in SQLite, through the run's state): enough to resume. */
export interface SyncRecord {
  shards: Array<{ ranges: string; state: ShardState }>;
  stopped?: { at: number; applied: Array<number | undefined> };
}

export interface SessionOptions {
  /** Called once the sync ends here (stopped or detached), so its owner lets go of it. */
  onEnd?(): void;
  /** Names the sync (its checkpoint keys); the run id. */
  id: string;
  source: ClusterPool;
  target: ClusterPool;
  load(): SyncRecord | undefined;
  save(record: SyncRecord): void;
  log(line: string): void;
  /** RESTORE payloads when the target's RDB version allows (false: always rebuild with type commands). */
  restorePayloads: boolean;
  bigKeyBytes: number;
  /** Called after each RDB chunk a shard loads, while its full sync has not finished (see ShardSyncOptions). */
  onLoading?(): void;
}

/**
 * The built-in sync of a whole source (each master's shard) into a target
 * cluster, running in the background of the runbook process. The run that
 * starts it keeps it (its steps - start, wait, cut-over - share one); a
 * resumed run opens it again from its record and each shard continues from
 * the target's checkpoints.
 */
export class SyncSession implements SyncEngine {
  readonly engine = 'builtin (psync)';
  readonly incremental = true;
  shards: ShardSync[] = [];
  source!: Endpoint;
  target!: Endpoint;
  private record!: SyncRecord;
  private readonly pipes = new Map<string, Promise<RespPipe>>();

  private constructor(private readonly o: SessionOptions) {}

  /** The running session of this id, or a new one started from its record (a resume) or from the live source. */
  static async start(o: SessionOptions): Promise<SyncSession> {
    const s = new SyncSession(o);
    await s.begin();
    return s;
  }

  private async begin(): Promise<void> {
    this.source = await openEndpoint(this.o.source);
    this.target = await openEndpoint(this.o.target);
    if (this.target.kind !== 'cluster') throw new Error(`the target ${this.target.name} is not a cluster`);
    const record = unstopped(this.o.load());
    this.record = record ?? { shards: shardsOf(this.source) };
    this.o.save(this.record);
    const targetVersion = this.o.restorePayloads ? await probeRdbVersion(this.target) : undefined;
    const credentials = this.o.source.credentials();
    this.shards = this.record.shards.map((sh, index) => {
      const ranges = parseRanges(sh.ranges);
      return new ShardSync({
        index,
        ranges,
        target: () => this.freshTarget(),
        syncId: this.o.id,
        credentials,
        tls: this.o.source.config.tls,
        tlsWhere: `clusters.${this.o.source.config.name}.tls`,
        locateMaster: () => this.locate(ranges),
        // Polled every second: a pipeline, so the journal is not filled with INFO reads.
        sourceOffset: async (address) => {
          const [err, info] = (await this.o.source.node(address).pipeline([['INFO', 'replication']]))[0]!;
          if (err) throw err;
          return Number(parseInfo(String(info)).master_repl_offset ?? 0);
        },
        journal: (target, command, args) => this.o.target.recordSummary(target, command, args),
        state: sh.state,
        persist: () => this.o.save(this.record),
        log: this.o.log,
        payloadVersion: (v) => (targetVersion !== undefined && targetVersion >= v ? v : undefined),
        bigKeyBytes: this.o.bigKeyBytes,
        pipe: (node) => this.pipe(node.address),
        onLoading: this.o.onLoading,
      });
    });
    for (const s of this.shards) s.start();
  }

  private async pipe(address: string): Promise<RespPipe> {
    let p = this.pipes.get(address);
    // A pipe the target closed (timeout, restart) is opened again, not reused.
    if (
      p &&
      !(await p.then(
        (x) => x.alive,
        () => false,
      ))
    ) {
      this.pipes.delete(address);
      p = undefined;
    }
    if (!p) {
      // Over TLS exactly when the target's inventory entry says so, like every other connection.
      p = RespPipe.open(address, this.o.target.credentials(), {
        tls: this.o.target.config.tls,
        tlsWhere: `clusters.${this.o.target.config.name}.tls`,
      });
      p.catch(() => this.pipes.delete(address));
      this.pipes.set(address, p);
    }
    return p;
  }

  private closePipes(): void {
    for (const p of this.pipes.values())
      void p.then(
        (x) => x.close(),
        () => undefined,
      );
    this.pipes.clear();
  }

  /**
   * The shard's master now: the source is read again, so a failover is
   * followed; and the node must say it is a master (a seed with an old view
   * could name the demoted one, and a replica would serve PSYNC too).
   */
  private async locate(ranges: readonly SlotRange[]): Promise<string> {
    const ep = await openEndpoint(this.o.source);
    const node = ep.route(slotKey(ranges[0]![0]));
    const [err, info] = (await node.pipeline([['INFO', 'replication']]))[0]!;
    if (err) throw err;
    const role = parseInfo(String(info)).role;
    if (role !== 'master')
      throw new Error(
        `${node.address} owns slot ${ranges[0]![0]} in the cluster's view but answers as ${role}: waiting for the view to settle`,
      );
    return node.address;
  }

  /** The target, read again (a reconnect after a target failover or a slot move must not write by an old map). */
  private async freshTarget(): Promise<Endpoint> {
    try {
      this.target = await openEndpoint(this.o.target);
    } catch (err) {
      if (!this.target) throw err;
    }
    return this.target;
  }

  status(): ShardStatus[] {
    return this.shards.map((s) => s.status());
  }

  /** Read every master's offset now (for a lag figure that is not up to a second old). */
  async refresh(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.refreshSourceOffset().catch(() => undefined)));
  }

  lagWithin(maxLag: number): boolean {
    return this.status().every((s) => s.phase === 'stream' && s.lagBytes !== undefined && s.lagBytes <= maxLag);
  }

  async catchUp(o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<boolean> {
    await this.refresh();
    const want = this.status().map((s) => s.sourceOffset);
    const deadline = Date.now() + o.timeoutMs;
    while (Date.now() < deadline && !o.signal?.aborted) {
      const st = this.status();
      // A shard whose link is not up yet (a run resumed right at cut-over) has no source
      // offset to aim at: the first one read is the aim, later than the start, never earlier.
      st.forEach((s, i) => {
        if (want[i] === undefined) want[i] = s.sourceOffset;
      });
      o.onProgress?.(st.map(describeShard).join(' | '));
      if (
        st.every(
          (s, i) => s.phase === 'stream' && s.applied !== undefined && want[i] !== undefined && s.applied >= want[i]!,
        )
      )
        return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** Stop every shard, delete the checkpoint keys from the target, and record the stop. */
  async stop(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.stop()));
    this.closePipes();
    await Promise.all(
      this.target.masters.map((m) =>
        m.call('DEL', ...this.shards.map((_, i) => checkpointKey(this.target, m, this.o.id, i))),
      ),
    );
    this.record.stopped = { at: Date.now(), applied: this.shards.map((s) => s.state.applied) };
    this.o.save(this.record);
    this.o.onEnd?.();
  }

  /** Stop the links without touching the target (the process is going away; a resume continues). */
  async detach(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.stop()));
    this.closePipes();
    this.o.onEnd?.();
  }
}

/** The target's RDB version, read from the footer of a DUMP of a probe key it holds for an instant. */
export async function probeRdbVersion(target: Endpoint): Promise<number> {
  const key = 'redis-runbook:sync:probe';
  const probe = Buffer.from(`${key}{${slotKey(0).toString()}}`);
  const owner = target.route(probe);
  const replies = await owner.pipeline([
    ['SET', probe, 'x'],
    ['DUMP', probe],
    ['DEL', probe],
  ]);
  const [err, dump] = replies[1]!;
  if (err || !Buffer.isBuffer(dump))
    throw new Error(`reading the target's RDB version (DUMP on ${owner.address}): ${err?.message ?? 'no payload'}`);
  return payloadVersion(dump);
}

/** A sync's record, to start from; a sync stopped at cut-over never starts again. */
export function unstopped<R extends SyncRecord>(record: R | undefined): R | undefined {
  if (record?.stopped) throw new Error('this sync was stopped at cut-over; it does not start again');
  return record;
}

/** One shard per source master (the slots it owns); a standalone source is one shard of every slot. */
export function shardsOf(source: Endpoint): SyncRecord['shards'] {
  if (source.kind === 'standalone') return [{ ranges: '0-16383', state: newShardState() }];
  const bySource = new Map<string, number[]>();
  for (let slot = 0; slot < 16384; slot++) {
    const m = source.route(slotKey(slot)).address;
    const list = bySource.get(m) ?? [];
    list.push(slot);
    bySource.set(m, list);
  }
  return [...bySource.values()].map((slots) => ({ ranges: formatRanges(toRanges(slots)), state: newShardState() }));
}
