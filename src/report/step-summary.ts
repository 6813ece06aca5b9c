import { fmtBytes, fmtField, fmtMs, plural } from './units.js';

/**
 * One line an operator reads instead of a step's output JSON: what the step
 * did and measured, by kind ("promoted 127.0.0.1:7003 3761 ms after the
 * stop; ..."). Used by `run` (step done), `show` and the report; the JSON
 * itself stays in `show --json`. A kind with no summary here gets a few of
 * its numbers as key=value, so a new kind is never silent.
 */
type O = Record<string, unknown>;
type Summarize = (o: O, ms: number | undefined) => string | undefined;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const arr = (v: unknown): O[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as O[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const took = (ms: number | undefined) => (ms === undefined ? '' : ` in ${fmtMs(ms)}`);
const sum = (rows: O[], k: string) => rows.reduce((n, r) => n + (num(r[k]) ?? 0), 0);

/** check-cluster, verify-cluster, verify-copy: the shards they saw. */
const shards: Summarize = (o) => {
  const s = arr(o.shards);
  if (!s.length) return undefined;
  const keys = s.some((x) => num(x.keys) !== undefined) ? `, ${plural(sum(s, 'keys'), 'key')}` : '';
  return `${plural(s.length, 'master')} with slots${keys}`;
};

const moved: Summarize = (o) => {
  const slots = num(o.slots);
  if (slots === undefined) return undefined;
  if (slots === 0) return 'no slot to move';
  return `moved ${plural(slots, 'slot')} (${plural(num(o.keys) ?? 0, 'key')})${took(num(o.ms))}`;
};

const drill: Summarize = (o) => {
  const parts: string[] = [];
  const nm = str(o.newMaster);
  const p = num(o.promotionMs);
  if (nm)
    parts.push(`${nm} promoted${p === undefined ? '' : ` ${fmtMs(p)} after the stop`} (${str(o.method) ?? 'stop'})`);
  const un = num(o.unavailableMs);
  if (un !== undefined) parts.push(`writes failed for ${fmtMs(un)}`);
  const acked = num(o.writesAcked);
  const lost = num(o.writesLost);
  if (lost !== undefined) parts.push(`${lost} of ${acked ?? '?'} acknowledged writes lost`);
  const ok = num(o.timeToOkMs);
  if (ok !== undefined) parts.push(`cluster ok after ${fmtMs(ok)}`);
  return parts.length ? parts.join('; ') : undefined;
};

const failover: Summarize = (o) => {
  if (o.alreadyPromoted) return o.resumed ? 'already promoted (found on resume)' : 'already promoted';
  const p = num(o.promotionMs);
  return p === undefined ? undefined : `promoted in ${fmtMs(p)}`;
};

const agreement: Summarize = (o) => {
  const ms = num(o.failoverToAgreementMs);
  return ms === undefined ? 'all nodes agree' : `all nodes agreed ${fmtMs(ms)} after the failover was sent`;
};

const verifyData: Summarize = (o) => {
  const c = num(o.compared);
  if (c === undefined) return undefined;
  const v = num(o.vanished);
  const rate = num(o.keysPerSec);
  return (
    `compared ${plural(c, 'key')}: ${num(o.differ) ?? 0} differ` +
    (v ? `, ${v} vanished meanwhile` : '') +
    (rate ? ` (${rate} keys/s)` : '')
  );
};

const copies: Summarize = (o, ms) => {
  const c = arr(o.copies);
  if (!c.length) return undefined;
  const done = c.filter((x) => x.copied !== false);
  return `copied ${plural(done.length, 'file')} (${fmtBytes(sum(done, 'bytes'))})${took(ms)}`;
};

const persisted: Summarize = (o) => {
  const s = arr(o.shards);
  if (!s.length) return undefined;
  const what = `${str(o.format)?.toUpperCase() ?? 'snapshot'} file`;
  return `saved ${plural(s.length, what)} (${plural(sum(s, 'keys'), 'key')})`;
};

const count =
  (field: string, verb: string, what = 'node'): Summarize =>
  (o) => {
    const v = o[field];
    const n = Array.isArray(v) ? v.length : num(v);
    return n === undefined ? undefined : `${verb} ${plural(n, what)}`;
  };

const restarted: Summarize = (o) => {
  const m = str(o.master);
  if (!m) return undefined;
  const sync = num(o.syncMs);
  const synced = sync === undefined ? '' : `, in sync after ${fmtMs(sync)}`;
  return `${o.restarted ? 'restarted' : 'already running'}; replica of ${m}${synced}`;
};

const lag: Summarize = (o) => {
  const l = arr(o.lag);
  if (!l.length) return o.lag === null ? 'no sync running' : undefined;
  const maxOf = (k: string) => Math.max(...l.map((x) => num(x[k]) ?? 0));
  return `lag at most ${fmtBytes(maxOf('lagBytes'))} / ${fmtMs(maxOf('lagMs'))} over ${plural(l.length, 'shard')}`;
};

const fullSync: Summarize = (o) => {
  const s = arr(o.shards);
  if (!s.length) return undefined;
  const keys = plural(sum(s, 'keys'), 'key');
  return `full sync of ${plural(s.length, 'shard')}: ${keys}, ${fmtBytes(sum(s, 'rdbBytes'))} of RDB`;
};

const SUMMARIES: Record<string, Summarize> = {
  'check-cluster': shards,
  'verify-cluster': shards,
  'verify-copy': shards,
  'move-slot-plan': moved,
  'move-slots': moved,
  'drill-fail-master': drill,
  'cluster-failover': failover,
  'wait-for-agreement': agreement,
  'verify-data': verifyData,
  'copy-shard-files': copies,
  'persist-masters': persisted,
  'stop-nodes': count('stopped', 'stopped'),
  'start-nodes': count('started', 'started'),
  'match-shards': count('pairs', 'matched', 'pair of shards'),
  'restart-as-replica': restarted,
  'wait-sync-lag': lag,
  'wait-full-sync': fullSync,
  'start-sync': (o) =>
    arr(o.shards).length
      ? `${str(o.engine) ?? 'sync'} started for ${plural(arr(o.shards).length, 'shard')}`
      : undefined,
  'wait-replica-sync': (o) =>
    o.skipped
      ? 'nothing to wait for'
      : num(o.caughtUpMs) === undefined
        ? undefined
        : `replica caught up in ${fmtMs(num(o.caughtUpMs)!)}`,
  'shutdown-node': (o) => (o.alreadyDown ? 'already down' : str(o.via) ? `stopped (${str(o.via)})` : undefined),
  'backup-node-files': (o) => (str(o.backup) ? `backup ${str(o.backup)}` : undefined),
  'delete-node-files': count('deleted', 'deleted', 'file'),
};

/** A few of the output's numbers as key=value, for a kind with no summary (or an output it does not recognise). */
function generic(o: O): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (parts.length >= 4) break;
    if (typeof v === 'number') parts.push(`${k}=${fmtField(k, v)}`);
    else if (typeof v === 'boolean' || (typeof v === 'string' && v.length <= 40)) parts.push(`${k}=${v}`);
    else if (Array.isArray(v)) parts.push(`${k}: ${v.length}`);
  }
  return parts.join(', ');
}

/** The summary line of a step's output; '' when there is nothing to say. `ms`: how long the step took. */
export function stepSummary(kind: string, output: unknown, ms?: number): string {
  if (!output || typeof output !== 'object' || Array.isArray(output)) return '';
  const o = output as O;
  let line: string | undefined;
  try {
    line = SUMMARIES[kind]?.(o, ms);
  } catch {
    // An output of an older shape than the summary expects: the generic line says something true.
    line = undefined;
  }
  return line ?? generic(o);
}
