import { failedError } from '../../errors.js';
import { describeShard, type SyncEngine } from '../../data/engines/engine.js';
import { syncFigures } from './sync-figures.js';
import {
  SYNC_GOES_ON,
  assertRunning,
  openSync,
  syncArgs,
  syncRecord,
  syncSink,
  type SyncArgs,
  SYNC_PARAMS,
} from './sync-args.js';
import { cond, onlyReads, waitFor, type StepKind, type StepRunContext } from '../kind.js';

/** Wait until every shard's full sync is loaded into the target (the sync runs on in the background). */
export const waitFullSyncStep: StepKind<SyncArgs> = {
  kind: 'wait-full-sync',
  summary: "Wait until every source shard's full sync is loaded into the target",
  params: SYNC_PARAMS,
  resolve: syncArgs,
  title: (a) => `Wait for the full sync of every shard of ${a.source} (at most ${Math.round(a.timeoutMs / 1000)} s)`,
  // Reached while a shard's full sync has keys written and is not finished: after an RDB chunk
  // loads (from the engine, not only when the 250 ms poll happens to see it) or at a poll.
  failpoints: ['loading'],
  commands: (a) => [{ target: `every master of ${a.source}`, command: 'INFO replication (offsets, for progress)' }],
  check: onlyReads,
  async run(ctx) {
    const sync = await openSync(ctx);
    const sink = await syncSink(ctx);
    sink.loading = () => ctx.failpoint('loading');
    try {
      return await waitLoaded(ctx, sync);
    } finally {
      sink.loading = () => {};
    }
  },
  async verify(ctx) {
    const r = syncRecord(ctx);
    const loaded = r?.shards.filter((s) => s.state.loaded).length ?? 0;
    return [
      cond(
        'every shard loaded',
        !!r && loaded === r.shards.length,
        `${loaded} shard(s) loaded`,
        `${loaded} of ${r?.shards.length ?? 0} shards loaded`,
      ),
    ];
  },
};

/** Poll the shards (logging each change of phase) until every one is loaded; the step's output. */
async function waitLoaded(ctx: StepRunContext<SyncArgs>, sync: SyncEngine) {
  let lastPhase = '';
  const done = await waitFor(
    async () => {
      if (sync.status().some((s) => s.phase === 'stopped' || s.failures)) return 'stopped' as const; // reported below
      const st = sync.status();
      const phases = st.map((s) => s.phase).join(',');
      if (phases !== lastPhase) {
        lastPhase = phases;
        for (const s of st) ctx.log(describeShard(s));
      }
      ctx.progress(st.map(describeShard).join(' | '), syncFigures(st));
      if (st.some((s) => s.phase === 'full' && s.keys > 0)) ctx.failpoint('loading');
      return st.every((s) => s.phase === 'stream') ? st : undefined;
    },
    { timeoutMs: ctx.args.timeoutMs, intervalMs: 250, signal: ctx.signal },
  );
  assertRunning(sync);
  if (!done) {
    throw failedError(
      'E_SYNC_TIMEOUT',
      `the full sync did not finish within ${Math.round(ctx.args.timeoutMs / 1000)} s: ${sync.status().map(describeShard).join('; ')}`,
      `${SYNC_GOES_ON}; retry the step to wait again (or pass a longer timeout)`,
    );
  }
  const r = syncRecord(ctx)!;
  return {
    shards: r.shards.map((sh, i) => ({
      shard: i,
      ranges: sh.ranges,
      keys: sh.state.keys,
      rdbBytes: sh.state.rdbBytes,
      fullSyncMs: sh.state.fullSyncMs,
      fullSyncs: sh.state.fullSyncs,
      partialSyncs: sh.state.partialSyncs,
      why: sh.state.fullSyncWhy,
    })),
  };
}
