import { failedError } from '../../errors.js';
import { describeShard } from '../../data/engines/engine.js';
import { syncFigures } from './sync-figures.js';
import { SYNC_GOES_ON, assertRunning, openSync, syncArgs, type SyncArgs, SYNC_PARAMS } from './sync-args.js';
import { onlyReads, pass, waitFor, type StepKind } from '../kind.js';

const STEADY_MS = 3000;

/** Wait until the incremental lag of every shard stays under max-lag (for a few seconds, not one lucky reading). */
export const waitSyncLagStep: StepKind<SyncArgs> = {
  kind: 'wait-sync-lag',
  summary: "Wait until the sync's lag stays under max-lag",
  params: SYNC_PARAMS,
  resolve: syncArgs,
  title: (a) =>
    a.mode === 'scan'
      ? a.notify
        ? 'Wait until every key a notification named was copied within a second, for 3 s'
        : 'Scan mode without notify carries no writes made after the copy: nothing to wait for'
      : `Wait until every shard is less than ${a.maxLag} bytes behind its source master for ${STEADY_MS / 1000} s`,
  failpoints: ['caught-up'],
  commands: (a) => [
    { target: `every master of ${a.source}`, command: 'INFO replication (master_repl_offset), every second' },
  ],
  check: onlyReads,
  async run(ctx) {
    const sync = await openSync(ctx);
    if (!sync.incremental) {
      ctx.log('no incremental sync in this mode');
      return { lag: null };
    }
    let under: number | undefined;
    const ok = await waitFor(
      async () => {
        await sync.refresh();
        if (sync.status().some((s) => s.phase === 'stopped' || s.failures)) return 'stopped' as const; // reported below
        const st = sync.status();
        ctx.progress(st.map(describeShard).join(' | '), syncFigures(st));
        const fine = sync.lagWithin(ctx.args.maxLag);
        if (!fine) {
          under = undefined;
          return undefined;
        }
        under ??= Date.now();
        return Date.now() - under >= STEADY_MS ? st : undefined;
      },
      { timeoutMs: ctx.args.timeoutMs, intervalMs: 500, signal: ctx.signal },
    );
    assertRunning(sync);
    const st = sync.status();
    for (const s of st) ctx.log(describeShard(s));
    ctx.failpoint('caught-up');
    if (!ok) {
      throw failedError(
        'E_SYNC_LAGGING',
        `the sync stayed more than ${ctx.args.maxLag} bytes behind for ${Math.round(ctx.args.timeoutMs / 1000)} s: ${st.map(describeShard).join('; ')}`,
        `${SYNC_GOES_ON}; retry the step, lower the write load, or raise max-lag`,
      );
    }
    return { lag: st.map((s) => ({ shard: s.shard, lagBytes: s.lagBytes, lagMs: s.lagMs, opsPerSec: s.opsPerSec })) };
  },
  verify: async () => [pass('lag', 'under max-lag when the step ended (it moves with the write load)')],
};
