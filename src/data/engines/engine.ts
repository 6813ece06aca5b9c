import type { ShardStatus } from './shard-sync.js';

/**
 * What the runbook's steps see of a running sync, whichever engine runs it
 * (built-in psync, built-in scan, RedisShake): per-shard status, a fresh
 * lag reading, and the two ways to end it.
 */
export interface SyncEngine {
  readonly engine: string;
  /** False when nothing carries writes made after the full copy (scan mode without notifications). */
  readonly incremental: boolean;
  status(): ShardStatus[];
  refresh(): Promise<void>;
  /** True when every shard is in its incremental phase and within `maxLag` bytes (or, without offsets, a second) of its source. */
  lagWithin(maxLag: number): boolean;
  /**
   * Wait until the target holds every write the source took before this
   * call (cut-over, ideally with source writes paused); false on timeout.
   */
  catchUp(o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<boolean>;
  /** The sync is over (cut-over): stop it and clean up what it left in the target. */
  stop(): Promise<void>;
  /** This process is going away: stop reading, leave everything for a resume. */
  detach(): Promise<void>;
}

/** One line per shard, for progress and logs. */
export function describeShard(s: ShardStatus): string {
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
  const head = `shard ${s.shard} (${s.ranges}${s.master ? ` @ ${s.master}` : ''})`;
  if (s.phase === 'connecting') return `${head}: connecting${s.lastError ? ` (last error: ${s.lastError})` : ''}`;
  if (
    s.phase === 'full' &&
    s.pendingKeys === undefined &&
    s.applied === undefined &&
    s.sourceOffset === undefined &&
    !s.rdbReceived
  )
    return `${head}: copying, ${s.keys} keys written`;
  if (s.phase === 'full') {
    const pct = s.rdbSize ? ` ${Math.floor((100 * s.rdbReceived) / s.rdbSize)}%` : '';
    return `${head}: full sync${pct}, ${mb(s.rdbReceived)}${s.rdbSize ? `/${mb(s.rdbSize)}` : ''} received, ${s.keys} keys written`;
  }
  if (s.phase === 'stopped') return `${head}: stopped at offset ${s.applied ?? '?'}`;
  if (s.pendingKeys !== undefined)
    return `${head}: following changes, ${s.pendingKeys} key(s) to copy${s.lagMs !== undefined ? ` (oldest ${s.lagMs} ms)` : ''}, ${s.opsPerSec} keys/s`;
  if (s.lagBytes === undefined && s.lagMs === undefined) return `${head}: full copy done, ${s.keys} keys`;
  return `${head}: incremental, lag ${s.lagBytes ?? '?'} bytes${s.lagMs !== undefined ? ` (${s.lagMs} ms)` : ''}, ${s.opsPerSec} ops/s`;
}
