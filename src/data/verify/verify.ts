import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';
import { createHash } from 'node:crypto';
import { printsShortestScores } from '../../redis/server-identity.js';
import {
  readCommands,
  parseRead,
  parseScriptRead,
  READ_SCRIPT,
  READ_MANY_SCRIPT,
  READ_MANY_KEYS,
  STRING_PAGE_BYTES,
  scriptModeArg,
  type VerifyMode,
  type KeyRead,
  type ScriptMode,
} from './key-read.js';
import {
  compareFieldTtls,
  compareKey,
  compareTtl,
  ttlText,
  printableKey,
  type Difference,
  type DifferenceKind,
} from './compare.js';
import { compareBigKey } from './big-key.js';
import { compareBigHashFieldTtls, fieldTtlKeys, readFieldExpiry, type FieldSet, type Send } from './field-ttl.js';
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
  /** false: TTLs (keys' and hash fields') are not compared (`verify --no-ttl`, what RedisFullCheck compares). */
  ttl?: boolean;
  /** Pause before each recheck round, so keys still changing under a live sync can converge. */
  pauseMs: number;
  /** Elements per page for big keys. */
  page: number;
  /** Compare stream consumer groups (names and last-delivered-id) too. */
  streamGroups: boolean;
  /** false: never use the read script, even on Redis 7+ (the path older servers take). */
  useScripts?: boolean;
  /** false: full mode reads every value instead of server-made digests first (for benchmarks and tests). */
  digests?: boolean;
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
  /**
   * Hash fields with their own TTL (Redis 7.4): the keys that have some on each side when the
   * comparison started, and whether they were compared (full mode, and some key has them).
   */
  fieldTtls: { sourceKeys: number; targetKeys: number; compared: boolean };
  /**
   * Full mode compared server-made digests first; `reread`: keys whose digests differed, read
   * again whole; `scoresAsPrinted`: zset scores went into them as the servers print them.
   */
  digests: { used: boolean; reread: number; scoresAsPrinted: boolean };
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
  return new Verification(source, target, o).run();
}

type Side = 'source' | 'target';

/** One run of verifyData: its rounds, and the counters and candidates they share. */
class Verification {
  private readonly started = Date.now();
  private readonly limiter: RateLimiter;
  private readonly stats = {
    sourcePipelines: 0,
    targetPipelines: 0,
    bigKeys: 0,
    pages: 0,
    vanished: 0,
    compared: 0,
    reread: 0,
  };
  private total = 0;
  private candidates = new Map<string, Candidate>();
  private readonly differedPerRound: number[] = [];
  private round = 1;
  private done = 0;
  private lastProgress = 0;
  // One script call per key and side where both sides run Redis 7+ (full and length modes).
  private readonly useScript: boolean;
  private readonly sha = createHash('sha1').update(READ_SCRIPT).digest('hex');
  private readonly shaMany = createHash('sha1').update(READ_MANY_SCRIPT).digest('hex');
  private readonly loaded = new Set<NodeClient>();
  // Hash-field TTLs on either side when the comparison started (the gate: see fieldTtlKeys).
  private fieldTtls = { sourceKeys: 0, targetKeys: 0, compared: false };
  // Full mode through the script reads digests first (see READ_SCRIPT): the runner then
  // parses five short replies per key instead of every element. Not when hash-field TTLs
  // are compared: those need each hash's field names.
  private digest = false;
  // Every master of both sides prints zset scores alike: digests take them as printed.
  private readonly rawScores: boolean;

  constructor(
    private readonly source: Endpoint,
    private readonly target: Endpoint,
    private readonly o: VerifyOptions,
  ) {
    this.limiter = new RateLimiter(o.qps);
    this.useScript = !!(o.useScripts !== false && o.mode !== 'keys' && source.scripts && target.scripts);
    const printing = [source, target].flatMap((ep) => ep.masters.map((m) => printsShortestScores(ep.server(m))));
    this.rawScores = printing.every((p) => p === printing[0]);
  }

  async run(): Promise<VerifyReport> {
    const { o, source, target } = this;
    this.total = Math.round(((await source.keyCount()) * o.sample) / 100);
    const withFieldTtls = await fieldTtlKeys(source, target);
    this.fieldTtls = {
      sourceKeys: withFieldTtls.source,
      targetKeys: withFieldTtls.target,
      // Reading them needs every field's name: the full mode reads those anyway.
      compared: o.mode === 'full' && o.ttl !== false && withFieldTtls.source + withFieldTtls.target > 0,
    };
    this.digest = this.useScript && o.mode === 'full' && !this.fieldTtls.compared && o.digests !== false;
    // Round 1: every key of every source master (and, asked, every target key).
    await this.scanAll(source, 'source', (keys) => this.compareBatch(keys, this.candidates, false));
    if (o.extra) await this.scanAll(target, 'target', (keys) => this.extraBatch(keys, this.candidates));
    this.differedPerRound.push(this.candidates.size);
    this.progress(true);
    o.onRound?.(1, this.candidates.size, this.stats.compared);

    // Later rounds: only what differed, after a pause.
    while (this.round < o.rounds && this.candidates.size > 0) await this.recheckRound();
    return this.report();
  }

  /** A later round: recheck what differed in the round before, after a pause. */
  private async recheckRound(): Promise<void> {
    const o = this.o;
    this.round++;
    await new Promise((r) => setTimeout(r, o.pauseMs));
    const next = new Map<string, Candidate>();
    const list = [...this.candidates.values()];
    const extras = list.filter((c) => c.kind === 'extra').map((c) => c.key);
    const others = list.filter((c) => c.kind !== 'extra').map((c) => c.key);
    for (let i = 0; i < others.length; i += o.batch) await this.compareBatch(others.slice(i, i + o.batch), next, true);
    for (let i = 0; i < extras.length; i += o.batch) await this.extraBatch(extras.slice(i, i + o.batch), next);
    this.candidates = next;
    this.differedPerRound.push(this.candidates.size);
    this.progress(true);
    o.onRound?.(this.round, this.candidates.size, list.length);
  }

  private report(): VerifyReport {
    const { o, stats } = this;
    const elapsedMs = Date.now() - this.started;
    return {
      mode: o.mode,
      source: this.source.name,
      target: this.target.name,
      compared: stats.compared,
      vanished: stats.vanished,
      roundsRun: this.round,
      differedPerRound: this.differedPerRound,
      differences: [...this.candidates.values()].map((c) => ({
        key: c.key,
        kind: c.kind,
        source: c.source,
        target: c.target,
      })),
      bigKeys: stats.bigKeys,
      pages: stats.pages,
      fieldTtls: this.fieldTtls,
      digests: { used: this.digest, reread: stats.reread, scoresAsPrinted: this.digest && this.rawScores },
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

  private progress(force = false): void {
    const now = Date.now();
    if (!this.o.onProgress || (!force && now - this.lastProgress < 1000)) return;
    this.lastProgress = now;
    const rate = this.done / Math.max(0.001, (now - this.started) / 1000);
    this.o.onProgress({
      round: this.round,
      rounds: this.o.rounds,
      done: this.done,
      total: this.total,
      keysPerSec: Math.round(rate),
      etaSec: rate > 0 && this.round === 1 ? Math.max(0, Math.round((this.total - this.done) / rate)) : undefined,
      differ: this.candidates.size,
    });
  }

  /** A pipeline to one node, counted for the report. */
  private send(node: NodeClient, side: Side, cmds: Parameters<NodeClient['pipeline']>[0]) {
    if (side === 'source') this.stats.sourcePipelines++;
    else this.stats.targetPipelines++;
    return node.pipeline(cmds);
  }

  /**
   * Keys read by the read scripts, grouped by owning node: many keys a call
   * where replies are short (digests, lengths), else one EVALSHA_RO per key.
   */
  private async scriptReads(
    ep: Endpoint,
    side: Side,
    keys: Buffer[],
    mode: ScriptMode = this.o.mode,
  ): Promise<Map<Buffer, KeyRead>> {
    const out = new Map<Buffer, KeyRead>();
    const many = mode === 'digest' || mode === 'length';
    await Promise.all(
      [...groupBy(keys, (k) => ep.route(k))].map(async ([node, ks]) => {
        const rest = many ? await this.readMany(node, side, ks, mode, out) : ks;
        if (rest.length) await this.readEach(node, side, rest, mode, out);
      }),
    );
    return out;
  }

  /** SCRIPT LOAD of both read scripts on a node, once (and again after NOSCRIPT: it restarted or failed over). */
  private async loadScripts(node: NodeClient, again = false): Promise<void> {
    if (this.loaded.has(node) && !again) return;
    await node.pipeline([
      ['SCRIPT', 'LOAD', READ_SCRIPT],
      ['SCRIPT', 'LOAD', READ_MANY_SCRIPT],
    ]);
    this.loaded.add(node);
  }

  /** Pipelined calls, sent again once after the node's script cache was lost. */
  private async sendScripts(node: NodeClient, side: Side, cmds: Parameters<NodeClient['pipeline']>[0]) {
    await this.loadScripts(node);
    let replies = await this.send(node, side, cmds);
    if (replies.some(([e]) => e && /NOSCRIPT/.test(e.message))) {
      await this.loadScripts(node, true);
      replies = await this.send(node, side, cmds);
    }
    return replies;
  }

  /** One EVALSHA_RO per key. */
  private async readEach(node: NodeClient, side: Side, ks: Buffer[], mode: ScriptMode, out: Map<Buffer, KeyRead>) {
    const page = this.o.page;
    const replies = await this.sendScripts(
      node,
      side,
      ks.map((k) => ['EVALSHA_RO', this.sha, 1, k, page, scriptModeArg(mode, this.rawScores), STRING_PAGE_BYTES]),
    );
    ks.forEach((k, i) => {
      const [err, v] = replies[i]!;
      if (err) throw err;
      out.set(k, parseScriptRead(v, mode, page));
    });
  }

  /**
   * READ_MANY_KEYS keys per EVALSHA_RO, the keys passed as arguments. Such
   * keys are not checked by the cluster the way declared ones are: a call
   * with a key of a slot this node does not serve fails, and a key missing
   * here may have moved with its slot (MIGRATING, where a declared key gets
   * ASK). So the keys of a failed call, and the missing ones, are returned,
   * to be read one call each, which say which key and why.
   */
  private async readMany(node: NodeClient, side: Side, ks: Buffer[], mode: ScriptMode, out: Map<Buffer, KeyRead>) {
    const page = this.o.page;
    const groups: Buffer[][] = [];
    for (let i = 0; i < ks.length; i += READ_MANY_KEYS) groups.push(ks.slice(i, i + READ_MANY_KEYS));
    const replies = await this.sendScripts(
      node,
      side,
      groups.map((g) => [
        'EVALSHA_RO',
        this.shaMany,
        0,
        page,
        scriptModeArg(mode, this.rawScores),
        STRING_PAGE_BYTES,
        ...g,
      ]),
    );
    const rest: Buffer[] = [];
    groups.forEach((g, i) => {
      const [err, v] = replies[i]!;
      if (err) {
        rest.push(...g);
        return;
      }
      g.forEach((k, j) => {
        const read = parseScriptRead((v as unknown[])[j], mode, page);
        if (read.type === 'none') rest.push(k);
        else out.set(k, read);
      });
    });
    return rest;
  }

  /** Read keys from both sides and compare them; `found` receives each difference. */
  private async compareBatch(keys: Buffer[], found: Map<string, Candidate>, recheck: boolean): Promise<void> {
    const { source, target } = this;
    if (keys.length === 0) return;
    await this.limiter.take(keys.length);
    const readStarted = Date.now();
    if (this.useScript) {
      const mode = this.digest ? 'digest' : this.o.mode;
      const [src, tgt] = await Promise.all([
        this.scriptReads(source, 'source', keys, mode),
        this.scriptReads(target, 'target', keys, mode),
      ]);
      return this.judge(
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
    const srcTypes = new Map<Buffer, string>();
    let types: string[] = [];
    if (this.o.mode !== 'keys') {
      await this.readSourceTypes(keys, srcTypes);
      types = keys.map((k) => srcTypes.get(k)!);
    }
    const [src, tgt] = await Promise.all([
      this.commandReads(source, 'source', keys, srcTypes),
      this.commandReads(target, 'target', keys, srcTypes),
    ]);
    return this.judge(keys, src, tgt, types, found, recheck, Date.now() - readStarted);
  }

  /** TYPE of each key on the source, into `srcTypes`: it decides which commands read the key. */
  private async readSourceTypes(keys: Buffer[], srcTypes: Map<Buffer, string>): Promise<void> {
    await Promise.all(
      [...groupBy(keys, (k) => this.source.route(k))].map(async ([node, ks]) => {
        const r = await this.send(
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
  }

  /** Keys read by plain commands (no read script), grouped by owning node. */
  private async commandReads(
    ep: Endpoint,
    side: Side,
    keys: Buffer[],
    srcTypes: Map<Buffer, string>,
  ): Promise<Map<Buffer, KeyRead>> {
    const o = this.o;
    const out = new Map<Buffer, KeyRead>();
    // The source's type is known from the first round trip; only the target is asked TYPE again.
    const withType = side === 'target' || o.mode === 'keys';
    await Promise.all(
      [...groupBy(keys, (k) => ep.route(k))].map(async ([node, ks]) => {
        const cmds = ks.map((k) => readCommands(k, srcTypes.get(k) ?? 'none', o.mode, o.page, withType));
        const replies = await this.send(node, side, cmds.flat());
        let at = 0;
        ks.forEach((k, i) => {
          const n = cmds[i]!.length;
          out.set(k, parseRead(replies.slice(at, at + n), srcTypes.get(k) ?? 'none', o.mode, o.page, withType));
          at += n;
        });
      }),
    );
    return out;
  }

  /** The key TTL tolerance for reads that took `readMs` (TTLs tick meanwhile); undefined with `--no-ttl`. */
  private ttlTolerance(readMs: number): number | undefined {
    return this.o.ttl === false ? undefined : this.o.ttlToleranceMs + readMs;
  }

  /** Compare what both sides said about each key of a batch; page through big keys. */
  // TTLs tick while we read: the tolerance is the configured one plus the time the batch's reads took.
  private async judge(
    keys: Buffer[],
    src: Map<Buffer, KeyRead>,
    tgt: Map<Buffer, KeyRead>,
    types: string[],
    found: Map<string, Candidate>,
    recheck: boolean,
    readMs: number,
  ): Promise<void> {
    const { o, stats } = this;
    const tolerance = this.ttlTolerance(readMs);
    const paged: Buffer[] = [];
    const reread: Buffer[] = [];
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
      else if ('reread' in v) reread.push(k);
      else if (!v.same) found.set(k.toString('latin1'), { key: k, kind: v.kind, source: v.source, target: v.target });
    });
    await this.judgeBigKeys(paged, src, tgt, found, recheck, tolerance);
    await this.judgeByValue(reread, found, recheck);
    if (this.fieldTtls.compared) await this.judgeFieldTtls(keys, src, found);
    if (o.streamGroups && o.mode === 'full') await this.judgeStreamGroups(keys, src, found);
    this.done += recheck ? 0 : keys.length;
    this.progress();
  }

  /**
   * The keys whose digests differ, read again with their values so the difference can be
   * named. Rare on a good copy; on a bad one the cost is the values the digests spared.
   * Counted once already: this pass only judges.
   */
  private async judgeByValue(keys: Buffer[], found: Map<string, Candidate>, recheck: boolean): Promise<void> {
    if (keys.length === 0) return;
    this.stats.reread += keys.length;
    const started = Date.now();
    const [src, tgt] = await Promise.all([
      this.scriptReads(this.source, 'source', keys, 'full'),
      this.scriptReads(this.target, 'target', keys, 'full'),
    ]);
    const tolerance = this.ttlTolerance(Date.now() - started);
    const paged: Buffer[] = [];
    for (const k of keys) {
      const [s, t] = [src.get(k)!, tgt.get(k)!];
      // Deleted from the source since its digest was read: nothing to compare any more.
      if (s.type === 'none') continue;
      const v = compareKey(s, t, 'full', tolerance);
      if ('page' in v) paged.push(k);
      else if (!('same' in v && v.same) && 'kind' in v)
        found.set(k.toString('latin1'), { key: k, kind: v.kind, source: v.source, target: v.target });
      // Equal on a second read: the digests were read while the key was written. Equal now.
    }
    await this.judgeBigKeys(paged, src, tgt, found, recheck, tolerance);
  }

  /** The keys too big for one reply, compared page by page. */
  private async judgeBigKeys(
    paged: Buffer[],
    src: Map<Buffer, KeyRead>,
    tgt: Map<Buffer, KeyRead>,
    found: Map<string, Candidate>,
    recheck: boolean,
    tolerance: number | undefined,
  ): Promise<void> {
    const stats = this.stats;
    for (const k of paged) {
      stats.bigKeys += recheck ? 0 : 1;
      const r = await compareBigKey(this.source.route(k), this.target.route(k), k, src.get(k)!.type, this.o.page);
      stats.pages += r.pages;
      if (r.diff) found.set(k.toString('latin1'), { key: k, kind: 'value', source: r.diff[0], target: r.diff[1] });
      else {
        // Type and length were already found equal; the TTL is what is left.
        const [s, t] = [src.get(k)!.pttl, tgt.get(k)!.pttl];
        if (tolerance !== undefined && compareTtl(s, t, tolerance))
          found.set(k.toString('latin1'), { key: k, kind: 'ttl', source: ttlText(s), target: ttlText(t) });
      }
    }
  }

  /**
   * The hash fields' own TTLs, for the hashes found otherwise equal (values, key TTL): their
   * field names are the source's, which the target was found to have. A hash read whole gives
   * them from its value read, and all such hashes of the batch are asked in one pipeline per
   * node; a big one is paged like its values. Absolute expiry times: the configured tolerance,
   * without the read time (see compareFieldTtls).
   */
  private async judgeFieldTtls(keys: Buffer[], src: Map<Buffer, KeyRead>, found: Map<string, Candidate>) {
    const hashes = keys.filter((k) => src.get(k)!.type === 'hash' && !found.has(k.toString('latin1')));
    const small: FieldSet[] = hashes
      .filter((k) => !src.get(k)!.more)
      .map((k) => ({ key: k, fields: src.get(k)!.flat!.filter((_, i) => i % 2 === 0) }));
    const tolerance = this.o.ttlToleranceMs;
    const note = (k: Buffer, d: [string, string]) =>
      found.set(k.toString('latin1'), { key: k, kind: 'field-ttl', source: d[0], target: d[1] });
    const [a, b] = await Promise.all([
      readFieldExpiry(this.source, small, this.sender('source')),
      readFieldExpiry(this.target, small, this.sender('target')),
    ]);
    for (const h of small) {
      const d = compareFieldTtls(h.fields, a.get(h.key)!, b.get(h.key)!, tolerance);
      if (d) note(h.key, d);
    }
    const [bigSrc, bigTgt] = [
      { ep: this.source, send: this.sender('source') },
      { ep: this.target, send: this.sender('target') },
    ];
    for (const k of hashes.filter((k) => src.get(k)!.more)) {
      const r = await compareBigHashFieldTtls(bigSrc, bigTgt, k, this.o.page, tolerance);
      this.stats.pages += r.pages;
      if (r.diff) note(k, r.diff);
    }
  }

  private sender(side: Side): Send {
    return (node, cmds) => this.send(node, side, cmds);
  }

  /** The consumer groups of the streams not already found different. */
  private async judgeStreamGroups(
    keys: Buffer[],
    src: Map<Buffer, KeyRead>,
    found: Map<string, Candidate>,
  ): Promise<void> {
    for (const k of keys) {
      if (src.get(k)!.type !== 'stream' || found.has(k.toString('latin1'))) continue;
      const [a, b] = await Promise.all([groups(this.source.route(k), k), groups(this.target.route(k), k)]);
      if (a !== b)
        found.set(k.toString('latin1'), { key: k, kind: 'value', source: `groups ${a}`, target: `groups ${b}` });
    }
  }

  /** Keys present in the target and absent from the source. */
  private async extraBatch(keys: Buffer[], found: Map<string, Candidate>): Promise<void> {
    if (keys.length === 0) return;
    await this.limiter.take(keys.length);
    const [inSource, inTarget] = await Promise.all([
      this.exists(this.source, 'source', keys),
      this.exists(this.target, 'target', keys),
    ]);
    for (const k of keys)
      if (!inSource.get(k) && inTarget.get(k))
        found.set(k.toString('latin1'), { key: k, kind: 'extra', source: 'no such key', target: 'present' });
  }

  /** EXISTS of each key on one side, grouped by owning node. */
  private async exists(ep: Endpoint, side: Side, keys: Buffer[]): Promise<Map<Buffer, boolean>> {
    const out = new Map<Buffer, boolean>();
    await Promise.all(
      [...groupBy(keys, (k) => ep.route(k))].map(async ([node, ks]) => {
        const r = await this.send(
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
  }

  /** SCAN every master of one side, handing each page of keys (sampled) to `each`. */
  private async scanAll(ep: Endpoint, side: Side, each: (keys: Buffer[]) => Promise<void>): Promise<void> {
    const o = this.o;
    await Promise.all(
      ep.masters.map(async (node) => {
        const scan = async (cursor: string) => {
          const [[err, reply]] = (await this.send(node, side, [['SCAN', cursor, 'COUNT', o.batch]])) as [
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
  }
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
