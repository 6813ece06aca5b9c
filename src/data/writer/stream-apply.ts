import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';
import { classify, splitMultiKey, asBuffers, sendChecked, type Command } from './apply.js';
import { APPLY_SCRIPT, APPLY_SHA, SCRIPT_MAX_ARGS, formatCheckpoint } from './checkpoint.js';

interface Batch {
  argv: Array<Buffer | string>;
  count: number;
  bytes: number;
}
/**
 * What cannot go in a node's batch: FLUSHALL/FLUSHDB of this shard (its
 * slots are cleared), FUNCTION (every master), or a command too long for
 * the script that cannot be split.
 */
type Barrier =
  { kind: 'flush'; offset: number } | { kind: 'command'; nodes: NodeClient[] | 'all'; cmd: Command; offset: number };
/** Batches per node up to the offset `end`, then (maybe) a barrier. */
interface Segment {
  batches: Map<NodeClient, Batch>;
  end: number;
  barrier?: Barrier;
}

export interface ApplierOptions {
  /** The checkpoint key of this shard on a target master. */
  checkpointKey(node: NodeClient): string;
  replid(): string;
  /** After a resume: what each target master (by address) already holds, as its checkpoint offset. */
  skip?: Map<string, number>;
  /** How often a master that receives no commands still gets its checkpoint moved on. */
  idleCheckpointMs?: number;
  /** FLUSHALL/FLUSHDB on the source shard: delete the target's keys in this shard's slots (and only those). */
  clearShard(): Promise<void>;
}

/** A batch is sent before it passes this many bytes or commands (client-query-buffer-limit, script time). */
const BATCH_BYTES = 8 << 20;
const BATCH_COMMANDS = 10000;

/** Variadic writes that may be cut into several commands of the same kind without changing their effect. */
const SPLITTABLE: Record<string, { first: number; step: number }> = {
  RPUSH: { first: 2, step: 1 },
  LPUSH: { first: 2, step: 1 },
  SADD: { first: 2, step: 1 },
  SREM: { first: 2, step: 1 },
  HSET: { first: 2, step: 2 },
  HMSET: { first: 2, step: 2 },
  HDEL: { first: 2, step: 1 },
  ZREM: { first: 2, step: 1 },
};

/** A command too long for the script, cut into pieces that fit, when that keeps its meaning. Pure. */
export function splitLong(c: Command, max = SCRIPT_MAX_ARGS / 2): Command[] | undefined {
  const rule = SPLITTABLE[c[0].toUpperCase()];
  if (!rule) return undefined;
  const head = c.slice(0, rule.first) as Command;
  const rest = c.slice(rule.first);
  const per = Math.floor(max / rule.step) * rule.step;
  const out: Command[] = [];
  for (let i = 0; i < rest.length; i += per) out.push([...head, ...rest.slice(i, i + per)] as Command);
  return out;
}

/**
 * Applies one source shard's replication stream to the target: routes each
 * write to the master owning its key's slot, keeps a MULTI/EXEC block
 * together (one node's part of it runs in one script, so atomically), and
 * sends each node its commands with its new checkpoint in one script call
 * (checkpoint.ts): exactly once across crashes. `add` is synchronous and
 * only queues; `flush` sends.
 */
export class StreamApplier {
  /** Offset of the last command routed (queued or dropped); a MULTI block counts at its EXEC. */
  dispatched = 0;
  /** Offset up to which every target master holds the stream. */
  applied = 0;
  /** Commands written into the target. */
  commands = 0;
  /** Replicated commands the target refused (it differs from the source): kept, never retried. */
  readonly failures: string[] = [];
  private segments: Segment[];
  private multi: Command[] | undefined;
  private readonly checkpointAt = new Map<NodeClient, { at: number; offset: number }>();

  constructor(
    private readonly target: Endpoint,
    private readonly o: ApplierOptions,
    start: number,
  ) {
    this.dispatched = start;
    this.applied = start;
    this.segments = [{ batches: new Map(), end: start }];
  }

  get queued(): number {
    let n = 0;
    for (const s of this.segments) {
      for (const b of s.batches.values()) n += b.count;
      if (s.barrier) n++;
    }
    return n;
  }

  /** A MULTI block is open (its EXEC not read yet): the link must not be paused now. */
  get inBlock(): boolean {
    return this.multi !== undefined;
  }

  add(args: Buffer[], offset: number): void {
    const name = args[0]!.toString().toUpperCase();
    if (name === 'SELECT' && args[1]?.toString() !== '0')
      throw new Error(`the source wrote to db ${args[1]?.toString()}: a cluster has db 0 only`);
    const a = classify(args);
    const cmd = [args[0]!.toString(), ...args.slice(1)] as Command;
    // A block is routed at its EXEC and checkpointed there: until then nothing of it is queued,
    // and what was queued before it can be sent.
    if (a.kind === 'multi') {
      this.multi = [];
      return;
    }
    if (this.multi && a.kind !== 'exec') {
      this.multi.push(cmd);
      return;
    }
    const cmds = a.kind === 'exec' ? (this.multi ?? []) : [cmd];
    this.multi = undefined;
    for (const c of cmds.flatMap(splitMultiKey)) {
      const ca = classify(asBuffers(c));
      if (ca.kind === 'skip' || ca.kind === 'multi' || ca.kind === 'exec') continue;
      if (ca.kind === 'everywhere') {
        const flush = /^FLUSH(ALL|DB)$/i.test(c[0]);
        if (!this.everyoneHas(offset))
          this.barrier(flush ? { kind: 'flush', offset } : { kind: 'command', nodes: 'all', cmd: c, offset });
        continue;
      }
      const node = this.target.route(ca.key);
      const held = this.o.skip?.get(node.address);
      if (held !== undefined && offset <= held) continue; // this node applied it before the crash
      const pieces = c.length > SCRIPT_MAX_ARGS ? splitLong(c) : [c];
      if (!pieces) {
        this.barrier({ kind: 'command', nodes: [node], cmd: c, offset });
        continue;
      }
      for (const piece of pieces) this.queue(node, piece);
    }
    this.advance(offset);
    // Big batches are cut at command boundaries, each part checkpointed at its own end.
    const open = this.segments[this.segments.length - 1]!;
    for (const b of open.batches.values()) {
      if (b.bytes >= BATCH_BYTES || b.count >= BATCH_COMMANDS) {
        this.segments.push({ batches: new Map(), end: offset });
        break;
      }
    }
  }

  /** After a resume: every master applied this offset already (a barrier there is not replayed). */
  private everyoneHas(offset: number): boolean {
    const skip = this.o.skip;
    return !!skip && this.target.masters.every((m) => (skip.get(m.address) ?? -1) >= offset);
  }

  private queue(node: NodeClient, c: Command): void {
    const seg = this.segments[this.segments.length - 1]!;
    let b = seg.batches.get(node);
    if (!b) {
      b = { argv: [], count: 0, bytes: 0 };
      seg.batches.set(node, b);
    }
    b.argv.push(String(c.length), ...c);
    b.count++;
    for (const x of c) b.bytes += x.length;
  }

  private advance(offset: number): void {
    this.dispatched = offset;
    this.segments[this.segments.length - 1]!.end = offset;
  }

  private barrier(b: Barrier): void {
    const seg = this.segments[this.segments.length - 1]!;
    seg.barrier = b;
    this.segments.push({ batches: new Map(), end: b.offset });
  }

  /** Send everything queued; resolves when the target holds it (and `applied` says so). */
  async flush(now = Date.now()): Promise<void> {
    const segments = this.segments;
    const upTo = segments[segments.length - 1]!.end;
    this.segments = [{ batches: new Map(), end: upTo }];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const last = i === segments.length - 1;
      const nodes = new Set(seg.batches.keys());
      if (last) {
        // Masters that received nothing still move their checkpoint on now and then, so
        // a resume can ask the source for the stream from a recent offset.
        for (const m of this.target.masters) {
          const c = this.checkpointAt.get(m);
          if (!c || (c.offset < upTo && now - c.at >= (this.o.idleCheckpointMs ?? 1000))) nodes.add(m);
        }
      }
      await Promise.all(
        [...nodes].map((n) => this.sendBatch(n, seg.batches.get(n) ?? { argv: [], count: 0, bytes: 0 }, seg.end, now)),
      );
      this.applied = seg.end;
      if (seg.barrier) {
        await this.runBarrier(seg.barrier);
        // Every master's checkpoint moves past the barrier before anything after it is sent,
        // so a resume never replays it over later writes.
        await Promise.all(
          this.target.masters.map((n) => this.sendBatch(n, { argv: [], count: 0, bytes: 0 }, seg.barrier!.offset, now)),
        );
        this.applied = seg.barrier.offset;
      }
    }
    if (this.o.skip && [...this.o.skip.values()].every((v) => v <= upTo)) this.o.skip = undefined;
  }

  private async runBarrier(b: Barrier): Promise<void> {
    if (b.kind === 'flush') {
      await this.o.clearShard();
      this.commands++;
      return;
    }
    const targets = b.nodes === 'all' ? this.target.masters : b.nodes;
    await Promise.all(
      targets.map((n) =>
        sendChecked(this.target, n, [b.cmd]).catch((err: Error) => {
          // Replayed after a crash between the command and its checkpoint: the library is there already, or gone already.
          if (!/already exists|not found/i.test(err.message)) throw err;
        }),
      ),
    );
    this.commands++;
  }

  private async sendBatch(node: NodeClient, b: Batch, offset: number, now: number): Promise<void> {
    const ck = [this.o.checkpointKey(node), formatCheckpoint({ replid: this.o.replid(), offset })];
    let [[err, reply]] = (await node.pipeline([['EVALSHA', APPLY_SHA, '0', ...ck, ...b.argv]])) as [
      [Error | null, unknown],
    ];
    if (err && /NOSCRIPT/.test(err.message))
      [[err, reply]] = (await node.pipeline([['EVAL', APPLY_SCRIPT, '0', ...ck, ...b.argv]])) as [
        [Error | null, unknown],
      ];
    if (err) throw new Error(`applying the stream on ${node.address}: ${err.message}`);
    const failed = (reply as Array<Buffer | string>).map(String);
    // The checkpoint was written with the batch: what failed is not retried (it would fail again),
    // and it is kept: the target differs from the source, which cut-over must not hide.
    this.checkpointAt.set(node, { at: now, offset });
    this.commands += b.count;
    if (failed.length) {
      this.failures.push(...failed.slice(0, 20 - this.failures.length).map((f) => `${node.address}: ${f}`));
      throw new Error(
        `${failed.length} replicated command(s) failed on ${node.address} (the target differs from the source): ${failed.slice(0, 3).join('; ')}`,
      );
    }
  }
}
