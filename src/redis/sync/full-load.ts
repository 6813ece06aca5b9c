import type { NodeClient } from '../connect.js';
import type { Endpoint } from '../verify/endpoint.js';
import { decodeRaw, type RawEntry } from './rdb.js';
import { dumpPayload } from './crc64.js';
import { entryCommands, sendChecked, type Command } from './apply.js';

export interface LoaderOptions {
  /**
   * The RDB version of the source's file when the target can RESTORE its
   * payloads (its own RDB version is the same or newer); undefined to
   * rebuild every key with type commands.
   */
  payloadVersion: number | undefined;
  /** Values bigger than this are rebuilt in chunks instead of one RESTORE (one command must not stall the target). */
  bigKeyBytes: number;
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
  private readonly queues = new Map<NodeClient, Command[]>();
  private readonly flying = new Map<NodeClient, Set<Promise<void>>>();
  private failure: Error | undefined;
  private readonly batch: number;
  private readonly inflight: number;

  constructor(private readonly target: Endpoint, private readonly o: LoaderOptions) {
    this.batch = o.batch ?? 256;
    this.inflight = o.inflight ?? 4;
  }

  add(e: RawEntry, now = Date.now()): void {
    if (this.failure) throw this.failure;
    if (e.db !== 0) throw new Error(`the source holds keys in db ${e.db} (${e.key.toString().slice(0, 60)}): a cluster has db 0 only; move them to db 0 on the source first`);
    if (e.expireAtMs !== null && e.expireAtMs <= now) { this.expired++; return; }
    const node = this.target.route(e.key);
    this.bytes += e.raw.length;
    if (this.o.payloadVersion !== undefined && e.raw.length <= this.o.bigKeyBytes) {
      const ttl = e.expireAtMs === null ? ['0'] : [String(e.expireAtMs)];
      this.queue(node, ['RESTORE', e.key, ...ttl, dumpPayload(e.raw, this.o.payloadVersion), 'REPLACE', ...(e.expireAtMs === null ? [] : ['ABSTTL'])]);
    } else {
      this.rebuilt++;
      for (const c of entryCommands({ db: 0, key: e.key, expireAtMs: e.expireAtMs, value: decodeRaw(e) }, now)) this.queue(node, c);
    }
    this.keys++;
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

  private queue(node: NodeClient, c: Command): void {
    let q = this.queues.get(node);
    if (!q) { q = []; this.queues.set(node, q); }
    q.push(c);
    if (q.length >= this.batch) this.send(node);
  }

  private send(node: NodeClient): void {
    const cmds = this.queues.get(node);
    if (!cmds?.length) return;
    this.queues.set(node, []);
    let set = this.flying.get(node);
    if (!set) { set = new Set(); this.flying.set(node, set); }
    const p: Promise<void> = sendChecked(this.target, node, cmds).then(
      () => { set.delete(p); },
      (err: Error) => {
        set.delete(p);
        this.failure ??= /payload version|checksum/i.test(err.message) ? new Error(`${err.message} (the target refused a RESTORE payload: resume with restorePayloads=false to rebuild keys with type commands)`) : err;
      },
    );
    set.add(p);
  }
}
