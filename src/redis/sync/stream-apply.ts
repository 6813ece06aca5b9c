import type { NodeClient } from '../connect.js';
import type { Endpoint } from '../verify/endpoint.js';
import { classify, splitMultiKey, asBuffers, sendChecked, type Command } from './apply.js';
import { APPLY_SCRIPT, APPLY_SHA, SCRIPT_MAX_ARGS, formatCheckpoint } from './checkpoint.js';

interface Batch { argv: Array<Buffer | string>; count: number }
/** Commands that cannot go in a node's batch: FLUSHALL/FUNCTION (every master) or a command too long for the script. */
interface Barrier { nodes: NodeClient[] | 'all'; cmd: Command }
/** Batches per node up to the offset `end`, then (maybe) a barrier. */
interface Segment { batches: Map<NodeClient, Batch>; end: number; barrier?: Barrier }

export interface ApplierOptions {
  /** The checkpoint key of this shard on a target master. */
  checkpointKey(node: NodeClient): string;
  replid(): string;
  /** After a resume: what each target master (by address) already holds, as its checkpoint offset. */
  skip?: Map<string, number>;
  /** How often a master that receives no commands still gets its checkpoint moved on. */
  idleCheckpointMs?: number;
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
  /** Offset of the last command routed (queued or dropped). */
  dispatched = 0;
  /** Offset up to which every target master holds the stream. */
  applied = 0;
  /** Commands written into the target. */
  commands = 0;
  private segments: Segment[];
  private multi: Command[] | undefined;
  private readonly checkpointAt = new Map<NodeClient, { at: number; offset: number }>();

  constructor(private readonly target: Endpoint, private readonly o: ApplierOptions, start: number) {
    this.dispatched = start;
    this.applied = start;
    this.segments = [{ batches: new Map(), end: start }];
  }

  get queued(): number {
    let n = 0;
    for (const s of this.segments) { for (const b of s.batches.values()) n += b.count; if (s.barrier) n++; }
    return n;
  }

  add(args: Buffer[], offset: number): void {
    const name = args[0]!.toString().toUpperCase();
    if (name === 'SELECT' && args[1]?.toString() !== '0') throw new Error(`the source wrote to db ${args[1]?.toString()}: a cluster has db 0 only`);
    const a = classify(args);
    const cmd = [args[0]!.toString(), ...args.slice(1)] as Command;
    if (a.kind === 'multi') { this.multi = []; this.advance(offset); return; }
    if (this.multi && a.kind !== 'exec') { this.multi.push(cmd); this.advance(offset); return; }
    const cmds = a.kind === 'exec' ? this.multi ?? [] : [cmd];
    this.multi = undefined;
    for (const c of cmds.flatMap(splitMultiKey)) {
      const ca = classify(asBuffers(c));
      if (ca.kind === 'skip' || ca.kind === 'multi' || ca.kind === 'exec') continue;
      if (ca.kind === 'everywhere') { this.barrier({ nodes: 'all', cmd: c }); continue; }
      const node = this.target.route(ca.key);
      const held = this.o.skip?.get(node.address);
      if (held !== undefined && offset <= held) continue; // this node applied it before the crash
      if (c.length > SCRIPT_MAX_ARGS) { this.barrier({ nodes: [node], cmd: c }); continue; }
      const seg = this.segments[this.segments.length - 1]!;
      let b = seg.batches.get(node);
      if (!b) { b = { argv: [], count: 0 }; seg.batches.set(node, b); }
      b.argv.push(String(c.length), ...c);
      b.count++;
    }
    this.advance(offset);
  }

  private advance(offset: number): void {
    this.dispatched = offset;
    this.segments[this.segments.length - 1]!.end = offset;
  }

  private barrier(b: Barrier): void {
    const seg = this.segments[this.segments.length - 1]!;
    seg.barrier = b;
    this.segments.push({ batches: new Map(), end: seg.end });
  }

  /** Send everything queued; resolves when the target holds it (and `applied` says so). */
  async flush(now = Date.now()): Promise<void> {
    if (this.multi) return; // a block is never split: wait for its EXEC
    const segments = this.segments;
    const upTo = this.dispatched;
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
      await Promise.all([...nodes].map((n) => this.sendBatch(n, seg.batches.get(n) ?? { argv: [], count: 0 }, seg.end, now)));
      if (seg.barrier) {
        const b = seg.barrier;
        const targets = b.nodes === 'all' ? this.target.masters : b.nodes;
        await Promise.all(targets.map((n) => sendChecked(this.target, n, [b.cmd]).catch((err: Error) => {
          // FUNCTION LOAD replayed after a crash finds its library there already.
          if (!/already exists/i.test(err.message)) throw err;
        })));
        this.commands++;
      }
      this.applied = seg.end;
    }
    if (this.o.skip && [...this.o.skip.values()].every((v) => v <= upTo)) this.o.skip = undefined;
  }

  private async sendBatch(node: NodeClient, b: Batch, offset: number, now: number): Promise<void> {
    const ck = [this.o.checkpointKey(node), formatCheckpoint({ replid: this.o.replid(), offset })];
    let [[err, reply]] = (await node.pipeline([['EVALSHA', APPLY_SHA, '0', ...ck, ...b.argv]])) as [[Error | null, unknown]];
    if (err && /NOSCRIPT/.test(err.message)) [[err, reply]] = (await node.pipeline([['EVAL', APPLY_SCRIPT, '0', ...ck, ...b.argv]])) as [[Error | null, unknown]];
    if (err) throw new Error(`applying the stream on ${node.address}: ${err.message}`);
    const failed = (reply as Array<Buffer | string>).map(String);
    // The checkpoint was written with the batch: what failed is not retried (it would fail again).
    this.checkpointAt.set(node, { at: now, offset });
    this.commands += b.count;
    if (failed.length) throw new Error(`${failed.length} replicated command(s) failed on ${node.address} (the target differs from the source): ${failed.slice(0, 3).join('; ')}`);
  }
}
