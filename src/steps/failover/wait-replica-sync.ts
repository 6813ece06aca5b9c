import { failedError } from '../../errors.js';
import { replicationOf } from '../../redis/failover.js';
import { answers } from '../../redis/node-state.js';
import type { FailoverPair } from '../../redis/failover.js';
import { deferredUntilFailover, failoverArgs, FAILOVER_PARAMS } from '../args.js';
import { cond, pass, fail, waitFor, type StepKind, type StepRunContext } from '../kind.js';

type Args = { cluster: string; reverse: boolean; timeoutMs: number } & FailoverPair;

/** Is the candidate already the master (a resumed run after the failover happened)? */
async function promoted(ctx: StepRunContext<Args>): Promise<boolean> {
  // A fail-back waits for a node that may be down for maintenance: not answering is not promoted.
  const r = await replicationOf(ctx.env.pool(ctx.args.cluster), ctx.args.candidate.address).catch((err) => {
    if (ctx.args.reverse) return undefined;
    throw err;
  });
  return r?.role === 'master';
}

async function lag(ctx: StepRunContext<Args>): Promise<{ linkUp: boolean; lag: number; master: string | undefined }> {
  const pool = ctx.env.pool(ctx.args.cluster);
  // Master first, replica second: a replica at or past the master's earlier offset has caught
  // up to that point; reading both at once under steady writes would almost never show 0 lag.
  const m = await replicationOf(pool, ctx.args.master.address);
  const r = await replicationOf(pool, ctx.args.candidate.address);
  const master = r.masterHost ? `${r.masterHost}:${r.masterPort}` : undefined;
  return { linkUp: r.linkUp, lag: m.offset - r.offset, master };
}

export const waitReplicaSyncStep: StepKind<Args> = {
  kind: 'wait-replica-sync',
  summary: 'Wait until the replica is connected and its replication offset has caught up with its master',
  params: {
    ...FAILOVER_PARAMS,
    syncTimeoutMs: {
      help: 'how long the replica may take to catch up (ms; default 30000, 600000 for a fail-back)',
      type: 'number',
    },
  },
  // A fail-back waits through the maintenance of the original master's host: ten minutes by default.
  resolve: (raw, topology) => {
    const a = failoverArgs(raw, topology);
    return { ...a, timeoutMs: Number(raw.syncTimeoutMs ?? (a.reverse ? 600_000 : 30_000)) };
  },
  // The replica's (re)sync with its master, as both of them tell it.
  logNodes: (a) => ({ cluster: a.cluster, nodes: [a.candidate.address, a.master.address] }),
  title: (a) =>
    a.reverse
      ? `Fail-back: wait until the original master ${a.candidate.address} is back and in sync as replica of ${a.master.address} (finish the maintenance before you continue)`
      : a.mode === 'default'
        ? `Wait until replica ${a.candidate.address} has caught up with master ${a.master.address}`
        : `Replica ${a.candidate.address}: no sync wait (mode ${a.mode}, master may be down)`,
  commands: (a) =>
    a.mode === 'default'
      ? [
          { target: a.candidate.address, command: 'INFO replication' },
          { target: a.master.address, command: 'INFO replication' },
        ]
      : [],
  async check(ctx) {
    const a = ctx.args;
    if (ctx.planning && deferredUntilFailover(a)) return deferredUntilFailover(a)!;
    if (a.mode !== 'default')
      return [pass('mode', `mode ${a.mode}: the master may be unreachable, its offset is not compared`)];
    if (await promoted(ctx)) return [pass('already promoted', `${a.candidate.address} is already a master`)];
    if (a.reverse && !(await answers(ctx.env.pool(a.cluster), a.candidate.address))) {
      return [
        pass(
          'waits for it',
          `${a.candidate.address} does not answer yet (maintenance?); the step waits up to ${Math.round(a.timeoutMs / 1000)} s for it to come back and catch up`,
        ),
      ];
    }
    const s = await lag(ctx);
    return [
      cond(
        'replica of the master',
        s.master === a.master.address,
        `${a.candidate.address} replicates ${a.master.address}`,
        `${a.candidate.address} replicates ${s.master ?? 'nothing'}, not ${a.master.address}`,
      ),
      cond(
        'replication link up',
        s.linkUp,
        'master_link_status:up',
        'master_link_status is down: the replica is not connected to its master',
      ),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    if (a.mode !== 'default' || (await promoted(ctx))) return { skipped: true };
    const started = Date.now();
    const ok = await waitFor(
      async () => {
        const s = await lag(ctx);
        return s.linkUp && s.lag <= 0 ? s : undefined;
      },
      { timeoutMs: a.timeoutMs, intervalMs: 50, signal: ctx.signal },
    );
    if (!ok) {
      const s = await lag(ctx);
      throw failedError(
        'E_REPLICA_LAGGING',
        `replica ${a.candidate.address} is ${s.lag} bytes behind ${a.master.address} after ${a.timeoutMs} ms`,
        'reduce the write load or wait, then retry the step',
      );
    }
    return { caughtUpMs: Date.now() - started };
  },
  async verify(ctx) {
    const a = ctx.args;
    if (a.mode !== 'default') return [pass('mode', `mode ${a.mode}`)];
    if (await promoted(ctx)) return [pass('already promoted', `${a.candidate.address} is already a master`)];
    const s = await lag(ctx);
    return [
      s.linkUp && s.lag <= 0
        ? pass('offset caught up', `replica offset equals the master's`)
        : fail('offset caught up', `replica is ${s.lag} bytes behind (link ${s.linkUp ? 'up' : 'down'})`),
    ];
  },
};
