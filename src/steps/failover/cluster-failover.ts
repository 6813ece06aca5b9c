import { failedError } from '../../errors.js';
import { parseClusterNodes, isMaster } from '../../redis/cluster-nodes.js';
import { replicationOf, type FailoverPair } from '../../redis/failover.js';
import { answers } from '../../redis/node-state.js';
import { deferredUntilFailover, failoverArgs, FAILOVER_PARAMS } from '../args.js';
import {
  earlierIntent,
  cond,
  fail,
  pass,
  throwIfStopped,
  waitFor,
  type Condition,
  type StepKind,
  type StepRunContext,
} from '../kind.js';

type Args = { cluster: string; reverse: boolean; promoteTimeoutMs: number } & FailoverPair;

// A manual failover that does not complete is abandoned by the replica after
// CLUSTER_MF_TIMEOUT (5000 ms, redis cluster.h); the master's write pause ends then.
const MF_TIMEOUT_MS = 5000;

async function isPromoted(ctx: StepRunContext<Args>): Promise<boolean> {
  return (await replicationOf(ctx.env.pool(ctx.args.cluster), ctx.args.candidate.address)).role === 'master';
}

/** FORCE: the master must really be gone. TAKEOVER: there must really be no majority. */
async function modeConditions(ctx: StepRunContext<Args>): Promise<Condition[]> {
  const { args: a } = ctx;
  const pool = ctx.env.pool(a.cluster);
  const masterUp = await answers(pool, a.master.address);
  if (a.mode === 'default') {
    return [
      cond(
        'master reachable',
        masterUp,
        `${a.master.address} answers`,
        `${a.master.address} does not answer; a default failover needs the master's agreement (use mode=force if it is down for good)`,
      ),
    ];
  }
  if (a.mode === 'force') {
    // Not answering us is not enough (a partition between this host and the master):
    // the replica must have lost its master too.
    const r = await replicationOf(pool, a.candidate.address);
    return [
      cond(
        'master unreachable',
        !masterUp,
        `${a.master.address} does not answer`,
        `${a.master.address} answers: FORCE is refused while the master is reachable, use mode=default (it loses nothing)`,
      ),
      cond(
        'replica lost its master',
        !r.linkUp,
        `${a.candidate.address} reports master_link_status:down`,
        `${a.candidate.address} still has a live link to ${a.master.address}: the master only looks down from here`,
      ),
    ];
  }
  const view = parseClusterNodes(await pool.node(a.candidate.address).text('CLUSTER', 'NODES'));
  const slotMasters = view.filter((l) => isMaster(l) && l.slots.length > 0);
  const up = (
    await Promise.all(slotMasters.map(async (l) => !l.flags.includes('fail') && (await answers(pool, l.address))))
  ).filter(Boolean).length;
  const majority = Math.floor(slotMasters.length / 2) + 1;
  return [
    cond(
      'no majority of masters',
      up < majority,
      `${up} of ${slotMasters.length} masters answer, fewer than the ${majority} an election needs`,
      `${up} of ${slotMasters.length} masters answer: an election can be won, TAKEOVER is refused (use mode=default or mode=force)`,
    ),
  ];
}

async function preconditions(ctx: StepRunContext<Args>): Promise<Condition[]> {
  const a = ctx.args;
  if (ctx.planning && deferredUntilFailover(a)) return deferredUntilFailover(a)!;
  const pool = ctx.env.pool(a.cluster);
  if (!(await answers(pool, a.candidate.address)))
    return [fail('replica reachable', `${a.candidate.address} does not answer`)];
  if (await isPromoted(ctx))
    return [pass('already promoted', `${a.candidate.address} is already master; nothing to send`)];
  const r = await replicationOf(pool, a.candidate.address);
  const master = `${r.masterHost}:${r.masterPort}`;
  return [
    cond(
      'replica of the master',
      master === a.master.address,
      `${a.candidate.address} replicates ${a.master.address}`,
      `${a.candidate.address} replicates ${master}, not ${a.master.address}: the topology changed, make a new plan`,
    ),
    ...(await modeConditions(ctx)),
  ];
}

export const clusterFailoverStep: StepKind<Args> = {
  kind: 'cluster-failover',
  summary: 'Send CLUSTER FAILOVER to the replica and wait until it reports itself master',
  params: {
    ...FAILOVER_PARAMS,
    promoteTimeoutMs: {
      help: 'how long the replica may take to report itself master (ms)',
      type: 'number',
      default: '15000',
    },
  },
  resolve: (raw, topology) => ({
    ...failoverArgs(raw, topology),
    promoteTimeoutMs: Number(raw.promoteTimeoutMs ?? 15000),
  }),
  title: (a) =>
    `${a.reverse ? 'Fail-back: promote the original master' : 'Promote'} ${a.candidate.address} in place of ${a.master.address} (CLUSTER FAILOVER${a.mode === 'default' ? '' : ` ${a.mode.toUpperCase()}`})`,
  failpoints: ['sent'],
  // The election is told by every node: the replica asks, the other masters vote.
  logNodes: (a) => ({ cluster: a.cluster }),
  commands: (a) => [
    {
      target: a.candidate.address,
      command: `CLUSTER FAILOVER${a.mode === 'default' ? '' : ` ${a.mode.toUpperCase()}`}`,
      when: 'unless it is already master',
    },
    { target: a.candidate.address, command: 'INFO replication', when: 'until role:master' },
  ],
  destructive(a) {
    if (a.mode === 'force')
      return 'FORCE promotes the replica without the master: writes the master acknowledged but did not replicate are lost';
    if (a.mode === 'takeover')
      return 'TAKEOVER promotes the replica without an election: two masters may claim the same slots until the cluster converges';
    return undefined;
  },
  check: preconditions,
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    if (await isPromoted(ctx)) return { alreadyPromoted: true };
    const earlier = earlierIntent(ctx, 'failover');
    if (earlier) {
      // An earlier attempt was about to send CLUSTER FAILOVER (it may have) when it died or failed.
      // Let it finish (or expire) before sending another: a second one restarts the handshake.
      const settle = earlier.at + MF_TIMEOUT_MS + 1000 - Date.now();
      if (settle > 0) {
        ctx.log(`an earlier attempt may still be in progress; waiting up to ${settle} ms before sending again`);
        if (
          await waitFor(async () => ((await isPromoted(ctx)) ? true : undefined), {
            timeoutMs: settle,
            intervalMs: 50,
            signal: ctx.signal,
          })
        ) {
          return { alreadyPromoted: true, resumed: true };
        }
      }
    }
    // The check may be long past (a prompt left open, a resume): look again right before acting.
    throwIfStopped(ctx.signal);
    const now = await preconditions(ctx);
    if (now.some((c) => c.name === 'already promoted')) return { alreadyPromoted: true };
    const bad = now.filter((c) => !c.ok);
    if (bad.length)
      throw failedError(
        'E_PRECONDITION_CHANGED',
        `no longer safe to send CLUSTER FAILOVER: ${bad.map((c) => `${c.name}: ${c.reason}`).join('; ')}`,
        'look at the cluster (`redis-runbook check`); retry, or abort and make a new plan',
      );
    throwIfStopped(ctx.signal);
    const sentAt = Date.now();
    ctx.intent('failover', { mode: a.mode, replica: a.candidate.address });
    await pool
      .node(a.candidate.address)
      .call('CLUSTER', 'FAILOVER', ...(a.mode === 'default' ? [] : [a.mode.toUpperCase()]));
    ctx.failpoint('sent');
    // +OK is no guarantee (CLUSTER FAILOVER docs): completion is the replica reporting role:master.
    const done = await waitFor(async () => ((await isPromoted(ctx)) ? true : undefined), {
      timeoutMs: a.promoteTimeoutMs,
      intervalMs: 20,
      signal: ctx.signal,
    });
    if (!done) {
      throw failedError(
        'E_FAILOVER_TIMEOUT',
        `${a.candidate.address} was still a replica ${a.promoteTimeoutMs} ms after CLUSTER FAILOVER`,
        'read its log for "Manual failover timed out": the master did not pause in time, or the other masters refused their votes (they vote about one master at most once per 2 x cluster-node-timeout, so a failover of the same shard just before this one blocks it); retry the step after that window',
      );
    }
    return { sentAt, promotedAt: Date.now(), promotionMs: Date.now() - sentAt };
  },
  async verify(ctx) {
    return [
      cond(
        'replica promoted',
        await isPromoted(ctx),
        `${ctx.args.candidate.address} reports role:master`,
        `${ctx.args.candidate.address} is still a replica`,
      ),
    ];
  },
};
