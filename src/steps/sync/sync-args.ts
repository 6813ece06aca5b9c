import { Cleanup } from '../../engine/cleanup.js';
import { usageError } from '../../errors.js';
import type { Topology } from '../../redis/topology.js';
import type { KindParam } from '../kind.js';
import { SyncSession, type SyncRecord } from '../../data/engines/session.js';
import type { SyncEngine } from '../../data/engines/engine.js';
import { ScanSession, type ScanRecord } from '../../data/engines/scan-session.js';
import { ShakeSession, type ShakeRecord } from '../../data/engines/shake-session.js';
import { failedError } from '../../errors.js';
import { describeShard } from '../../data/engines/engine.js';
import type { StepRunContext } from '../kind.js';
import { masterKeys } from '../args.js';

export interface SyncArgs {
  source: string;
  target: string;
  engine: 'builtin' | 'redis-shake';
  mode: 'psync' | 'scan';
  /** Bytes of replication stream the target may be behind for cut-over to begin. */
  maxLag: number;
  restorePayloads: boolean;
  bigKeyBytes: number;
  timeoutMs: number;
  pauseWrites: boolean;
  pauseMs: number;
  shakeBinary: string | undefined;
  shakeFormat: 'v4' | 'v2';
  /** Scan mode: follow changes through keyspace notifications (enabled on the source for the sync). */
  notify: boolean;
  /** Keys the target held when the plan was made (deleted in the synced slots before the full sync). */
  targetKeys: number;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1024,
  k: 1024,
  mb: 1048576,
  m: 1048576,
  gb: 1073741824,
  g: 1073741824,
};

/** "64kb", "1mb", "1048576": bytes. */
export function parseBytes(raw: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw usageError(
      'E_PARAM',
      `${name}=${raw} is not a size`,
      `pass ${name}= a number of bytes, or with a unit: 64kb, 1mb, 1gb`,
    );
  return Math.round(Number(m[1]) * unit);
}

function choice<T extends string>(raw: string | undefined, name: string, values: readonly T[], def: T): T {
  const v = (raw || def) as T;
  if (!values.includes(v))
    throw usageError('E_PARAM', `${name}=${raw} is not one of ${values.join(', ')}`, `pass ${name}=${def}`);
  return v;
}

function seconds(raw: string | undefined, name: string, def: number): number {
  const n = raw === undefined || raw === '' ? def : Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw usageError('E_PARAM', `${name}=${raw} is not a positive number of seconds`, `pass ${name}=${def}`);
  return n;
}

/** What every sync step reads (each resolves the same SyncArgs). */
export const SYNC_PARAMS = {
  source: { help: 'the cluster (or standalone server) synced from' },
  target: { help: 'the cluster synced into' },
  engine: { help: 'builtin, or redis-shake (the binary given by shakeBinary)', default: 'builtin' },
  mode: { help: 'psync: full + incremental as a replica; scan: SCAN + DUMP + RESTORE copy', default: 'psync' },
  notify: { help: 'mode=scan: follow changes through keyspace notifications', type: 'bool', default: 'false' },
  'max-lag': { help: 'cut-over waits until every shard is less than this far behind (64kb, 1mb)', default: '64kb' },
  pauseWrites: {
    help: 'true: pause source writes at cut-over until the target holds them all',
    type: 'bool',
    default: 'false',
  },
  pauseSeconds: { help: 'how long the pause lasts at most', type: 'number', default: '30' },
  timeout: {
    help: 'seconds each wait may take before the step fails (the sync goes on)',
    type: 'number',
    default: '3600',
  },
  restorePayloads: {
    help: 'false: rebuild every key with type commands instead of RESTORE',
    type: 'bool',
    default: 'true',
  },
  bigKeyBytes: { help: 'values bigger than this are rebuilt in pieces instead of one RESTORE', default: '8mb' },
  shakeBinary: { help: 'engine=redis-shake: the path of the redis-shake binary' },
  shakeFormat: { help: 'engine=redis-shake: v4 (shake.toml) or v2 (redis-shake.conf)', default: 'v4' },
} as const satisfies Record<string, KindParam>;

export function syncArgs(raw: Record<string, string>, topology: (c: string) => Topology): SyncArgs {
  if (!raw.source || !raw.target)
    throw usageError(
      'E_PARAM',
      'a sync needs a source and a target',
      'pass source=NAME and target=NAME (clusters of the inventory)',
    );
  if (raw.source === raw.target)
    throw usageError('E_PARAM', `source and target are both ${raw.source}`, 'sync into a different cluster');
  const t = topology(raw.target);
  const engine = choice(raw.engine, 'engine', ['builtin', 'redis-shake'] as const, 'builtin');
  const mode = choice(raw.mode, 'mode', ['psync', 'scan'] as const, 'psync');
  if (raw.notify === 'true' && mode !== 'scan')
    throw usageError(
      'E_PARAM',
      'notify=true is for mode=scan (psync mode follows the replication stream)',
      'drop notify, or pass mode=scan',
    );
  if (engine === 'redis-shake' && mode === 'scan')
    throw usageError(
      'E_PARAM',
      'mode=scan is a mode of the built-in engine',
      'use engine=builtin with mode=scan, or engine=redis-shake with mode=psync',
    );
  return {
    source: raw.source,
    target: raw.target,
    engine,
    mode,
    maxLag: parseBytes(raw['max-lag'] || '64kb', 'max-lag'),
    restorePayloads: choice(raw.restorePayloads, 'restorePayloads', ['true', 'false'] as const, 'true') === 'true',
    bigKeyBytes: parseBytes(raw.bigKeyBytes || '8mb', 'bigKeyBytes'),
    timeoutMs: seconds(raw.timeout, 'timeout', 3600) * 1000,
    pauseWrites: choice(raw.pauseWrites, 'pauseWrites', ['true', 'false'] as const, 'false') === 'true',
    pauseMs: seconds(raw.pauseSeconds, 'pauseSeconds', 30) * 1000,
    shakeBinary: raw.shakeBinary || undefined,
    shakeFormat: choice(raw.shakeFormat, 'shakeFormat', ['v4', 'v2'] as const, 'v4'),
    notify: choice(raw.notify, 'notify', ['true', 'false'] as const, 'false') === 'true',
    targetKeys: masterKeys(t),
  };
}

export const SYNC_STATE = 'sync';

/**
 * Where a background sync reports to whichever step waits on it now: its log
 * lines, and that a shard's full sync is partway through loading (a step's
 * failpoint, so a crash test can stop the process mid-load, not only when a poll sees it).
 */
class SyncSink {
  to: (line: string) => void = () => {};
  loading: () => void = () => {};
  async detach(): Promise<void> {}
}

/** The run's sync sink (one per run in this process, shared by its sync steps). */
export function syncSink(ctx: StepRunContext<SyncArgs>): Promise<SyncSink> {
  return ctx.resources.acquire('sync-sink', async () => new SyncSink());
}

/**
 * The run's sync: the one this run keeps open in this process (ctx.resources),
 * else started, from its record after a resume. It outlives the step that
 * started it, not the run: the runner detaches it when the run ends here.
 */
export async function openSync(ctx: StepRunContext<SyncArgs>): Promise<SyncEngine> {
  const sink = await syncSink(ctx);
  sink.to = ctx.log;
  const log = (line: string) => sink.to(line);
  const onEnd = () => ctx.resources.release(SYNC_STATE);
  return ctx.resources.acquire<SyncEngine>(SYNC_STATE, () => startSync(ctx, log, onEnd, () => sink.loading()));
}

function startSync(
  ctx: StepRunContext<SyncArgs>,
  log: (line: string) => void,
  onEnd: () => void,
  onLoading: () => void,
): Promise<SyncEngine> {
  const a = ctx.args;
  const id = ctx.runId;
  if (a.engine === 'redis-shake') {
    return ShakeSession.start({
      id,
      source: ctx.env.pool(a.source),
      target: ctx.env.pool(a.target),
      log,
      onEnd,
      binary: a.shakeBinary,
      format: a.shakeFormat,
      cleanup: new Cleanup(ctx.state),
      load: () => ctx.state.get<ShakeRecord>(SYNC_STATE),
      save: (r) => ctx.state.set(SYNC_STATE, r),
    });
  }
  if (a.mode === 'scan') {
    return ScanSession.start({
      id,
      source: ctx.env.pool(a.source),
      target: ctx.env.pool(a.target),
      log,
      onEnd,
      notify: a.notify,
      cleanup: new Cleanup(ctx.state),
      load: () => ctx.state.get<ScanRecord>(SYNC_STATE),
      save: (r) => ctx.state.set(SYNC_STATE, r),
    });
  }
  return SyncSession.start({
    id,
    source: ctx.env.pool(a.source),
    target: ctx.env.pool(a.target),
    load: () => ctx.state.get<SyncRecord>(SYNC_STATE),
    save: (r) => ctx.state.set(SYNC_STATE, r),
    log,
    onEnd,
    restorePayloads: a.restorePayloads,
    bigKeyBytes: a.bigKeyBytes,
    onLoading,
  });
}

/** The record of the run's sync, without starting anything. */
export function syncRecord(ctx: StepRunContext<SyncArgs>): SyncRecord | undefined {
  return ctx.state.get<SyncRecord>(SYNC_STATE);
}

/**
 * A sync that ended by itself (RedisShake exited) cannot be waited on, and
 * one whose target refused replicated commands no longer mirrors the source:
 * fail now, with the reason.
 */
export function assertRunning(sync: SyncEngine): void {
  const diverged = sync.status().filter((s) => s.failures);
  if (diverged.length) {
    throw failedError(
      'E_SYNC_DIVERGED',
      `the target refused replicated commands, so it differs from the source: ${diverged.map((s) => `shard ${s.shard}: ${s.lastError}`).join('; ')}`,
      'find why the target refuses them (a key of another type, memory, a slot it does not own), fix it, and start a new run: this sync cannot be trusted',
    );
  }
  const dead = sync.status().filter((s) => s.phase === 'stopped');
  if (dead.length) {
    throw failedError(
      'E_SYNC_STOPPED',
      `the sync stopped: ${dead.map(describeShard).join('; ')}${dead[0]!.lastError ? ` (${dead[0]!.lastError})` : ''}`,
      'fix the cause, then retry the step: a retry starts the sync again',
    );
  }
}

/** Words for a failed wait: the sync goes on only while this process runs. */
export const SYNC_GOES_ON =
  'the sync goes on while this run waits for you (a guided run); an unattended run has exited, and `resume` starts the sync again from its checkpoints';
