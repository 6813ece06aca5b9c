import './ioredis-asking.js';
import { Cluster } from 'ioredis';
import { keySlot } from '../../src/redis/slots.js';

/**
 * A bounded application-like writer on a cluster that records every write the
 * server ACKNOWLEDGED (the client got its reply), so that afterwards `check`
 * can list each acknowledged write a cluster does not hold.
 *
 * - INCR on one counter per slot, visited with a stride that covers all 16384 slots;
 * - SET of a rising sequence number on a fixed set of keys (half of them with a TTL);
 * - SET then DEL of one-off keys (a DEL is only sent once its SET was acknowledged);
 * - LPUSH of unique elements; XADD with server-made ids.
 *
 * Unacknowledged writes (errors, timeouts) may or may not have been applied:
 * counters are checked against a lower bound (acks) and an upper bound (sends).
 * Memory is bounded: the writer stops sending after `maxOps`.
 */
export interface AckWriterOptions {
  /** A node to start from (default 127.0.0.1: the single-host sandbox). */
  host?: string;
  port: number;
  password: string;
  prefix?: string;
  /** Writes sent per second (default 400). */
  rate?: number;
  /** At most this many writes in flight; no new one is sent while the limit is reached. */
  maxInFlight?: number;
  /** The writer stops sending after this many writes (bounds memory). */
  maxOps?: number;
  commandTimeoutMs?: number;
}

type Kind = 'incr' | 'set' | 'dset' | 'del' | 'lpush' | 'xadd';

/** One write: which key (index into its family), what it carried, and when it was sent and acknowledged. */
export interface WriteRecord {
  kind: Kind;
  key: string;
  slot: number;
  value: string;
  sentAt: number;
  ackAt: number | null;
}

export interface Missing {
  kind: Kind | 'incr-over' | 'ttl';
  key: string;
  slot: number;
  detail: string;
}

export interface CheckOptions {
  /** Only writes acknowledged before this time (ms since epoch) must be there. */
  ackedBefore?: number;
  /** Only keys in these slots are checked. */
  slots?: (slot: number) => boolean;
}

const SLOTS = 16384;
const SET_KEYS = 1024;
const LISTS = 256;
const STREAMS = 64;

/** A hash tag for every slot, so a key per slot can be built. */
function tagsPerSlot(): string[] {
  const tags = new Array<string>(SLOTS);
  let found = 0;
  for (let i = 0; found < SLOTS; i++) {
    const t = `t${i}`;
    const s = keySlot(t);
    if (tags[s] === undefined) {
      tags[s] = t;
      found++;
    }
  }
  return tags;
}
let TAGS: string[] | undefined;
export const slotTag = (slot: number): string => (TAGS ??= tagsPerSlot())[slot]!;

/** The n-th item of a family of `size` keys, spread over the slots by a stride coprime with 16384. */
const spread = (n: number, size: number, stride: number): number => ((n % size) * stride) % SLOTS;

export class AckWriter {
  readonly records: WriteRecord[] = [];
  private readonly c: Cluster;
  private readonly prefix: string;
  private readonly o: Required<Omit<AckWriterOptions, 'prefix' | 'port' | 'password' | 'host'>>;
  private inFlight = 0;
  private n = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly pendingDel: WriteRecord[] = [];
  /** Writes sent so far per family: each family walks its own keys. */
  private readonly nth = { c: 0, s: 0, d: 0, l: 0, x: 0 };
  private readonly settled = new Set<Promise<void>>();

  constructor(opts: AckWriterOptions) {
    this.prefix = opts.prefix ?? 'aw';
    this.o = {
      rate: opts.rate ?? 400,
      maxInFlight: opts.maxInFlight ?? 64,
      maxOps: opts.maxOps ?? 200_000,
      commandTimeoutMs: opts.commandTimeoutMs ?? 5000,
    };
    this.c = new Cluster([{ host: opts.host ?? '127.0.0.1', port: opts.port }], {
      redisOptions: { password: opts.password, commandTimeout: this.o.commandTimeoutMs, connectTimeout: 1000 },
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      maxRedirections: 16,
    });
    this.c.on('error', () => {});
    slotTag(0);
  }

  start(): this {
    const perTick = this.o.rate / 100;
    let credit = 0;
    this.timer = setInterval(() => {
      credit += perTick;
      while (credit >= 1) {
        credit--;
        if (this.inFlight >= this.o.maxInFlight || this.n >= this.o.maxOps) continue;
        this.sendOne();
      }
    }, 10);
    return this;
  }

  /** Stop sending, wait for every write in flight to be answered or to time out. */
  async stop(): Promise<{ sent: number; acked: number }> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A write the cluster client still holds (queued while it looks for a
    // master) may never be answered: wait its timeout and a margin, no more,
    // and leave it unacknowledged, which is what it is.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.settled]),
      new Promise((r) => (timer = setTimeout(r, this.o.commandTimeoutMs + 10_000))),
    ]);
    clearTimeout(timer);
    return { sent: this.records.length, acked: this.acked().length };
  }

  async close(): Promise<void> {
    await this.stop();
    this.c.disconnect();
  }

  acked(): WriteRecord[] {
    return this.records.filter((r) => r.ackAt !== null);
  }

  private key(family: string, slot: number, suffix = ''): string {
    return `${this.prefix}:${family}:{${slotTag(slot)}}${suffix}`;
  }

  /** The next write, by a fixed mix: 4 INCR, 2 SET, 1 one-off SET or DEL, 2 LPUSH, 1 XADD in every 10. */
  private next(i: number): { rec: WriteRecord; send: () => Promise<unknown> } {
    const now = Date.now();
    const mk = (kind: Kind, key: string, value: string): WriteRecord => ({
      kind,
      key,
      slot: keySlot(key),
      value,
      sentAt: now,
      ackAt: null,
    });
    const m = i % 10;
    if (m < 4) {
      const rec = mk('incr', this.key('c', spread(this.nth.c++, SLOTS, 5531)), '1');
      return { rec, send: () => this.c.incr(rec.key) };
    }
    if (m < 6) {
      const k = this.nth.s++ % SET_KEYS;
      const rec = mk('set', this.key('s', spread(k, SET_KEYS, 6151), k % 2 ? ':ttl' : ''), String(i));
      return { rec, send: () => (k % 2 ? this.c.set(rec.key, rec.value, 'EX', 3600) : this.c.set(rec.key, rec.value)) };
    }
    if (m === 6) {
      const d = this.pendingDel.length > 8 ? this.pendingDel.shift() : undefined;
      if (d) {
        const rec = mk('del', d.key, d.value);
        return { rec, send: () => this.c.del(rec.key) };
      }
      const rec = mk('dset', this.key('d', spread(this.nth.d++, SLOTS, 769), `:${i}`), String(i));
      return { rec, send: () => this.c.set(rec.key, rec.value) };
    }
    if (m < 9) {
      const rec = mk('lpush', this.key('l', spread(this.nth.l++, LISTS, 1021)), String(i));
      return { rec, send: () => this.c.lpush(rec.key, rec.value) };
    }
    const rec = mk('xadd', this.key('x', spread(this.nth.x++, STREAMS, 4099)), '');
    return { rec, send: () => this.c.xadd(rec.key, '*', 'n', String(i)) };
  }

  private sendOne(): void {
    const { rec, send } = this.next(this.n++);
    this.records.push(rec);
    this.inFlight++;
    const p = send()
      .then(
        (reply) => {
          rec.ackAt = Date.now();
          if (rec.kind === 'xadd') rec.value = String(reply);
          if (rec.kind === 'dset') this.pendingDel.push(rec);
        },
        () => undefined,
      )
      .finally(() => {
        this.inFlight--;
        this.settled.delete(p);
      });
    this.settled.add(p);
  }

  /** Acknowledged writes to `slots` whose ack came in [from, to). */
  ackedBetween(from: number, to: number, slots: (slot: number) => boolean = () => true): WriteRecord[] {
    return this.records.filter((r) => r.ackAt !== null && r.ackAt >= from && r.ackAt < to && slots(r.slot));
  }

  /** Every acknowledged write (before `ackedBefore`) missing on the cluster reached through `port`. */
  async check(port: number, password: string, o: CheckOptions = {}, host = '127.0.0.1'): Promise<Missing[]> {
    const c = new Cluster([{ host, port }], { redisOptions: { password }, enableAutoPipelining: true });
    c.on('error', () => {});
    try {
      return await checkRecords(c, this.records, o);
    } catch (e) {
      throw new Error(`checking the writes on the cluster at ${host}:${port}: ${(e as Error).message}`, { cause: e });
    } finally {
      c.disconnect();
    }
  }
}

/** Per key: the acknowledged writes that must be there, and every write sent. */
function group(records: WriteRecord[], o: CheckOptions): Map<string, { must: WriteRecord[]; sent: WriteRecord[] }> {
  const cut = o.ackedBefore ?? Infinity;
  const keys = new Map<string, { must: WriteRecord[]; sent: WriteRecord[] }>();
  for (const r of records) {
    if (o.slots && !o.slots(r.slot)) continue;
    let g = keys.get(r.key);
    if (!g) keys.set(r.key, (g = { must: [], sent: [] }));
    g.sent.push(r);
    if (r.ackAt !== null && r.ackAt < cut) g.must.push(r);
  }
  return keys;
}

async function checkRecords(c: Cluster, records: WriteRecord[], o: CheckOptions): Promise<Missing[]> {
  const out: Missing[] = [];
  const keys = [...group(records, o)];
  for (let i = 0; i < keys.length; i += 500) {
    const found = await Promise.all(keys.slice(i, i + 500).map(([key, g]) => checkKey(c, key, g.must, g.sent)));
    for (const f of found) out.push(...f);
  }
  return out;
}

async function checkKey(c: Cluster, key: string, must: WriteRecord[], sent: WriteRecord[]): Promise<Missing[]> {
  const kind = sent[0]!.kind;
  const slot = sent[0]!.slot;
  const miss = (k: Missing['kind'], detail: string): Missing => ({ kind: k, key, slot, detail });
  if (kind === 'incr') {
    const v = Number((await c.get(key)) ?? 0);
    const out: Missing[] = [];
    if (v < must.length) out.push(miss('incr', `value ${v} < ${must.length} acknowledged increments`));
    if (v > sent.length) out.push(miss('incr-over', `value ${v} > ${sent.length} increments sent (one applied twice)`));
    return out;
  }
  if (kind === 'set') {
    if (!must.length) return [];
    const last = Math.max(...must.map((r) => Number(r.value)));
    const v = await c.get(key);
    if (v === null || Number(v) < last) return [miss('set', `value ${v} older than the last acknowledged ${last}`)];
    if (key.endsWith(':ttl') && (await c.pttl(key)) < 0) return [miss('ttl', 'the key lost its TTL')];
    return [];
  }
  if (kind === 'dset' || kind === 'del') return checkOneOff(c, key, must, sent, miss);
  if (kind === 'lpush') {
    const have = new Set(await c.lrange(key, 0, -1));
    const lost = must.filter((r) => !have.has(r.value));
    return lost.length ? [miss('lpush', `${lost.length} acknowledged elements missing (e.g. ${lost[0]!.value})`)] : [];
  }
  const have = new Set((await c.xrange(key, '-', '+')).map(([id]) => id));
  const lost = must.filter((r) => !have.has(r.value));
  return lost.length ? [miss('xadd', `${lost.length} acknowledged entries missing (e.g. ${lost[0]!.value})`)] : [];
}

/**
 * A one-off key: an acknowledged DEL means it is gone; an acknowledged SET
 * whose DEL was never sent (a DEL sent, even unacknowledged, may have been
 * applied) means it is there.
 */
async function checkOneOff(
  c: Cluster,
  key: string,
  must: WriteRecord[],
  sent: WriteRecord[],
  miss: (k: Missing['kind'], d: string) => Missing,
): Promise<Missing[]> {
  const del = must.some((r) => r.kind === 'del');
  const set = must.some((r) => r.kind === 'dset');
  const delSent = sent.some((r) => r.kind === 'del');
  const v = await c.get(key);
  if (del && v !== null) return [miss('del', 'an acknowledged DEL did not happen')];
  if (set && !delSent && v === null) return [miss('dset', 'an acknowledged SET is missing')];
  return [];
}
