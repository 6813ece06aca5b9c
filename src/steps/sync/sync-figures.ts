import type { ShardStatus } from '../../data/engines/shard-sync.js';
import type { ProgressFigures } from '../../engine/step-contract.js';

/**
 * The figures of a sync across its shards, for the progress table, `status` and metrics:
 * phase (full-sync until every shard streams, then incremental), keys written, RDB bytes
 * received out of the known sizes, and the worst lag.
 */
export function syncFigures(st: ShardStatus[]): ProgressFigures {
  const full = st.some((s) => s.phase !== 'stream' && s.phase !== 'stopped');
  const sum = (f: (s: ShardStatus) => number | undefined) => st.reduce((a, s) => a + (f(s) ?? 0), 0);
  const max = (f: (s: ShardStatus) => number | undefined) => {
    const v = st.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v) : undefined;
  };
  const sized = st.every((s) => s.rdbSize !== undefined) && st.length > 0;
  const f: ProgressFigures = {
    phase: full ? 'full-sync' : 'incremental',
    keys: sum((s) => s.keys),
    keysPerSec: sum((s) => s.opsPerSec),
    lagBytes: max((s) => s.lagBytes),
    lagMs: max((s) => s.lagMs),
  };
  // While the full sync loads: bytes received of the RDBs' sizes is the bar.
  if (full && sized) Object.assign(f, { unit: 'bytes', done: sum((s) => s.rdbReceived), total: sum((s) => s.rdbSize) });
  return f;
}
