import type { NodeClient } from '../connect.js';
import type { Endpoint } from '../verify/endpoint.js';
import type { RdbEntry } from './rdb.js';
import { keySlot } from '../slots.js';

export type Command = [string, ...Array<string | Buffer>];

const num = (x: number) => (x === Infinity ? 'inf' : x === -Infinity ? '-inf' : String(x));

function chunked<T>(xs: T[], size: number, f: (part: T[]) => Command): Command[] {
  const out: Command[] = [];
  for (let i = 0; i < xs.length; i += size) out.push(f(xs.slice(i, i + size)));
  return out;
}

/**
 * The commands that rebuild one RDB entry in the target, big values in
 * chunks (no single command carries a 200k-element list). The key is
 * deleted first, so a stale copy in the target never merges with it. A key
 * whose expiry has passed is not written at all. Pure.
 */
export function entryCommands(e: RdbEntry, now = Date.now(), chunk = 500): Command[] {
  if (e.expireAtMs !== null && e.expireAtMs <= now) return [];
  const k = e.key;
  const out: Command[] = [['DEL', k]];
  const v = e.value;
  switch (v.type) {
    case 'string': out.push(['SET', k, v.value]); break;
    case 'list': out.push(...chunked(v.value, chunk, (p) => ['RPUSH', k, ...p])); break;
    case 'set': out.push(...chunked(v.value, chunk, (p) => ['SADD', k, ...p])); break;
    case 'zset': out.push(...chunked(v.value, chunk, (p) => ['ZADD', k, ...p.flatMap(([m, s]) => [num(s), m])])); break;
    case 'hash': out.push(...chunked(v.value, chunk, (p) => ['HSET', k, ...p.flatMap(([f, x]) => [f, x])])); break;
    case 'stream': {
      const s = v.value;
      for (const en of s.entries) out.push(['XADD', k, en.id, ...en.fields]);
      if (!s.entries.length) {
        // An empty stream still exists (and keeps its last id): create it, then trim it empty.
        out.push(['XADD', k, 'MAXLEN', '0', s.lastId === '0-0' ? '0-1' : s.lastId, 'f', 'v']);
      }
      out.push(['XSETID', k, s.lastId, ...(s.entriesAdded !== undefined ? ['ENTRIESADDED', String(s.entriesAdded), 'MAXDELETEDID', s.maxDeletedId ?? '0-0'] : [])]);
      for (const g of s.groups) {
        out.push(['XGROUP', 'CREATE', k, g.name, g.lastId, ...(g.entriesRead !== undefined ? ['ENTRIESREAD', String(g.entriesRead)] : [])]);
        for (const c of g.consumers) {
          out.push(['XGROUP', 'CREATECONSUMER', k, g.name, c.name]);
          for (const id of c.pending) {
            const p = g.pending.find((x) => x.id === id);
            // FORCE creates the pending entry; TIME and RETRYCOUNT keep delivery time and count.
            out.push(['XCLAIM', k, g.name, c.name, '0', id, 'TIME', String(p?.deliveryTimeMs ?? now), 'RETRYCOUNT', String(p?.deliveryCount ?? 1), 'FORCE', 'JUSTID']);
          }
        }
      }
      break;
    }
  }
  if (e.expireAtMs !== null) out.push(['PEXPIREAT', k, String(e.expireAtMs)]);
  return out;
}

const KEY_AT: Record<string, number> = { XGROUP: 2, BITOP: 2, OBJECT: 2 };

/** What a command from the replication stream means for a cluster target. */
export type StreamAction = { kind: 'skip' } | { kind: 'key'; key: Buffer } | { kind: 'everywhere' } | { kind: 'multi' } | { kind: 'exec' };

/**
 * Route a replicated write: by its first key (a cluster master only
 * replicates commands whose keys share one slot), except what does not apply
 * in a cluster target (SELECT, PING, REPLCONF) and what concerns every
 * master (FLUSHALL, FLUSHDB, SCRIPT, FUNCTION). MULTI/EXEC blocks are kept
 * together. Pure.
 */
export function classify(args: Buffer[]): StreamAction {
  const name = args[0]!.toString().toUpperCase();
  if (name === 'PING' || name === 'SELECT' || name === 'REPLCONF') return { kind: 'skip' };
  if (name === 'MULTI') return { kind: 'multi' };
  if (name === 'EXEC') return { kind: 'exec' };
  if (name === 'FLUSHALL' || name === 'FLUSHDB' || name === 'SCRIPT' || name === 'FUNCTION') return { kind: 'everywhere' };
  if (name === 'PUBLISH' || name === 'SPUBLISH') return { kind: 'skip' }; // messages, not data
  // The few writes whose first key is not the first argument.
  const at = KEY_AT[name] ?? 1;
  if (args.length <= at) return { kind: 'skip' };
  return { kind: 'key', key: args[at]! };
}

/** DEL/UNLINK/TOUCH of several keys, MSET/MSETNX of several pairs: one command per key. */
function splitMultiKey(c: Command): Command[] {
  const name = c[0].toUpperCase();
  if ((name === 'DEL' || name === 'UNLINK' || name === 'TOUCH') && c.length > 2) return c.slice(1).map((k) => [c[0], k] as Command);
  if ((name === 'MSET' || name === 'MSETNX') && c.length > 3) {
    const out: Command[] = [];
    for (let i = 1; i + 1 < c.length; i += 2) out.push([name === 'MSET' ? 'SET' : 'SETNX', c[i]!, c[i + 1]!]);
    return out;
  }
  return [c];
}

/**
 * Writes into the target, in pipelines per owner node. Errors are raised:
 * a sync that cannot write must stop, not drift silently.
 */
export class TargetWriter {
  private readonly queues = new Map<NodeClient, Command[]>();
  private multi: Command[] | undefined;
  written = 0;

  constructor(private readonly target: Endpoint, private readonly flushAt = 512) {}

  async writeEntry(e: RdbEntry): Promise<void> {
    if (e.db !== 0) throw new Error(`the source holds keys in db ${e.db} (${e.key.toString().slice(0, 60)}): a cluster has db 0 only; move them to db 0 on the source, or sync that db to a standalone target`);
    for (const c of entryCommands(e)) await this.queue(this.target.route(e.key), c);
  }

  /** Apply one command of the replication stream. */
  async applyCommand(args: Buffer[]): Promise<void> {
    const a = classify(args);
    const cmd = [args[0]!.toString(), ...args.slice(1)] as Command;
    if (cmd[0].toUpperCase() === 'SELECT' && args[1]?.toString() !== '0') {
      throw new Error(`the source wrote to db ${args[1]?.toString()}: a cluster has db 0 only`);
    }
    if (a.kind === 'skip') return;
    if (a.kind === 'multi') { this.multi = []; return; }
    if (a.kind === 'exec') {
      const block = this.multi ?? [];
      this.multi = undefined;
      // A cluster takes a transaction within one slot only. A block from a cluster source
      // always is; a standalone source's may span slots: then each slot's part is its own
      // MULTI/EXEC (atomic per slot, not across them).
      const bySlot = new Map<number, Command[]>();
      const everywhere: Command[] = [];
      for (const c of block.flatMap(splitMultiKey)) {
        const ca = classify(c.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x))));
        if (ca.kind === 'skip') continue;
        if (ca.kind === 'everywhere') { everywhere.push(c); continue; }
        const slot = ca.kind === 'key' ? keySlot(ca.key) : -1;
        bySlot.set(slot, [...(bySlot.get(slot) ?? []), c]);
      }
      for (const c of everywhere) { await this.flush(); await Promise.all(this.target.masters.map((n) => this.send(n, [c]))); }
      for (const [slot, part] of bySlot) {
        const ca = classify(part[0]!.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x))));
        const node = slot >= 0 && ca.kind === 'key' ? this.target.route(ca.key) : this.target.masters[0]!;
        await this.flushNode(node);
        await this.send(node, [['MULTI'], ...part, ['EXEC']]);
      }
      return;
    }
    if (this.multi) { this.multi.push(cmd); return; }
    // A standalone source writes multi-key commands across slots; a cluster target takes
    // them key by key (these have no cross-key atomicity to lose).
    const parts = splitMultiKey(cmd);
    if (parts.length > 1) {
      for (const p of parts) await this.queue(this.target.route(Buffer.isBuffer(p[1]) ? p[1] : Buffer.from(p[1]!)), p);
      return;
    }
    if (a.kind === 'everywhere') {
      await this.flush();
      await Promise.all(this.target.masters.map((n) => this.send(n, [cmd])));
      return;
    }
    await this.queue(this.target.route(a.key), cmd);
  }

  private async queue(node: NodeClient, c: Command): Promise<void> {
    let q = this.queues.get(node);
    if (!q) { q = []; this.queues.set(node, q); }
    q.push(c);
    if (q.length >= this.flushAt) await this.flushNode(node);
  }

  private async flushNode(node: NodeClient): Promise<void> {
    const q = this.queues.get(node);
    if (!q?.length) return;
    this.queues.set(node, []);
    await this.send(node, q);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.queues.keys()].map((n) => this.flushNode(n)));
  }

  private async send(node: NodeClient, cmds: Command[]): Promise<void> {
    const replies = await node.pipeline(cmds);
    for (let i = 0; i < replies.length; i++) {
      // EXEC answers with an array whose elements can be errors (WRONGTYPE inside a block).
      const inner = Array.isArray(replies[i]![1]) ? (replies[i]![1] as unknown[]).find((x) => x instanceof Error) as Error | undefined : undefined;
      if (inner && String(cmds[i]![0]).toUpperCase() === 'EXEC') throw new Error(`writing to ${node.address}: a command inside MULTI/EXEC failed: ${inner.message}`);
      const err = replies[i]![0];
      if (!err) continue;
      // The target's layout moved under us (a reshard, a failover): follow it once.
      const moved = /^MOVED \d+ (\S+)/.exec(err.message);
      const to = moved && this.target.masters.find((m) => m.address === moved[1]);
      if (to) {
        const [[err2]] = (await to.pipeline([cmds[i]!])) as [[Error | null, unknown]];
        if (!err2) continue;
        throw new Error(`writing to ${to.address}: ${cmds[i]![0]} failed: ${err2.message}`);
      }
      throw new Error(`writing to ${node.address}: ${cmds[i]![0]} failed: ${err.message}`);
    }
    this.written += cmds.length;
  }
}
