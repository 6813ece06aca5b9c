import { randomBytes } from 'node:crypto';
import { ClusterPool } from './connect.js';
import { keySlot, type SlotRange } from './slots.js';
import { messageOf } from '../errors.js';

/** What the canary saw: the numbers the drill report is made of. */
export interface CanaryReport {
  slot: number;
  keyPrefix: string;
  intervalMs: number;
  /** Writes sent and acknowledged (+OK), and writes that got an error or no reply. */
  acked: number;
  failed: number;
  /** First failed write (when it was sent) to the first acknowledged write after it (when its +OK came). */
  firstFailAt: number | null;
  firstOkAfterFailAt: number | null;
  windowMs: number | null;
  /** Acknowledged writes whose value could not be read back afterwards. */
  lost: number;
  lostSeqs: number[];
  /**
   * When the last canary write sent before the stop and read back afterwards
   * was sent (ms since epoch), or null if none was. The replica promoted holds
   * a prefix of the old master's stream, so every write that master
   * acknowledged (to any client, on any of its slots) before this moment is
   * kept: only writes acknowledged between it and the stop can be lost. The
   * canary's own `lost` is a sample of those, one key per interval.
   */
  keptBefore: number | null;
  /** Errors seen, by kind (first word), e.g. { ECONNREFUSED: 31, CLUSTERDOWN: 12 }. */
  errors: Record<string, number>;
  /** Where the writes were acknowledged last: the owner the canary ended on. */
  owner: string;
}

/** A hash tag whose slot is in `ranges`: canary keys then land in the failing master's slots. */
export function tagInRanges(ranges: readonly SlotRange[]): { tag: string; slot: number } {
  for (let i = 0; i < 1_000_000; i++) {
    const tag = `rrb-canary-${i}`;
    const slot = keySlot(tag);
    if (ranges.some(([a, b]) => a <= slot && slot <= b)) return { tag, slot };
  }
  throw new Error('no hash tag found for the given slots');
}

const MOVED = /^MOVED \d+ (\S+)/;

function errorKind(msg: string): string {
  if (/ECONNREFUSED/.test(msg)) return 'ECONNREFUSED';
  if (/unreachable|Connection is closed|ECONNRESET|EPIPE/i.test(msg)) return 'CONNECTION';
  if (/timed? ?out/i.test(msg)) return 'TIMEOUT';
  return msg.split(/[\s:]/)[0] || 'ERROR';
}

/**
 * Acknowledged writes to one slot of a failing shard, one at a time, every
 * `intervalMs`. It routes like a cluster client: to the slot's owner, follows
 * MOVED, and after an error asks the next node. Each write has a short
 * timeout so that a dead master costs milliseconds, not a default 30 s.
 * Keys carry a TTL of one hour, so a canary that never cleans up leaves
 * nothing behind for long.
 */
export class Canary {
  private readonly pool: ClusterPool;
  private readonly prefix: string;
  readonly slot: number;
  private owner: string;
  private next = 0;
  private seq = 0;
  private readonly ackedSeqs: number[] = [];
  /** When each acknowledged write was sent, in the order of ackedSeqs. */
  private readonly ackedSentAt: number[] = [];
  private failed = 0;
  private firstFailAt: number | null = null;
  private firstOkAfterFailAt: number | null = null;
  private readonly errors: Record<string, number> = {};
  private running: Promise<void> | undefined;
  private stopping = false;
  private lastOk = 0;
  private okStreak = 0;
  private stopAt: number | null = null;
  private readonly stoppedNode: string;

  constructor(
    parent: ClusterPool,
    ranges: readonly SlotRange[],
    initialOwner: string,
    private readonly nodes: string[],
    readonly intervalMs = 10,
  ) {
    // Its own connections (short timeouts, not journaled one by one), same access mode as the run.
    this.pool = new ClusterPool(parent.config, {
      access: parent.options.access,
      connectTimeoutMs: 300,
      commandTimeoutMs: 500,
    });
    const { tag, slot } = tagInRanges(ranges);
    this.slot = slot;
    this.prefix = `redis-runbook:canary:{${tag}}:${randomBytes(4).toString('hex')}:`;
    this.owner = initialOwner;
    this.stoppedNode = initialOwner;
  }

  /**
   * The master is being stopped now: the window counts from the first failure
   * after this moment (a blip before it is not the outage), and the stopped
   * node is no longer tried as a fallback.
   */
  markStop(): void {
    this.stopAt = Date.now();
    this.firstFailAt = null;
    this.firstOkAfterFailAt = null;
  }

  get keyPrefix(): string {
    return this.prefix;
  }
  /** Consecutive acknowledged writes since the last failure. */
  get streak(): number {
    return this.okStreak;
  }
  get sent(): number {
    return this.seq;
  }

  start(): void {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const started = Date.now();
      await this.writeOne();
      const wait = this.intervalMs - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  private async writeOne(): Promise<void> {
    const seq = ++this.seq;
    const sentAt = Date.now();
    let target = this.owner;
    try {
      for (let hop = 0; ; hop++) {
        try {
          await this.pool.node(target).call('SET', this.prefix + seq, String(seq), 'PX', 3_600_000);
          break;
        } catch (err) {
          const m = MOVED.exec(messageOf(err));
          if (!m || hop >= 2) throw err;
          target = m[1]!;
        }
      }
      this.ackedSeqs.push(seq);
      this.ackedSentAt.push(sentAt);
      this.owner = target;
      this.lastOk = Date.now();
      this.okStreak++;
      if (this.firstFailAt !== null && this.firstOkAfterFailAt === null) this.firstOkAfterFailAt = this.lastOk;
    } catch (err) {
      this.failed++;
      this.okStreak = 0;
      const kind = errorKind(messageOf(err));
      this.errors[kind] = (this.errors[kind] ?? 0) + 1;
      if (this.firstFailAt === null && (this.stopAt === null || sentAt >= this.stopAt)) this.firstFailAt = sentAt;
      // Ask another node next time: it answers MOVED with the owner it believes in.
      const others = this.nodes.filter((n) => n !== target && (this.stopAt === null || n !== this.stoppedNode));
      if (others.length) this.owner = others[this.next++ % others.length]!;
    }
  }

  /** Stop writing, read every acknowledged write back from the owner, then delete the canary keys. */
  async finish(): Promise<CanaryReport> {
    this.stopping = true;
    await this.running;
    const lostSeqs: number[] = [];
    const owner = this.owner;
    const node = this.pool.node(owner);
    for (let i = 0; i < this.ackedSeqs.length; i += 500) {
      const chunk = this.ackedSeqs.slice(i, i + 500);
      const replies = await node.pipeline(chunk.map((s) => ['GET', this.prefix + s] as const));
      replies.forEach(([err, v], j) => {
        if (err) throw new Error(`reading canary key back from ${owner}: ${err.message}`);
        if (v === null || String(v) !== String(chunk[j])) lostSeqs.push(chunk[j]!);
      });
    }
    const keptBefore = this.keptBefore(new Set(lostSeqs));
    const all = Array.from({ length: this.seq }, (_, i) => i + 1);
    for (let i = 0; i < all.length; i += 500) {
      await node.pipeline(all.slice(i, i + 500).map((s) => ['DEL', this.prefix + s] as const));
    }
    await this.pool.close();
    return {
      slot: this.slot,
      keyPrefix: this.prefix,
      intervalMs: this.intervalMs,
      acked: this.ackedSeqs.length,
      failed: this.failed,
      firstFailAt: this.firstFailAt,
      firstOkAfterFailAt: this.firstOkAfterFailAt,
      windowMs:
        this.firstFailAt === null
          ? 0
          : this.firstOkAfterFailAt === null
            ? null
            : this.firstOkAfterFailAt - this.firstFailAt,
      lost: lostSeqs.length,
      lostSeqs: lostSeqs.slice(0, 20),
      keptBefore,
      errors: this.errors,
      owner,
    };
  }

  /** The send time of the last write sent before the stop that was read back. */
  private keptBefore(lost: ReadonlySet<number>): number | null {
    let best: number | null = null;
    this.ackedSeqs.forEach((seq, i) => {
      const at = this.ackedSentAt[i]!;
      if (!lost.has(seq) && (this.stopAt === null || at < this.stopAt) && (best === null || at > best)) best = at;
    });
    return best;
  }

  /**
   * Delete canary keys left in a slot by a drill whose process died before
   * it cleaned up (its random key prefix died with it): the hash tag is the
   * same for the same slots, so a SCAN for it finds them.
   */
  static async sweep(pool: ClusterPool, owner: string, ranges: readonly SlotRange[]): Promise<number> {
    const { tag } = tagInRanges(ranges);
    const node = pool.node(owner);
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = (await node.call(
        'SCAN',
        cursor,
        'MATCH',
        `redis-runbook:canary:{${tag}}:*`,
        'COUNT',
        1000,
      )) as [string, string[]];
      cursor = String(next);
      if (keys.length) deleted += Number(await node.call('DEL', ...keys));
    } while (cursor !== '0');
    return deleted;
  }

  /** Give up without reading back (the step failed): stop writing and close. */
  async abandon(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.pool.close();
  }
}
