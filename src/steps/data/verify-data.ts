import { usageError } from '../../errors.js';
import { openEndpoint } from '../../data/endpoint.js';
import {
  verifyData,
  VERIFY_DEFAULTS,
  printableKey,
  type VerifyOptions,
  type VerifyReport,
} from '../../data/verify/verify.js';
import type { VerifyMode } from '../../data/verify/key-read.js';
import { cond, pass, type KindParam, type StepKind } from '../kind.js';

type Args = { source: string; target: string } & Omit<VerifyOptions, 'onProgress' | 'signal'>;

function int(raw: string | undefined, name: string, def: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw usageError(
      'E_PARAM',
      `${name}=${raw} is not an integer in ${min}..${max}`,
      `pass ${name}=${def} or another value in range`,
    );
  return n;
}

function bool(raw: string | undefined, name: string): boolean {
  if (raw === undefined || raw === '' || raw === 'false' || raw === 'no') return false;
  if (raw === 'true' || raw === 'yes') return true;
  throw usageError('E_PARAM', `${name}=${raw} is not true or false`, `pass ${name}=true`);
}

/** What a comparison reads (the step's parameters, and the `verify` command's flags). */
export const VERIFY_PARAMS = {
  source: { help: 'the cluster compared from' },
  target: { help: 'the cluster compared with' },
  mode: {
    help: 'full (type, value and TTL), length (type, length and TTL) or keys (existence and type)',
    default: VERIFY_DEFAULTS.mode,
  },
  rounds: {
    help: 'comparison rounds; each later one rechecks only what differed',
    type: 'number',
    default: String(VERIFY_DEFAULTS.rounds),
  },
  qps: {
    help: 'keys read per second at most on each side (0: no limit)',
    type: 'number',
    default: String(VERIFY_DEFAULTS.qps),
  },
  batch: { help: 'keys per pipelined batch', type: 'number', default: String(VERIFY_DEFAULTS.batch) },
  sample: { help: 'percentage of keys checked (100: all)', type: 'number', default: String(VERIFY_DEFAULTS.sample) },
  extra: { help: 'true: also look for keys the target has and the source does not', type: 'bool', default: 'false' },
  ttlToleranceMs: {
    help: 'TTLs that differ by less than this are equal (ms)',
    type: 'number',
    default: String(VERIFY_DEFAULTS.ttlToleranceMs),
  },
  ttl: {
    help: "false: TTLs (keys' and hash fields') are not compared, as RedisFullCheck does not compare them",
    type: 'bool',
    default: 'true',
  },
  pauseMs: { help: 'pause between two rounds (ms)', type: 'number', default: String(VERIFY_DEFAULTS.pauseMs) },
  page: {
    help: 'elements per page when a big value is read in pages',
    type: 'number',
    default: String(VERIFY_DEFAULTS.page),
  },
  streamGroups: { help: "true: compare streams' consumer groups too", type: 'bool', default: 'false' },
} as const satisfies Record<string, KindParam>;

/** Arguments of a comparison, validated (shared by the step and the `verify` command). */
export function verifyArgs(raw: Record<string, string>): Args {
  const mode = (raw.mode || VERIFY_DEFAULTS.mode) as VerifyMode;
  if (!['full', 'length', 'keys'].includes(mode))
    throw usageError(
      'E_PARAM',
      `mode=${mode} is not a verify mode`,
      'use full (type, value and TTL), length (type, length and TTL) or keys (existence and type)',
    );
  const sample = raw.sample === undefined || raw.sample === '' ? 100 : Number(raw.sample);
  if (!(sample > 0 && sample <= 100))
    throw usageError(
      'E_PARAM',
      `sample=${raw.sample} is not a percentage in (0, 100]`,
      'pass sample=10 to check a random 10% of keys',
    );
  if (!raw.source || !raw.target)
    throw usageError(
      'E_PARAM',
      'verify needs a source and a target',
      'pass source=NAME and target=NAME (clusters of the inventory)',
    );
  if (raw.source === raw.target)
    throw usageError('E_PARAM', `source and target are both ${raw.source}`, 'compare two different clusters');
  return {
    source: raw.source,
    target: raw.target,
    mode,
    rounds: int(raw.rounds, 'rounds', VERIFY_DEFAULTS.rounds, 1, 100),
    qps: int(raw.qps, 'qps', VERIFY_DEFAULTS.qps, 0, 10_000_000),
    batch: int(raw.batch, 'batch', VERIFY_DEFAULTS.batch, 1, 10_000),
    sample,
    extra: bool(raw.extra, 'extra'),
    ttlToleranceMs: int(raw.ttlToleranceMs, 'ttlToleranceMs', VERIFY_DEFAULTS.ttlToleranceMs, 0, 86_400_000),
    // Compared unless turned off (runbooks that verify a copy never turn it off).
    ttl: raw.ttl === undefined || raw.ttl === '' || bool(raw.ttl, 'ttl'),
    pauseMs: int(raw.pauseMs, 'pauseMs', VERIFY_DEFAULTS.pauseMs, 0, 600_000),
    page: int(raw.page, 'page', VERIFY_DEFAULTS.page, 10, 100_000),
    streamGroups: bool(raw.streamGroups, 'streamGroups'),
  };
}

export function describeSettings(a: Args): string {
  return `mode ${a.mode}, ${a.rounds} round(s), ${a.qps ? `at most ${a.qps} keys/s per cluster` : 'no rate limit'}, batch ${a.batch}${a.sample < 100 ? `, a random ${a.sample}% of keys` : ''}${a.extra ? ', keys only in the target too' : ''}, ${a.ttl === false ? 'TTLs not compared' : `TTL tolerance ${a.ttlToleranceMs} ms`}${a.mode === 'full' ? (a.streamGroups ? ', stream consumer groups compared' : ', stream consumer groups not compared') : ''}`;
}

/**
 * Whether hash fields' own TTLs (Redis 7.4) were compared, said only where some key has them:
 * a comparison of servers without them would otherwise print a line about nothing.
 */
export function describeFieldTtls(f: VerifyReport['fieldTtls'], mode: VerifyMode): string | undefined {
  if (!f.sourceKeys && !f.targetKeys) return undefined;
  const have = `${f.sourceKeys} source key(s) and ${f.targetKeys} target key(s) have some`;
  return f.compared
    ? `hash-field TTLs compared (HPEXPIRETIME): ${have}`
    : `hash-field TTLs not compared in ${mode} mode (full mode compares them): ${have}`;
}

export interface VerifyOutput extends Omit<VerifyReport, 'differences'> {
  differ: number;
  byKind: Record<string, number>;
}

export const verifyDataStep: StepKind<Args> = {
  kind: 'verify-data',
  summary: 'Compare every key of the source with the target (type, value, TTL), in rounds',
  params: VERIFY_PARAMS,
  resolve: (raw) => verifyArgs(raw),
  title: (a) => `Compare ${a.source} with ${a.target}: ${describeSettings(a)}`,
  commands: (a) => [
    {
      target: `every master of ${a.source}`,
      command: `SCAN cursor COUNT ${a.batch}; then per key ${a.mode === 'keys' ? 'TYPE' : 'TYPE, PTTL, length and value reads (GET/LRANGE/HSCAN/SSCAN/ZSCAN/XRANGE)'} in pipelines (Redis 7+ on both sides: one EVALSHA_RO read script per key${a.mode === 'full' ? ' that answers a SHA-1 digest of the value; keys whose digests differ are read again whole' : ''})${a.mode === 'full' ? "; HPEXPIRETIME of each hash's fields where either side has hash-field TTLs (Redis 7.4+ only)" : ''}`,
    },
    {
      target: `the owner of each key in ${a.target}`,
      command: `the same reads, routed by slot${a.extra ? '; SCAN of every master and EXISTS on the source for keys only in the target' : ''}`,
    },
  ],
  async check(ctx) {
    const [s, t] = await Promise.all([
      openEndpoint(ctx.env.pool(ctx.args.source)),
      openEndpoint(ctx.env.pool(ctx.args.target)),
    ]);
    return [
      pass('source readable', `${s.name}: ${s.kind}, ${s.masters.length} master(s)`),
      pass('target readable', `${t.name}: ${t.kind}, ${t.masters.length} master(s)`),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    const [s, t] = await Promise.all([openEndpoint(ctx.env.pool(a.source)), openEndpoint(ctx.env.pool(a.target))]);
    ctx.log(describeSettings(a));
    const report = await verifyData(s, t, {
      ...a,
      signal: ctx.signal,
      onRound: (round, differ, compared) =>
        ctx.log(
          `round ${round}: ${compared} keys checked, ${differ} differ${differ && round < a.rounds ? `; rechecking them in ${a.pauseMs} ms` : ''}`,
        ),
      onProgress: (p) =>
        ctx.progress(
          `round ${p.round}/${p.rounds}: ${p.done}/${p.total} keys (${p.total ? Math.floor((100 * p.done) / p.total) : 100}%), ${p.keysPerSec} keys/s${p.etaSec !== undefined ? `, ETA ${p.etaSec}s` : ''}, ${p.differ} differ`,
          {
            unit: 'keys',
            phase: `round ${p.round}/${p.rounds}`,
            done: p.done,
            total: p.total,
            rate: p.keysPerSec,
            keysPerSec: p.keysPerSec,
            etaMs: p.etaSec !== undefined ? p.etaSec * 1000 : undefined,
            differences: p.differ,
          },
        ),
    });
    const fieldTtls = describeFieldTtls(report.fieldTtls, a.mode);
    if (fieldTtls) ctx.log(fieldTtls);
    if (report.digests.reread) ctx.log(`${report.digests.reread} keys had other digests and were read again whole`);
    ctx.saveFindings(
      report.differences.map((d) => ({ key: printableKey(d.key), kind: d.kind, source: d.source, target: d.target })),
    );
    const pool = ctx.env.pool(a.source);
    pool.recordSummary(a.source, 'PIPELINE-READS', [
      `${report.reads.sourcePipelines} pipelines`,
      `${report.compared} keys`,
    ]);
    ctx.env.pool(a.target).recordSummary(a.target, 'PIPELINE-READS', [`${report.reads.targetPipelines} pipelines`]);
    const byKind: Record<string, number> = {};
    for (const d of report.differences) byKind[d.kind] = (byKind[d.kind] ?? 0) + 1;
    const { differences, ...rest } = report;
    const out: VerifyOutput = { ...rest, differ: differences.length, byKind };
    return out;
  },
  async verify(ctx) {
    const out = ctx.outputs[ctx.stepId] as VerifyOutput | undefined;
    if (!out) return [{ name: 'compared', ok: false, reason: 'no comparison result recorded' }];
    const kinds = Object.entries(out.byKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    return [
      cond(
        'no differences',
        out.differ === 0,
        `${out.compared} keys compared, none differ`,
        `${out.differ} of ${out.compared} keys differ (${kinds}); \`redis-runbook show RUN_ID\` lists them`,
      ),
    ];
  },
};
