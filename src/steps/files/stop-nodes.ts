import { failedError, messageOf } from '../../errors.js';
import { refusesConnections } from '../../redis/node-state.js';
import { persistOne } from './persist-masters.js';
import { clusterArg, GROUP_PARAMS } from '../args.js';
import { collectorGroup } from '../../redis/consolidate.js';
import { cond, pass, serviceCommand, waitFor, type StepKind, type StepRunContext } from '../kind.js';

interface Args {
  cluster: string;
  replicas: string[];
  masters: string[];
  timeoutMs: number;
}

/** Stop one node: its host's service.stop, else SHUTDOWN NOSAVE; then wait until it is gone. */
async function stopOne(ctx: StepRunContext<Args>, address: string): Promise<void> {
  const pool = ctx.env.pool(ctx.args.cluster);
  if (await refusesConnections(pool, address)) return;
  // A master holding keys saves them first, so that the backup the next step makes is its
  // data as of now, not its last automatic save (or nothing).
  const info = await pool
    .node(address)
    .text('INFO', 'replication')
    .catch(() => '');
  if (/role:master/.test(info) && Number(await pool.node(address).call('DBSIZE')) > 0) {
    await persistOne(pool, address, 'rdb', ctx.args.timeoutMs * 10, ctx.signal);
  }
  const host = ctx.env.host(address);
  const stop = host?.service('stop');
  if (host && stop) {
    const r = await host.run(stop, { timeoutMs: ctx.args.timeoutMs, signal: ctx.signal });
    if (r.exitCode !== 0)
      throw failedError(
        'E_STOP_FAILED',
        `the stop command for ${address} on host ${host.name} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`,
        `check hosts.${host.name}.service.stop`,
      );
  } else {
    // NOSAVE: these files are about to be replaced; writing them first is wasted time.
    await pool
      .node(address)
      .call('SHUTDOWN', 'NOSAVE')
      .catch((err) => {
        if (!/unreachable|closed|ECONNRESET|timed? ?out/i.test(messageOf(err))) throw err;
      });
  }
  const gone = await waitFor(async () => ((await refusesConnections(pool, address)) ? true : undefined), {
    timeoutMs: ctx.args.timeoutMs,
    intervalMs: 50,
    signal: ctx.signal,
  });
  if (!gone)
    throw failedError(
      'E_STILL_RUNNING',
      `${address} still answers ${ctx.args.timeoutMs} ms after the stop`,
      'look at the node and retry the step',
    );
}

export const stopNodesStep: StepKind<Args> = {
  kind: 'stop-nodes',
  summary: 'Stop every node of a cluster, replicas first (no failover starts), through service.stop or SHUTDOWN NOSAVE',
  params: { ...GROUP_PARAMS, stopTimeoutMs: { help: 'how long each node may take to stop (ms)', type: 'number' } },
  resolve(raw, topology) {
    const t = clusterArg({ ...raw, cluster: raw.target ?? raw.cluster ?? '' }, topology);
    // onlyCollector: just the master that collected every slot, and its replicas.
    const nodes = raw.onlyCollector === 'true' ? collectorGroup(t, raw.pivot || undefined) : t.nodes;
    return {
      cluster: t.cluster,
      replicas: nodes.filter((n) => n.role === 'replica').map((n) => n.address),
      masters: nodes.filter((n) => n.role === 'master').map((n) => n.address),
      timeoutMs: Number(raw.stopTimeoutMs ?? 60_000),
    };
  },
  // The nodes' own account of the stop (SIGTERM or SHUTDOWN received, the save, ready to exit).
  logNodes: (a) => ({ cluster: a.cluster, nodes: [...a.replicas, ...a.masters] }),
  title: (a) =>
    `Stop ${a.replicas.length + a.masters.length} nodes of ${a.cluster}: ${[...a.replicas, ...a.masters].join(', ')} (replicas first, then masters)`,
  commands: (a, hosts) =>
    [...a.replicas, ...a.masters].map((n) =>
      serviceCommand(hosts, n, 'stop', { target: n, command: 'SHUTDOWN NOSAVE' }, 'unless already down'),
    ),
  destructive: (a) =>
    `stops ${[...a.replicas, ...a.masters].join(', ')} of cluster ${a.cluster}: their slots are unavailable until the copy is started`,
  async check(ctx) {
    const noHost = [...ctx.args.replicas, ...ctx.args.masters].filter((n) => !ctx.env.host(n)?.service('start'));
    return [
      cond(
        'can be started again',
        noHost.length === 0,
        'every node has a host with service.start',
        `${noHost.join(', ')}: no service.start in the inventory; they could not be started after the copy`,
      ),
    ];
  },
  async run(ctx) {
    await Promise.all(ctx.args.replicas.map((n) => stopOne(ctx, n)));
    await Promise.all(ctx.args.masters.map((n) => stopOne(ctx, n)));
    return { stopped: [...ctx.args.replicas, ...ctx.args.masters] };
  },
  async verify(ctx) {
    const pool = ctx.env.pool(ctx.args.cluster);
    const up: string[] = [];
    for (const n of [...ctx.args.replicas, ...ctx.args.masters]) if (!(await refusesConnections(pool, n))) up.push(n);
    return up.length
      ? [cond('all stopped', false, '', `${up.join(', ')} still answer`)]
      : [pass('all stopped', 'no node of the cluster answers')];
  },
};
