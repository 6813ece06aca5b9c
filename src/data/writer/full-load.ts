import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';
import { decodeRaw, objectBytes, type BigPiece, type RawEntry } from '../protocol/rdb.js';
import { dumpPayload } from '../protocol/crc64.js';
import { entryCommands, pieceCommands, sendChecked, type Command } from './apply.js';
import { commandInto, commandSize, restoreFrameInto, restoreFrameSize, type RespPipe } from '../protocol/resp-pipe.js';
import { parseCommand } from '../readers/replica-link.js';

export interface LoaderOptions {
  /**
   * The RDB version of the source's file when the target can RESTORE its
   * payloads (its own RDB version is the same or newer); undefined to
   * rebuild every key with type commands.
   */
  payloadVersion: number | undefined;
  /** Values bigger than this are rebuilt in chunks instead of one RESTORE (one command must not stall the target). */
  bigKeyBytes: number;
  /** A bare pipelined connection per target master (resp-pipe.ts); without it, the pooled clients are used. */
  pipe?: (node: NodeClient) => Promise<RespPipe>;
  /** Commands per pipeline, and pipelines in flight per node. */
  batch?: number;
  inflight?: number;
}

/**
 * Writes the keys of a full sync into the target: each key to the master
 * that owns its slot, as `RESTORE key <abs expiry> <payload> REPLACE ABSTTL`
 * built straight from the RDB's bytes (no decoding), or rebuilt with type
 * commands when the target is older than the source or the value is big.
 * Pipelines run concurrently per node; `drained` lets the reader hold the
 * link back while the target is behind.
 */
export class RdbLoader {
  keys = 0;
  rebuilt = 0;
  expired = 0;
  bytes = 0;
  /** The most bytes one pipeline carried: what a node's in-flight writes can hold is a few of these. */
  largestPipeline = 0;
  private readonly queues = new Map<NodeClient, Pending>();
  private readonly flying = new Map<NodeClient, Set<Promise<void>>>();
  private failure: Error | undefined;
  /** The big value being read in pieces had expired at its first piece. */
  private skipping = false;
  private readonly batch: number;
  private readonly inflight: number;

  constructor(
    private readonly target: Endpoint,
    private readonly o: LoaderOptions,
  ) {
    this.batch = o.batch ?? 256;
    this.inflight = o.inflight ?? 4;
  }

  add(e: RawEntry | BigPiece, now = Date.now()): void {
    if (this.failure) throw this.failure;
    if ('piece' in e) {
      this.addPiece(e, now);
      return;
    }
    if (e.db !== 0)
      throw new Error(
        `the source holds keys in db ${e.db} (${e.key.toString().slice(0, 60)}): a cluster has db 0 only; move them to db 0 on the source first`,
      );
    if (e.expireAtMs !== null && e.expireAtMs <= now) {
      this.expired++;
      return;
    }
    const node = this.target.route(e.key);
    this.bytes += 1 + e.value.length;
    if (this.o.payloadVersion !== undefined && e.value.length < this.o.bigKeyBytes) {
      if (this.o.pipe) this.frame(node, e, this.o.payloadVersion);
      else
        this.queue(node, [
          'RESTORE',
          e.key,
          e.expireAtMs === null ? '0' : String(e.expireAtMs),
          dumpPayload(objectBytes(e), this.o.payloadVersion),
          'REPLACE',
          ...(e.expireAtMs === null ? [] : ['ABSTTL']),
        ]);
    } else {
      this.rebuilt++;
      for (const c of entryCommands({ db: 0, key: e.key, expireAtMs: e.expireAtMs, value: decodeRaw(e) }, now))
        this.queue(node, c);
    }
    this.keys++;
  }

  /**
   * A piece of a value too big to be held whole (the parser's bigBytes): its
   * commands go through the same queue as everything else for the node, in
   * order. A key whose expiry has passed is skipped piece by piece.
   */
  private addPiece(p: BigPiece, now: number): void {
    if (p.db !== 0)
      throw new Error(
        `the source holds keys in db ${p.db} (${p.key.toString().slice(0, 60)}): a cluster has db 0 only; move them to db 0 on the source first`,
      );
    // Expired or not is decided at the first piece: a key that expires while it loads gets its
    // (past) PEXPIREAT with the last piece, and Redis deletes it then, never half of it.
    if (p.first) this.skipping = p.expireAtMs !== null && p.expireAtMs <= now;
    if (this.skipping) {
      if (p.first) this.expired++;
      return;
    }
    if (p.first) {
      this.keys++;
      this.rebuilt++;
    }
    const node = this.target.route(p.key);
    for (const c of pieceCommands(p, now)) {
      this.bytes += c.reduce((n, x) => n + x.length, 0);
      this.queue(node, c);
    }
  }

  /** True when every node has room for another pipeline. */
  get ready(): boolean {
    for (const s of this.flying.values()) if (s.size >= this.inflight) return false;
    return true;
  }

  /** Wait until a pipeline finishes (call while !ready). */
  async drained(): Promise<void> {
    const all = [...this.flying.values()].flatMap((s) => [...s]);
    if (all.length) await Promise.race(all);
    if (this.failure) throw this.failure;
  }

  /** Send what is queued and wait for every reply. */
  async finish(): Promise<void> {
    for (const node of this.queues.keys()) this.send(node);
    await Promise.all([...this.flying.values()].flatMap((s) => [...s]));
    if (this.failure) throw this.failure;
  }

  private pending(node: NodeClient): Pending {
    let q = this.queues.get(node);
    if (!q) {
      q = newPending();
      this.queues.set(node, q);
    }
    return q;
  }

  /** A RESTORE written straight into the node's batch buffer (resp-pipe.ts). */
  private frame(node: NodeClient, e: RawEntry, version: number): void {
    const ttl = e.expireAtMs ?? 0;
    this.append(node, restoreFrameSize(e.key.length, ttl, e.value.length), (b, at) =>
      restoreFrameInto(b, at, e.key, ttl, e.type, e.value, version),
    );
  }

  /** One command written into the node's block by `write` (`size` bytes; the full block is sent first). */
  private append(node: NodeClient, size: number, write: (b: Buffer, at: number) => number): void {
    let q = this.pending(node);
    if (q.used + size > q.block.length) {
      if (q.offsets.length) {
        this.send(node);
        q = this.pending(node);
      }
      if (size > q.block.length) q.block = Buffer.allocUnsafe(Math.max(BLOCK, size));
    }
    q.offsets.push(q.used);
    q.used = write(q.block, q.used);
    if (q.offsets.length >= this.batch) this.send(node);
  }

  private queue(node: NodeClient, c: Command): void {
    if (this.o.pipe) {
      // Encoded now, into the same block as the RESTORE frames: the arguments (a Buffer per
      // element of a big collection's piece) die young instead of living until the pipeline's
      // replies come back, which is what made the runner's heap grow with a big key's size.
      this.append(node, commandSize(c), (b, at) => commandInto(b, at, c));
      return;
    }
    const q = this.pending(node);
    q.cmds.push(c);
    q.cmdBytes += commandBytes(c);
    // By bytes too: 256 pieces of a big value (APPENDs of 256 KB) would be a 64 MB pipeline,
    // and four in flight would hold most of a 200 MB string in memory.
    if (q.offsets.length + q.cmds.length >= this.batch || q.cmdBytes >= PIPELINE_BYTES) this.send(node);
  }

  private async write(node: NodeClient, q: Pending): Promise<void> {
    if (!this.o.pipe) {
      await sendChecked(this.target, node, q.cmds);
      return;
    }
    // With a pipe every command is in the block (queue): reply i answers frame i.
    const errors = await (
      await this.o.pipe(node)
    ).send([{ bytes: q.block.subarray(0, q.used), count: q.offsets.length }]);
    if (!errors.length) return;
    // A frame is sent again as the command it encodes.
    const command = (i: number): Command => frameCommand(q.block.subarray(q.offsets[i], q.offsets[i + 1] ?? q.used));
    // A slot that moved under us is followed through the full client (rare); anything else stops the load.
    const other = errors.find((e) => !e.message.startsWith('MOVED '));
    if (other)
      throw new Error(
        `writing to ${node.address}: ${command(other.index)[0]} of ${String(command(other.index)[1]).slice(0, 80)} failed: ${other.message}`,
      );
    await sendChecked(
      this.target,
      node,
      errors.map((e) => command(e.index)),
    );
  }

  private send(node: NodeClient): void {
    const cmds = this.queues.get(node);
    if (!cmds || !(cmds.offsets.length + cmds.cmds.length)) return;
    this.queues.set(node, newPending());
    this.largestPipeline = Math.max(this.largestPipeline, cmds.used + cmds.cmdBytes);
    let set = this.flying.get(node);
    if (!set) {
      set = new Set();
      this.flying.set(node, set);
    }
    const p: Promise<void> = this.write(node, cmds).then(
      () => {
        set.delete(p);
      },
      (err: Error) => {
        set.delete(p);
        this.failure ??= /payload version|checksum/i.test(err.message)
          ? new Error(
              `${err.message} (the target refused a RESTORE payload: resume with restorePayloads=false to rebuild keys with type commands)`,
            )
          : err;
      },
    );
    set.add(p);
  }
}

/** What is queued for one node: commands encoded back to back in a block (with a pipe), or plain commands (without). */
interface Pending {
  block: Buffer;
  used: number;
  offsets: number[];
  cmds: Command[];
  cmdBytes: number;
}
/**
 * A pipeline's buffer. 64 KB, not 128: with four in flight per target master and one loader per
 * source shard, each KB here is 60 KB of the runner's peak RSS (3 x 5 masters x 4), and 64 KB
 * batches (about 250 RESTOREs of small keys) load as fast.
 */
const BLOCK = 64 * 1024;
/** A pipeline of plain commands is sent once it carries this much (its argument bytes). */
const PIPELINE_BYTES = 1024 * 1024;
const newPending = (): Pending => ({ block: EMPTY, used: 0, offsets: [], cmds: [], cmdBytes: 0 });
const commandBytes = (c: Command): number => c.reduce((n, x) => n + x.length, 0);
const EMPTY = Buffer.alloc(0);

/** A frame back to the command it encodes (the replication stream's parser reads the same RESP). */
function frameCommand(b: Buffer): Command {
  const [name, ...args] = parseCommand(b)!.args;
  return [name!.toString(), ...args];
}
