import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';
import { createHash } from 'node:crypto';
import {
  readCommands,
  parseRead,
  parseScriptRead,
  READ_SCRIPT,
  STRING_PAGE_BYTES,
  type VerifyMode,
  type KeyRead,
} from './key-read.js';
import { compareKey, compareTtl, ttlText, printableKey, type Difference, type DifferenceKind } from './compare.js';
import { compareBigKey } from './big-key.js';
import { RateLimiter } from './rate.js';

export interface VerifyOptions {
  mode: VerifyMode;
  /** Round 1 checks everything; each later round rechecks only what differed. */
  rounds: number;
  /** Keys per second read from each side; 0 = unlimited. */
  qps: number;
  /** Keys per SCAN and per pipeline. */
  batch: number;
  /** Percent of keys checked (100 = all). */
  sample: number;
  /** Also look for keys that exist only in the target. */
  extra: boolean;
  ttlToleranceMs: number;
  /** Pause before each recheck round, so keys still changing under a live sync can converge. */
  pauseMs: number;
  /** Elements per page for big keys. */
  page: number;
  /** Compare stream consumer groups (names and last-delivered-id) too. */
  streamGroups: boolean;
  /** false: never use the read script, even on Redis 7+ (the path older servers take). */
  useScripts?: boolean;
  onProgress?: (p: VerifyProgress) => void;
  /** Called at the end of each round with how many keys differ in it. */
  onRound?: (round: number, differ: number, compared: number) => void;
  signal?: AbortSignal;
}

export const VERIFY_DEFAULTS = {
  mode: 'full',
  rounds: 3,
  qps: 15000,
  batch: 256,
  sample: 100,
  extra: false,
  ttlToleranceMs: 2000,
  pauseMs: 2000,
  page: 1000,
  streamGroups: false,
} as const;

export interface VerifyProgress {
  round: number;
  rounds: number;
  done: number;
  total: number;
  keysPerSec: number;
  etaSec: number | undefined;
  differ: number;
}

export interface VerifyReport {
  mode: VerifyMode;
  source: string;
  target: string;
  /** Keys compared in round 1 (after sampling; keys that vanished from the source while read are not counted). */
  compared: number;
  vanished: number;
  roundsRun: number;
  /** Per round, how many keys differed (the last is what is reported). */
  differedPerRound: number[];
  differences: Difference[];
  bigKeys: number;
  pages: number;
  elapsedMs: number;
  keysPerSec: number;
  reads: { sourcePipelines: number; targetPipelines: number };
  settings: {
    qps: number;
    batch: number;
    sample: number;
    extra: boolean;
    ttlToleranceMs: number;
    streamGroups: boolean;
  };
}

interface Candidate {
  key: Buffer;
  kind: DifferenceKind;
  source: string;
  target: string;
}

/** Compare two clusters (or standalone servers), whatever their shard layouts. Read-only. */
export async function verifyData(source: Endpoint, target: Endpoint, o: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const limiter = new RateLimiter(o.qps);
  const stats = { sourcePipelines: 0, targetPipelines: 0, bigKeys: 0, pages: 0, vanished: 0, compared: 0 };
  const total = Math.round(((await source.keyCount()) * o.sample) / 100);
  let candidates = new Map<string, Candidate>();
  const differedPerRound: number[] = [];
  let round = 1;
  let done = 0;
  let lastProgress = 0;
  const progress = (force = false) => {
    const now = Date.now();
    if (!o.onProgress || (!force && now - lastProgress < 1000)) return;
    lastProgress = now;
    const rate = done / Math.max(0.001, (now - started) / 1000);
    o.onProgress({
      round,
      rounds: o.rounds,
      done,
      total,
      keysPerSec: Math.round(rate),
      etaSec: rate > 0 && round === 1 ? Math.max(0, Math.round((total - done) / rate)) : undefined,
      differ: candidates.size,
    });
  };

  const send = async (node: NodeClient, side: 'source' | 'target', cmds: Parameters<NodeClient['pipeline']>[0]) => {
    if (side === 'source') stats.sourcePipelines++;
    else stats.targetPipelines++;
    return node.pipeline(cmds);
  };

  // One script call per key and side where both sides run Redis 7+ (full and length modes).
  const useScript = o.useScripts !== false && o.mode !== 'keys' && source.scripts && target.scripts;
  const sha = createHash('sha1').update(READ_SCRIPT).digest('hex');
  const loaded = new Set<NodeClient>();
  const scriptReads = async (ep: Endpoint, side: 'source' | 'target', keys: Buffer[]) => {
    const out = new Map<Buffer, KeyRead>();
    await Promise.all(
      [...groupBy(keys, (k) => ep.route(k))].map(async ([node, ks]) => {
        if (!loaded.has(node)) {
          await node.pipeline([['SCRIPT', 'LOAD', READ_SCRIPT]]);
          loaded.add(node);
        }
        let replies = await send(
          node,
          side,
          ks.map(
            (k) =>
              ['EVALSHA_RO', sha, 1, k, o.page, o.mode, STRING_PAGE_BYTES] as [string, ...(string | number | Buffer)[]],
          ),
        );
        if (replies.some(([e]) => e && /NOSCRIPT/.test(e.message))) {
          // The node lost its script cache (restart, failover): load it again and read again.
          await node.pipeline([['SCRIPT', 'LOAD', READ_SCRIPT]]);
          replies = await send(
            node,
            side,
            ks.map(
              (k) =>
                ['EVALSHA_RO', sha, 1, k, o.page, o.mode, STRING_PAGE_BYTES] as [
                  string,
                  ...(string | number | Buffer)[],
                ],
            ),
          );
        }
        ks.forEach((k, i) => {
          const [err, v] = replies[i]!;
          if (err) throw err;
          out.set(k, parseScriptRead(v, o.mode, o.page));
        });
      }),
    );
    return out;
  };

  /** Read keys from both sides and compare them; `found` receives each difference. */
  const compareBatch = async (keys: Buffer[], found: Map<string, Candidate>, recheck: boolean) => {
    if (keys.length === 0) return;
    await limiter.take(keys.length);
    const readStarted = Date.now();
    if (useScript) {
      const [src, tgt] = await Promise.all([scriptReads(source, 'source', keys), scriptReads(target, 'target', keys)]);
      return judge(
        keys,
        src,
        tgt,
        keys.map((k) => src.get(k)!.type),
        found,
        recheck,
        Date.now() - readStarted,
      );
    }
    // Group by owning node on each side: a batch from one source shard may span several target shards.
    const bySource = groupBy(keys, (k) => source.route(k));
    let types: string[] = [];
    const srcTypes = new Map<Buffer, string>();
    if (o.mode !== 'keys') {
      await Promise.all(
        [...bySource].map(async ([node, ks]) => {
          const r = await send(
            node,
            'source',
            ks.map((k) => ['TYPE', k] as [string, Buffer]),
          );
          ks.forEach((k, i) => {
            if (r[i]?.[0]) throw r[i]![0];
            srcTypes.set(k, text(r[i]?.[1] ?? 'none'));
          });
        }),
      );
      types = keys.map((k) => srcTypes.get(k)!);
    }
    const reads = async (ep: Endpoint, side: 'source' | 'target') => {
      const out = new Map<Buffer, KeyRead>();
      // The source's type is known from the first round trip; only the target is asked TYPE again.
      const withType = side === 'target' || o.mode === 'keys';
      await Promise.all(
        [...groupBy(keys, (k) => ep.route(k))].map(async ([node, ks]) => {
          const cmds = ks.map((k) => readCommands(k, srcTypes.get(k) ?? 'none', o.mode, o.page, withType));
          const replies = await send(node, side, cmds.flat());
          let at = 0;
          ks.forEach((k, i) => {
            const n = cmds[i]!.length;
            out.set(k, parseRead(replies.slice(at, at + n), srcTypes.get(k) ?? 'none', o.mode, o.page, withType));
            at += n;
          });
        }),
      );
      return out;
    };
    const [src, tgt] = await Promise.all([reads(source, 'source'), reads(target, 'target')]);
    return judge(keys, src, tgt, types, found, recheck, Date.now() - readStarted);
  };

  /** Compare what both sides said about each key of a batch; page through big keys. */
  // TTLs tick while we read: the tolerance is the configured one plus the time the batch's reads took.
  const judge = async (
    keys: Buffer[],
    src: Map<Buffer, KeyRead>,
    tgt: Map<Buffer, KeyRead>,
    types: string[],
    found: Map<string, Candidate>,
    recheck: boolean,
    readMs: number,
  ) => {
    const tolerance = o.ttlToleranceMs + readMs;
    const paged: Buffer[] = [];
    keys.forEach((k, i) => {
      const s = src.get(k)!;
      const t = tgt.get(k)!;
      if (s.type === 'none') {
        if (!recheck) stats.vanished++;
        return;
      }
      if (!recheck) stats.compared++;
      // The key changed type between our two source reads: it is being written; look again later.
      if (s.type === 'changed') {
        found.set(k.toString('latin1'), {
          key: k,
          kind: 'value',
          source: `changed type while read (was ${types[i]})`,
          target: t.type,
        });
        return;
      }
      const v = compareKey(s, t, o.mode, tolerance);
      if ('page' in v) paged.push(k);
      else if (!v.same) found.set(k.toString('latin1'), { key: k, kind: v.kind, source: v.source, target: v.target });
    });
    for (const k of paged) {
      stats.bigKeys += recheck ? 0 : 1;
      const r = await compareBigKey(source.route(k), target.route(k), k, src.get(k)!.type, o.page);
      stats.pages += r.pages;
      if (r.diff) found.set(k.toString('latin1'), { key: k, kind: 'value', source: r.diff[0], target: r.diff[1] });
      else {
        // Type and length were already found equal; the TTL is what is left.
        const [s, t] = [src.get(k)!.pttl, tgt.get(k)!.pttl];
        if (compareTtl(s, t, tolerance))
          found.set(k.toString('latin1'), { key: k, kind: 'ttl', source: ttlText(s), target: ttlText(t) });
      }
    }
    if (o.streamGroups && o.mode === 'full') {
      for (const k of keys) {
        if (src.get(k)!.type !== 'stream' || found.has(k.toString('latin1'))) continue;
        const [a, b] = await Promise.all([groups(source.route(k), k), groups(target.route(k), k)]);
        if (a !== b)
          found.set(k.toString('latin1'), { key: k, kind: 'value', source: `groups ${a}`, target: `groups ${b}` });
      }
    }
    done += recheck ? 0 : keys.length;
    progress();
  };

  /** Keys present in the target and absent from the source. */
  const extraBatch = async (keys: Buffer[], found: Map<string, Candidate>) => {
    if (keys.length === 0) return;
    await limiter.take(keys.length);
    const exists = async (ep: Endpoint, side: 'source' | 'target') => {
      const out = new Map<Buffer, boolean>();
      await Promise.all(
        [...groupBy(keys, (k) => ep.route(k))].map(async ([node, ks]) => {
          const r = await send(
            node,
            side,
            ks.map((k) => ['EXISTS', k] as [string, Buffer]),
          );
          ks.forEach((k, i) => {
            if (r[i]?.[0]) throw r[i]![0];
            out.set(k, Number(r[i]?.[1]) === 1);
          });
        }),
      );
      return out;
    };
    const [inSource, inTarget] = await Promise.all([exists(source, 'source'), exists(target, 'target')]);
    for (const k of keys)
      if (!inSource.get(k) && inTarget.get(k))
        found.set(k.toString('latin1'), { key: k, kind: 'extra', source: 'no such key', target: 'present' });
  };

  const scanAll = async (ep: Endpoint, side: 'source' | 'target', each: (keys: Buffer[]) => Promise<void>) => {
    await Promise.all(
      ep.masters.map(async (node) => {
        const scan = async (cursor: string) => {
          const [[err, reply]] = (await send(node, side, [['SCAN', cursor, 'COUNT', o.batch]])) as [
            [Error | null, [Buffer, Buffer[]]],
          ];
          if (err) throw err;
          return { cursor: text(reply[0]), keys: reply[1] };
        };
        // The next SCAN is in flight while this batch is compared: one round trip less per batch.
        let next = scan('0');
        for (;;) {
          if (o.signal?.aborted) throw new Error('stopped by the operator');
          const page = await next;
          if (page.cursor !== '0') {
            next = scan(page.cursor);
            next.catch(() => {}); // awaited on the next turn; if this batch fails first, not an unhandled rejection
          }
          await each(o.sample >= 100 ? page.keys : page.keys.filter(() => Math.random() * 100 < o.sample));
          if (page.cursor === '0') break;
        }
      }),
    );
  };

  // Round 1: every key of every source master (and, asked, every target key).
  await scanAll(source, 'source', (keys) => compareBatch(keys, candidates, false));
  if (o.extra) await scanAll(target, 'target', (keys) => extraBatch(keys, candidates));
  differedPerRound.push(candidates.size);
  progress(true);
  o.onRound?.(1, candidates.size, stats.compared);

  // Later rounds: only what differed, after a pause.
  while (round < o.rounds && candidates.size > 0) {
    round++;
    await new Promise((r) => setTimeout(r, o.pauseMs));
    const next = new Map<string, Candidate>();
    const list = [...candidates.values()];
    const extras = list.filter((c) => c.kind === 'extra').map((c) => c.key);
    const others = list.filter((c) => c.kind !== 'extra').map((c) => c.key);
    for (let i = 0; i < others.length; i += o.batch) await compareBatch(others.slice(i, i + o.batch), next, true);
    for (let i = 0; i < extras.length; i += o.batch) await extraBatch(extras.slice(i, i + o.batch), next);
    candidates = next;
    differedPerRound.push(candidates.size);
    progress(true);
    o.onRound?.(round, candidates.size, list.length);
  }

  const elapsedMs = Date.now() - started;
  return {
    mode: o.mode,
    source: source.name,
    target: target.name,
    compared: stats.compared,
    vanished: stats.vanished,
    roundsRun: round,
    differedPerRound,
    differences: [...candidates.values()].map((c) => ({
      key: c.key,
      kind: c.kind,
      source: c.source,
      target: c.target,
    })),
    bigKeys: stats.bigKeys,
    pages: stats.pages,
    elapsedMs,
    keysPerSec: Math.round(stats.compared / Math.max(0.001, elapsedMs / 1000)),
    reads: { sourcePipelines: stats.sourcePipelines, targetPipelines: stats.targetPipelines },
    settings: {
      qps: o.qps,
      batch: o.batch,
      sample: o.sample,
      extra: o.extra,
      ttlToleranceMs: o.ttlToleranceMs,
      streamGroups: o.streamGroups,
    },
  };
}

async function groups(node: NodeClient, key: Buffer): Promise<string> {
  const [[err, v]] = (await node.pipeline([['XINFO', 'GROUPS', key]])) as [[Error | null, unknown[][]]];
  if (err) return 'unreadable';
  return JSON.stringify(
    v
      .map((g) => {
        const o: Record<string, string> = {};
        for (let i = 0; i < g.length; i += 2) o[text(g[i])] = text(g[i + 1]);
        return [o.name, o['last-delivered-id']];
      })
      .sort(),
  );
}

function text(b: unknown): string {
  return Buffer.isBuffer(b) ? b.toString('latin1') : String(b);
}

function groupBy<K>(keys: Buffer[], by: (k: Buffer) => K): Map<K, Buffer[]> {
  const m = new Map<K, Buffer[]>();
  for (const k of keys) {
    const g = by(k);
    const list = m.get(g);
    if (list) list.push(k);
    else m.set(g, [k]);
  }
  return m;
}

export { printableKey };
