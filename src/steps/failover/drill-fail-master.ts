import { failedError, messageOf, usageError } from '../../errors.js';
import { Canary, type CanaryReport } from '../../redis/canary.js';
import { parseClusterNodes, isMaster } from '../../redis/cluster-nodes.js';
import { replicaEligibility, whyNoPromotion } from '../../redis/election.js';
import { replicationOf, resolveFailoverPair, type NodeRef } from '../../redis/failover.js';
import { answers, clusterState } from '../../redis/node-state.js';
import { formatRanges, type SlotRange } from '../../redis/slots.js';
import { findNode, replicasOf } from '../../redis/topology.js';
import { clusterArg, numberParam, NODE_PARAMS } from '../args.js';
import {
  earlierIntent,
  cond,
  fail,
  pass,
  serviceCommand,
  throwIfStopped,
  waitFor,
  type Condition,
  type StepKind,
  type StepRunContext,
} from '../kind.js';

export type DrillMethod = 'shutdown' | 'kill';

export interface DrillArgs {
  cluster: string;
  master: NodeRef;
  ranges: SlotRange[];
  replicas: NodeRef[];
  /** The replica an election should rank first (highest offset): checked in sync before the drill. */
  candidate: NodeRef;
  method: DrillMethod;
  nodeTimeoutMs: number;
  /** How long to wait for a promotion before saying why none happened. */
  giveUpMs: number;
  nodes: string[];
  canaryIntervalMs: number;
  /** The canary writes at least this long before the stop, so that a replica lagging less than this is measured. */
  canaryLeadMs: number;
}

/** What the step reports, in `show --json` under this step's output. */
export interface DrillReport {
  method: DrillMethod;
  stoppedAt: number;
  newMaster: string;
  promotionMs: number | null;
  timeToOkMs: number | null;
  /** When this process saw cluster_state:ok, from the stop: equal to timeToOkMs when measured, an upper bound after a resume. */
  okSeenAfterMs: number;
  /** false when the run was resumed after the master was stopped: the canary's numbers are gone with that process. */
  measured: boolean;
  unavailableMs: number | null;
  writesAcked: number | null;
  writesLost: number | null;
  canary: CanaryReport | null;
}

/**
 * Bound on waiting for an automatic failover (cluster.c): failure detection
 * takes the node timeout, an election waits 500-1000 ms plus 1 s per better
 * ranked replica, and an election that got no majority is retried after
 * 2 x max(2 x node timeout, 2 s). Two full attempts fit in this bound.
 */
export function promotionBoundMs(nodeTimeoutMs: number, replicas: number): number {
  const authTimeout = Math.max(2 * nodeTimeoutMs, 2000);
  return nodeTimeoutMs + 1000 + 1000 * replicas + 2 * authTimeout * 2;
}

/** The outage an operator should expect: detection, FAIL reports by gossip, then the election delay. */
export function expectedOutage(nodeTimeoutMs: number): string {
  return `${((nodeTimeoutMs + 500) / 1000).toFixed(1)}-${((nodeTimeoutMs * 1.5 + 2500) / 1000).toFixed(1)} s`;
}

function parseMethod(raw: string | undefined): DrillMethod {
  const m = raw ?? 'shutdown';
  if (m !== 'shutdown' && m !== 'kill')
    throw usageError(
      'E_PARAM',
      `method=${m} is not a drill method`,
      "use method=shutdown (SHUTDOWN on the node) or method=kill (its host's service.kill command)",
    );
  return m;
}

const isUnreachable = (err: unknown) =>
  /unreachable|Connection is closed|ECONNRESET|EPIPE|ECONNREFUSED/i.test(messageOf(err));

/** Does the master still answer as a master that owns its slots? */
async function stillMaster(ctx: StepRunContext<DrillArgs>): Promise<boolean> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  try {
    const r = await replicationOf(pool, a.master.address);
    if (r.role !== 'master') return false;
    const me = parseClusterNodes(await pool.node(a.master.address).text('CLUSTER', 'NODES')).find((l) =>
      l.flags.includes('myself'),
    );
    return !!me && me.slots.length > 0;
  } catch {
    return false;
  }
}

function stopCommand(ctx: StepRunContext<DrillArgs>): string | undefined {
  return ctx.args.method === 'kill' ? ctx.env.host(ctx.args.master.address)?.service('kill') : undefined;
}

/** The stop an earlier attempt of this step was about to send (an attempt that finds one never stops again). */
function earlierStop(ctx: StepRunContext<DrillArgs>): { at: number } | undefined {
  return earlierIntent(ctx, 'stop');
}

async function replicaInSync(ctx: StepRunContext<DrillArgs>): Promise<string | undefined> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  // Master first, then the replica: caught up means at or past the master's earlier offset.
  return waitFor(
    async () => {
      const m = await replicationOf(pool, a.master.address);
      for (const r of a.replicas) {
        const s = await replicationOf(pool, r.address).catch(() => undefined);
        if (s && s.linkUp && s.offset >= m.offset) return r.address;
      }
      return undefined;
    },
    { timeoutMs: 3000, intervalMs: 50, signal: ctx.signal },
  );
}

async function preconditions(ctx: StepRunContext<DrillArgs>): Promise<Condition[]> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  const earlier = earlierStop(ctx);
  if (earlier && !(await stillMaster(ctx))) {
    return [
      pass(
        'already stopped',
        `${a.master.address} was stopped by this step at ${new Date(earlier.at).toISOString()}; it is not stopped again`,
      ),
    ];
  }
  const out: Condition[] = [];
  out.push(
    cond(
      'node is a master',
      await stillMaster(ctx),
      `${a.master.address} answers as master of slots ${formatRanges(a.ranges)}`,
      `${a.master.address} does not answer as a master owning slots: the drill needs a live master (make a new plan)`,
    ),
  );
  const inSync = await replicaInSync(ctx);
  out.push(
    cond(
      'a replica in sync',
      inSync !== undefined,
      `${inSync} is connected and caught up`,
      `no replica of ${a.master.address} (${a.replicas.map((r) => r.address).join(', ')}) is connected and caught up: a drill now could lose writes or have no one to promote`,
    ),
  );
  const el = await Promise.all(a.replicas.map((r) => replicaEligibility(pool, r.address)));
  const able = el.filter((e) => e.reachable && !e.noFailover);
  out.push(
    cond(
      'a replica may fail over',
      able.length > 0,
      `${able.map((e) => e.address).join(', ')} may start an election (cluster-replica-validity-factor ${able[0]?.validityFactor})`,
      `every replica has cluster-replica-no-failover yes or does not answer: no automatic failover can happen`,
    ),
  );
  const view = parseClusterNodes(
    await pool
      .node(inSync ?? a.candidate.address)
      .text('CLUSTER', 'NODES')
      .catch(() => ''),
  );
  const voters = view.filter((l) => isMaster(l) && l.slots.length > 0);
  const othersUp = voters.filter((l) => l.id !== a.master.id && !l.flags.some((f) => f.startsWith('fail'))).length;
  const majority = Math.floor(voters.length / 2) + 1;
  out.push(
    cond(
      'a majority remains',
      othersUp >= majority,
      `${othersUp} other masters of ${voters.length} stay up; ${majority} are needed to flag the failure and vote`,
      `only ${othersUp} of ${voters.length} masters would remain: fewer than the ${majority} needed, no replica could be promoted`,
    ),
  );
  out.push(
    pass(
      'expected outage',
      `cluster-node-timeout is ${a.nodeTimeoutMs} ms: writes to slots ${formatRanges(a.ranges)} should fail for about ${expectedOutage(a.nodeTimeoutMs)} (node timeout, failure reports, election); the step gives up after ${a.giveUpMs} ms`,
    ),
  );
  if (a.method === 'kill') {
    const host = ctx.env.host(a.master.address);
    out.push(
      cond(
        'kill command',
        !!host?.service('kill'),
        `host ${host?.name}: \`${host?.service('kill')}\``,
        host
          ? `hosts.${host.name}.service.kill is not set: add a command that kills the node's process (e.g. \`systemctl kill -s KILL redis@{port}\`), or use method=shutdown`
          : `no inventory host lists ${a.master.address}'s address: add it under hosts: with service.kill, or use method=shutdown`,
      ),
    );
  }
  return out;
}

/** Stop the master the way the drill asked, then wait until it no longer answers. */
async function stopMaster(ctx: StepRunContext<DrillArgs>): Promise<void> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  ctx.intent('stop', { method: a.method, master: a.master.address });
  if (a.method === 'shutdown') {
    try {
      await pool.node(a.master.address).call('SHUTDOWN');
    } catch (err) {
      // The server closes the connection as it exits: that is the normal reply. A timeout
      // (waiting for replicas, then saving) is in doubt: the wait below tells.
      if (!isUnreachable(err) && !/timed? ?out/i.test(messageOf(err)))
        throw failedError(
          'E_SHUTDOWN_REFUSED',
          `SHUTDOWN on ${a.master.address} failed: ${messageOf(err)}`,
          'read the node log (SHUTDOWN refuses when it cannot write its RDB); fix that, or use method=kill',
        );
    }
  } else {
    const host = ctx.env.host(a.master.address)!;
    const r = await host.run(stopCommand(ctx)!, { timeoutMs: 30_000 });
    if (r.exitCode !== 0)
      throw failedError(
        'E_KILL_FAILED',
        `the kill command on host ${host.name} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`,
        `check hosts.${host.name}.service.kill in the inventory`,
      );
  }
  const gone = await waitFor(async () => ((await answers(pool, a.master.address)) ? undefined : true), {
    timeoutMs: 60_000,
    intervalMs: 20,
  });
  if (!gone)
    throw failedError(
      'E_STILL_RUNNING',
      `${a.master.address} still answers 60 s after ${a.method === 'shutdown' ? 'SHUTDOWN' : 'the kill command'}`,
      'look at the node; a retry does not stop it again (the stop is journaled): abort the run if it never went down',
    );
}

/** Which replica took over: the first that reports role:master. */
async function promotedReplica(ctx: StepRunContext<DrillArgs>): Promise<NodeRef | undefined> {
  const pool = ctx.env.pool(ctx.args.cluster);
  for (const r of ctx.args.replicas) {
    const s = await replicationOf(pool, r.address).catch(() => undefined);
    if (s?.role === 'master') return r;
  }
  return undefined;
}

/** Every reachable node but the old master: sees the new master owning the slots, and cluster_state:ok. */
async function settled(ctx: StepRunContext<DrillArgs>, promoted: NodeRef): Promise<boolean> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  const others = a.nodes.filter((n) => n !== a.master.address);
  const ok = await Promise.all(
    others.map(async (n) => {
      let view;
      try {
        view = parseClusterNodes(await pool.node(n).text('CLUSTER', 'NODES'));
      } catch {
        return true; // an unreachable node cannot disagree
      }
      const p = view.find((l) => l.id === promoted.id);
      const sameSlots = !!p && isMaster(p) && formatRanges(p.slots) === formatRanges(a.ranges);
      return sameSlots && (await clusterState(pool, n)) === 'ok';
    }),
  );
  return ok.every(Boolean);
}

/**
 * An earlier attempt journaled the stop: wait for that stop to take effect and
 * refuse to go on if the master still answers. Returns when it was stopped.
 */
async function confirmEarlierStop(ctx: StepRunContext<DrillArgs>, earlier: { at: number }): Promise<number> {
  const a = ctx.args;
  if (await stillMaster(ctx)) {
    // Sent before the process died: a SHUTDOWN that writes an RDB can take a while.
    ctx.log(`an earlier attempt stopped ${a.master.address}; waiting for it to go away`);
    await waitFor(async () => ((await stillMaster(ctx)) ? undefined : true), {
      timeoutMs: 30_000,
      intervalMs: 100,
      signal: ctx.signal,
    });
  }
  if (await stillMaster(ctx)) {
    // Never stop a node twice on our own: it may have been restarted by its service
    // manager, or the command may never have left. The operator decides.
    throw failedError(
      'E_IN_DOUBT',
      `a stop of ${a.master.address} was journaled at ${new Date(earlier.at).toISOString()}, but it still answers as a master`,
      'look at the node (uptime, its log): if it was restarted or never stopped, abort this run (`redis-runbook abort RUN_ID`) and start a new drill',
    );
  }
  ctx.log(
    `${a.master.address} was stopped by an earlier attempt at ${new Date(earlier.at).toISOString()}; not stopping it again (the canary's numbers were lost with that process)`,
  );
  return earlier.at;
}

/** Start the canary writer and wait until the master acknowledges its writes steadily. */
async function startCanary(ctx: StepRunContext<DrillArgs>): Promise<{ canary: Canary; canaryFrom: number }> {
  const a = ctx.args;
  const parent = ctx.env.pool(a.cluster);
  const canary = new Canary(parent, a.ranges, a.master.address, a.nodes, a.canaryIntervalMs);
  const canaryFrom = Date.now();
  canary.start();
  // Writes must be going through before the stop, or the window means nothing.
  const flowing = await waitFor(async () => (canary.streak >= 10 ? true : undefined), {
    timeoutMs: 5000,
    intervalMs: 20,
    signal: ctx.signal,
  }).catch(async (err) => {
    await canary.abandon();
    throw err;
  });
  if (!flowing) {
    await canary.abandon();
    throw failedError(
      'E_CANARY',
      `the canary's writes to ${a.master.address} are not acknowledged before the drill`,
      'check that the master accepts writes (not read-only, not out of memory), then retry',
    );
  }
  return { canary, canaryFrom };
}

/** Let the canary write for canaryLeadMs, then stop the master. Returns when it was stopped. */
async function stopAfterCanaryLead(
  ctx: StepRunContext<DrillArgs>,
  canary: Canary,
  canaryFrom: number,
): Promise<number> {
  const a = ctx.args;
  try {
    // The bound on lost writes (keptBefore) is the last canary write the replica kept:
    // a canary that began just before the stop says nothing about a replica further behind.
    const lead = Math.max(0, canaryFrom + a.canaryLeadMs - Date.now());
    ctx.log(`canary writes acknowledged by ${a.master.address}; stopping it in ${lead} ms`);
    if (lead)
      await waitFor(async () => (Date.now() - canaryFrom >= a.canaryLeadMs ? true : undefined), {
        timeoutMs: lead + 1000,
        intervalMs: 10,
        signal: ctx.signal,
      });
    throwIfStopped(ctx.signal);
    const stoppedAt = Date.now();
    canary.markStop();
    await stopMaster(ctx);
    return stoppedAt;
  } catch (err) {
    await canary.abandon();
    throw err;
  }
}

/** Wait, up to giveUpMs from the stop, for a replica to take over; say why none did otherwise. */
async function waitForPromotion(ctx: StepRunContext<DrillArgs>, stoppedAt: number): Promise<NodeRef> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  const promoted = await waitFor(() => promotedReplica(ctx), {
    timeoutMs: Math.max(0, stoppedAt + a.giveUpMs - Date.now()),
    intervalMs: 20,
    signal: ctx.signal,
  });
  if (!promoted) {
    const reasons = await whyNoPromotion(
      pool,
      a.replicas.map((r) => r.address),
      a.nodes.filter((n) => n !== a.master.address),
      a.nodeTimeoutMs,
      a.master.id,
    );
    throw failedError(
      'E_NO_PROMOTION',
      `no replica of ${a.master.address} was promoted within ${a.giveUpMs} ms of the stop: ${reasons.join('; ')}`,
      `slots ${formatRanges(a.ranges)} are down until ${a.master.address} is started again or a replica is promoted by hand (redis-runbook run manual-failover --param node=${a.candidate.address} --param mode=force); retrying the step waits again`,
    );
  }
  return promoted;
}

/** Wait until every other node agrees on the new master and reports cluster_state:ok. Returns when. */
async function waitForAgreement(ctx: StepRunContext<DrillArgs>, promoted: NodeRef): Promise<number> {
  const a = ctx.args;
  const okAt = await waitFor(async () => ((await settled(ctx, promoted)) ? Date.now() : undefined), {
    timeoutMs: a.giveUpMs,
    intervalMs: 20,
    signal: ctx.signal,
  });
  if (!okAt)
    throw failedError(
      'E_NO_AGREEMENT',
      `${promoted.address} is master, but after ${a.giveUpMs} ms not every node agrees and reports cluster_state:ok`,
      'check the cluster bus between the nodes (port + 10000); retrying the step waits again',
    );
  return okAt;
}

/** Record the canary's summary in the audit log and tell the operator what it measured. */
function reportCanary(
  ctx: StepRunContext<DrillArgs>,
  report: CanaryReport,
  promoted: NodeRef,
  stoppedAt: number,
  canaryFrom: number,
): void {
  const a = ctx.args;
  ctx.env
    .pool(a.cluster)
    .recordSummary(report.owner, 'CANARY', [
      `${report.acked + report.failed} SET to slot ${report.slot} (${report.keyPrefix}*)`,
      `${report.acked} acknowledged`,
      `${report.lost} lost`,
      'keys deleted',
    ]);
  ctx.log(
    `canary: ${report.acked} writes acknowledged, ${report.failed} failed, unavailable ${report.windowMs ?? 'until the end'} ms, ${report.lost} acknowledged writes lost`,
  );
  if (report.keptBefore !== null)
    ctx.log(
      `every write ${a.master.address} acknowledged up to ${stoppedAt - report.keptBefore} ms before the stop is kept by ${promoted.address}; only writes acknowledged after that can be lost`,
    );
  else if (report.lost > 0)
    ctx.log(
      `WARNING: none of the canary's writes before the stop is kept by ${promoted.address}: it was more than ${stoppedAt - canaryFrom} ms behind, and writes acknowledged earlier than that may be lost too; a longer canaryLeadMs measures how far`,
    );
}

/** The step's output, logged as the operator reads it. */
function drillReport(
  ctx: StepRunContext<DrillArgs>,
  report: CanaryReport | null,
  promoted: NodeRef,
  stoppedAt: number,
  promotedAt: number,
  okAt: number,
): DrillReport {
  const a = ctx.args;
  // Resumed, the promotion and the ok state were only seen when this process looked:
  // upper bounds, reported apart from the measured figures.
  const measured = report !== null;
  const out: DrillReport = {
    method: a.method,
    stoppedAt,
    newMaster: promoted.address,
    promotionMs: measured ? promotedAt - stoppedAt : null,
    timeToOkMs: measured ? okAt - stoppedAt : null,
    okSeenAfterMs: okAt - stoppedAt,
    measured,
    unavailableMs: report?.windowMs ?? null,
    writesAcked: report?.acked ?? null,
    writesLost: report?.lost ?? null,
    canary: report,
  };
  ctx.log(
    measured
      ? `cluster_state:ok on every node ${out.timeToOkMs} ms after the stop`
      : `cluster_state:ok on every node, seen ${out.okSeenAfterMs} ms after the stop (an upper bound: the run was resumed)`,
  );
  return out;
}

export const drillFailMasterStep: StepKind<DrillArgs> = {
  kind: 'drill-fail-master',
  summary: 'Stop a master (SHUTDOWN or kill) and measure the automatic failover with a canary writer',
  params: {
    ...NODE_PARAMS,
    method: {
      help: 'how the master is stopped: shutdown (SHUTDOWN NOSAVE) or kill (SIGKILL through the host)',
      default: 'shutdown',
    },
    promoteTimeoutMs: {
      help: 'how long the drill waits for a promotion (ms; default from cluster-node-timeout and the replicas)',
      type: 'number',
    },
    canaryIntervalMs: {
      help: 'milliseconds between two canary writes',
      type: 'number',
      default: '10',
      min: 1,
      max: 60_000,
    },
    canaryLeadMs: {
      help: 'milliseconds the canary writes before the stop',
      type: 'number',
      default: '1000',
      min: 0,
      max: 600_000,
    },
  },
  resolve(raw, topology) {
    const t = clusterArg(raw, topology);
    const n = raw.node ? findNode(t, raw.node) : undefined;
    if (n?.role === 'replica') {
      const m = t.nodes.find((x) => x.id === n.masterId);
      throw usageError(
        'E_PARAM',
        `node=${raw.node} is a replica; a failover drill stops a master`,
        `pass its master: --param node=${m?.address ?? 'HOST:PORT'}`,
      );
    }
    // Also refuses a master with no replica (E_NO_REPLICA): nothing could take over.
    const pair = resolveFailoverPair(t, raw.node, 'default');
    const master = findNode(t, pair.master.address)!;
    const replicas = replicasOf(t, master.id).map((r) => ({ id: r.id, address: r.address }));
    return {
      cluster: t.cluster,
      master: pair.master,
      ranges: master.slots,
      replicas,
      candidate: pair.candidate,
      method: parseMethod(raw.method),
      nodeTimeoutMs: t.nodeTimeoutMs,
      giveUpMs: Number(raw.promoteTimeoutMs ?? promotionBoundMs(t.nodeTimeoutMs, replicas.length)),
      nodes: t.nodes.map((x) => x.address),
      canaryIntervalMs: numberParam(raw, 'canaryIntervalMs', 10, {
        min: 1,
        max: 60_000,
        unit: 'milliseconds between two canary writes',
      }),
      canaryLeadMs: numberParam(raw, 'canaryLeadMs', 1000, {
        min: 0,
        max: 600_000,
        unit: 'milliseconds the canary writes before the stop',
      }),
    };
  },
  title: (a) =>
    `${a.method === 'shutdown' ? 'SHUTDOWN' : 'Kill'} master ${a.master.address} and measure the automatic failover (expected outage about ${expectedOutage(a.nodeTimeoutMs)}: cluster-node-timeout ${a.nodeTimeoutMs} ms + failure reports + election)`,
  // The failed master stays down (flagged fail) until the restore step starts it again.
  settles: (a) => [{ cluster: a.cluster, tolerate: [a.master.address, a.master.id] }],
  failpoints: ['stopped'],
  // The failure is detected, flagged FAIL and voted on by every node; the stopped master's log ends it.
  logNodes: (a) => ({ cluster: a.cluster }),
  commands: (a, hosts) => [
    {
      target: a.master.address,
      command: `SET ${'redis-runbook:canary:{...}:<n>'} every ${a.canaryIntervalMs} ms (canary, slot of this shard, TTL 1 h)`,
      when: 'from before the stop until the cluster is ok again',
    },
    a.method === 'shutdown'
      ? { target: a.master.address, command: 'SHUTDOWN' }
      : serviceCommand(hosts, a.master.address, 'kill', undefined),
    ...a.replicas.map((r) => ({
      target: r.address,
      command: 'INFO replication',
      when: 'until one reports role:master',
    })),
    {
      target: 'every other node',
      command: 'CLUSTER NODES; CLUSTER INFO',
      when: 'until all agree and cluster_state:ok',
    },
    { target: 'new master', command: 'GET / DEL of the canary keys', when: 'at the end: read back, then clean up' },
  ],
  destructive: (a) =>
    `${a.method === 'shutdown' ? 'shuts down' : 'kills'} master ${a.master.address}: writes to slots ${formatRanges(a.ranges)} fail until a replica takes over`,
  check: preconditions,
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    let stoppedAt: number;
    let canary: Canary | undefined;
    let canaryFrom = 0;
    const earlier = earlierStop(ctx);
    if (earlier) {
      stoppedAt = await confirmEarlierStop(ctx, earlier);
    } else {
      // The check may be long past (a prompt left open): look again right before acting.
      throwIfStopped(ctx.signal);
      const bad = (await preconditions(ctx)).filter((c) => !c.ok);
      if (bad.length)
        throw failedError(
          'E_PRECONDITION_CHANGED',
          `no longer safe to stop ${a.master.address}: ${bad.map((c) => `${c.name}: ${c.reason}`).join('; ')}`,
          'look at the cluster (`redis-runbook check`); retry, or abort and make a new plan',
        );
      ({ canary, canaryFrom } = await startCanary(ctx));
      stoppedAt = await stopAfterCanaryLead(ctx, canary, canaryFrom);
      ctx.failpoint('stopped');
      ctx.log(`${a.master.address} stopped (${a.method}); waiting for a replica to take over`);
    }
    try {
      const promoted = await waitForPromotion(ctx, stoppedAt);
      const promotedAt = Date.now();
      ctx.log(`${promoted.address} promoted ${promotedAt - stoppedAt} ms after the stop`);
      const okAt = await waitForAgreement(ctx, promoted);
      let report: CanaryReport | null = null;
      if (!canary) {
        const swept = await Canary.sweep(pool, promoted.address, a.ranges);
        if (swept) ctx.log(`deleted ${swept} canary keys left by the interrupted attempt`);
      }
      if (canary) {
        // Keep writing until the canary has been acknowledged steadily by the new owner.
        await waitFor(async () => (canary!.streak >= 20 ? true : undefined), {
          timeoutMs: 5000,
          intervalMs: 20,
          signal: ctx.signal,
        });
        report = await canary.finish();
        canary = undefined;
        reportCanary(ctx, report, promoted, stoppedAt, canaryFrom);
      }
      return drillReport(ctx, report, promoted, stoppedAt, promotedAt, okAt);
    } finally {
      await canary?.abandon();
    }
  },
  async verify(ctx) {
    const a = ctx.args;
    const promoted = await promotedReplica(ctx);
    const old = await stillMaster(ctx);
    return [
      cond(
        'replica promoted',
        !!promoted,
        `${promoted?.address} is master of slots ${formatRanges(a.ranges)}`,
        `no replica of ${a.master.address} reports role:master`,
      ),
      old
        ? fail('old master replaced', `${a.master.address} still answers as a master owning slots`)
        : pass('old master replaced', `${a.master.address} is down or a replica`),
    ];
  },
};
