import { failedError } from '../../errors.js';
import { describeShard } from '../../data/engines/engine.js';
import { syncFigures } from './sync-figures.js';
import { assertRunning, openSync, syncArgs, syncRecord, type SyncArgs, SYNC_PARAMS } from './sync-args.js';
import { openEndpoint } from '../../data/endpoint.js';
import { cond, pass, throwIfStopped, type StepKind } from '../kind.js';

interface CutOver {
  at: string;
  paused: boolean;
  pausedUntil: string | null;
  offsets: Array<{ shard: number; master: string | undefined; offset: number | undefined }>;
}

/**
 * The moment the target takes over. With pauseWrites, writes to the source
 * are paused (CLIENT PAUSE WRITE, which ends by itself: a crash never leaves
 * the source paused for good) and the step waits until the target holds
 * every write the source took; without it, everything written before the
 * step began. Then the sync stops and its checkpoint keys leave the target.
 * In a guided run the operator decides when, by confirming this step.
 */
export const cutOverStep: StepKind<SyncArgs> = {
  kind: 'cut-over',
  summary: 'Cut over: catch up completely (optionally with source writes paused), then stop the sync',
  params: SYNC_PARAMS,
  resolve: syncArgs,
  title: (a) =>
    a.pauseWrites
      ? `Cut over: pause writes on ${a.source} for ${a.pauseMs / 1000} s, wait until ${a.target} holds every write, stop the sync; switch clients to ${a.target} while paused`
      : `Cut over: wait until ${a.target} holds every write made to ${a.source} before this step, then stop the sync (later writes to ${a.source} are not carried)`,
  commands: (a) => [
    ...(a.pauseWrites ? [{ target: `every master of ${a.source}`, command: `CLIENT PAUSE ${a.pauseMs} WRITE` }] : []),
    {
      target: `every master of ${a.source}`,
      command: 'INFO replication (master_repl_offset), until the target has applied it',
    },
    {
      target: `every master of ${a.target}`,
      command: 'DEL redis-runbook:sync:{tag}:<run>:<shard> (the checkpoint keys)',
    },
  ],
  async check(ctx) {
    if (ctx.planning) return [pass('checked when the step runs', 'the sync it stops is started by an earlier step')];
    const r = syncRecord(ctx);
    const out = [
      cond(
        'a sync to cut over',
        !!r,
        r?.stopped ? 'already stopped (cut over before)' : `${r?.shards.length ?? 0} shard(s) syncing`,
        'no sync was started in this run',
      ),
    ];
    if (r && !r.stopped) {
      // What the operator decides on (a guided run asks right after this): the lag now.
      const sync = await openSync(ctx);
      await sync.refresh();
      out.push(pass('lag now', sync.status().map(describeShard).join('; ')));
    }
    return out;
  },
  async run(ctx) {
    const a = ctx.args;
    const done = ctx.state.get<CutOver>('cutover');
    if (syncRecord(ctx)?.stopped && done) {
      ctx.log('the sync was stopped before: nothing to do again');
      return done;
    }
    const sync = await openSync(ctx);
    assertRunning(sync);
    const source = ctx.env.pool(a.source);
    let pausedUntil: number | undefined;
    if (a.pauseWrites) {
      // The masters as the source sees them now; every link must be reading from one of them,
      // or the pause would stop the wrong node and the catch-up compare with the wrong offset.
      const ep = await openEndpoint(source);
      const masters = ep.masters.map((m) => m.address);
      const astray = sync.status().filter((s) => s.master && !masters.includes(s.master));
      if (astray.length) {
        throw failedError(
          'E_SYNC_MOVED',
          `${astray.map((s) => `shard ${s.shard} reads from ${s.master}`).join('; ')}, which is not a master of ${a.source} now (${masters.join(', ')})`,
          'a source failover is being followed: retry the step in a few seconds',
        );
      }
      pausedUntil = Date.now() + a.pauseMs;
      await Promise.all(masters.map((m) => source.node(m).call('CLIENT', 'PAUSE', String(a.pauseMs), 'WRITE')));
      ctx.log(
        `writes to ${a.source} paused until ${new Date(pausedUntil).toISOString()} (CLIENT UNPAUSE on ${masters.join(', ')} ends it earlier)`,
      );
    }
    const caughtUp = await sync.catchUp({
      timeoutMs: a.pauseWrites ? Math.max(1000, a.pauseMs - 2000) : a.timeoutMs,
      signal: ctx.signal,
      onProgress: (l) => ctx.progress(l, { ...syncFigures(sync.status()), phase: 'catch-up' }),
    });
    throwIfStopped(ctx.signal);
    assertRunning(sync);
    if (!caughtUp) {
      throw failedError(
        'E_SYNC_LAGGING',
        `the target did not catch up ${a.pauseWrites ? 'while writes were paused' : 'in time'}: ${sync.status().map(describeShard).join('; ')}`,
        a.pauseWrites
          ? 'the pause ends by itself; retry the step (maybe with a longer pauseSeconds) once the lag is low'
          : 'retry the step once the lag is low',
      );
    }
    const offsets = sync.status().map((s) => ({ shard: s.shard, master: s.master, offset: s.applied }));
    await sync.stop();
    const out: CutOver = {
      at: new Date().toISOString(),
      paused: a.pauseWrites,
      pausedUntil: pausedUntil ? new Date(pausedUntil).toISOString() : null,
      offsets,
    };
    ctx.state.set('cutover', out);
    ctx.log(
      `sync stopped; ${a.target} holds every write ${a.pauseWrites ? `${a.source} took before the pause` : 'made before the cut-over began'}: switch clients to ${a.target}${a.pauseWrites ? ` before ${out.pausedUntil}` : ''}`,
    );
    return out;
  },
  async verify(ctx) {
    const r = syncRecord(ctx);
    return [
      cond(
        'sync stopped',
        !!r?.stopped,
        'the sync is stopped and what it kept in the target (checkpoint keys) is deleted',
        'the sync is still running',
      ),
      pass('clients', 'switch them to the target now'),
    ];
  },
};
