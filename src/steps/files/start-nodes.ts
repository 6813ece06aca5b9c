import { failedError } from '../../errors.js';
import { parseInfo } from '../../redis/cluster-nodes.js';
import { replicationOf } from '../../redis/failover.js';
import { clusterState, refusesConnections } from '../../redis/node-state.js';
import { clusterArg, GROUP_PARAMS } from '../args.js';
import { collectorGroup } from '../../redis/consolidate.js';
import { cond, earlierIntent, serviceCommand, waitFor, type StepKind, type StepRunContext } from '../kind.js';

/** A started node that refuses connections this long has exited (a loading node accepts them). */
const NOT_LISTENING_MS = 15_000;

interface Args {
  cluster: string;
  masters: string[];
  replicas: Array<{ address: string; master: string }>;
  timeoutMs: number;
}

async function startOne(ctx: StepRunContext<Args>, address: string): Promise<void> {
  const pool = ctx.env.pool(ctx.args.cluster);
  if (await refusesConnections(pool, address)) {
    const host = ctx.env.host(address)!;
    const cmd = host.service('start')!;
    // A start an earlier attempt was about to send (in the last 30 s) is waited for, not repeated at
    // once; unless that attempt saw the node exit after it (start-failed), when a new start is due.
    const earlier = earlierIntent(ctx, `start:${address}`, 30_000);
    const failedSince = earlier && earlierIntent(ctx, `start-failed:${address}`, Date.now() - earlier.at);
    if (!earlier || failedSince) {
      ctx.intent(`start:${address}`, { host: host.name });
      const r = await host.run(cmd, { timeoutMs: 60_000, signal: ctx.signal });
      ctx.failpoint(`start-sent:${address}`);
      if (r.exitCode !== 0)
        throw failedError(
          'E_START_FAILED',
          `the start command for ${address} on host ${host.name} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`,
          'read the node log',
        );
    }
  }
  // Up, and done loading its data (a big RDB takes a while): INFO persistence loading:0. A
  // node accepts connections while it loads (it answers LOADING), so one that refuses them
  // long after its start command returned has most likely exited (a file it cannot load):
  // that is said at once, not after the whole start timeout.
  let refusingSince: number | undefined;
  const ready = await waitFor(
    async () => {
      if (await refusesConnections(pool, address, 1)) {
        refusingSince ??= Date.now();
        return Date.now() - refusingSince >= NOT_LISTENING_MS ? ('gone' as const) : undefined;
      }
      refusingSince = undefined;
      return parseInfo(await pool.node(address).text('INFO', 'persistence')).loading === '0' ? true : undefined;
    },
    { timeoutMs: ctx.args.timeoutMs, intervalMs: 100, signal: ctx.signal },
  );
  if (ready === 'gone') {
    // The next attempt starts it again rather than wait for this start (see above).
    ctx.intent(`start-failed:${address}`);
    throw failedError(
      'E_START_FAILED',
      `${address} still refuses connections ${NOT_LISTENING_MS / 1000} s after its start command returned: ` +
        'the server most likely exited at once (a data file it cannot load, a port in use, a bad setting)',
      `read the node's log on host ${ctx.env.host(address)?.name ?? '?'}, fix the cause, then retry the step`,
    );
  }
  if (!ready)
    throw failedError(
      'E_START_FAILED',
      `${address} is not up and loaded ${ctx.args.timeoutMs} ms after its start`,
      'read the node log (a file that does not load?)',
    );
}

async function inSync(ctx: StepRunContext<Args>, r: { address: string; master: string }): Promise<boolean> {
  const pool = ctx.env.pool(ctx.args.cluster);
  const m = await replicationOf(pool, r.master);
  const s = await replicationOf(pool, r.address);
  return s.role === 'replica' && s.linkUp && s.offset >= m.offset;
}

export const startNodesStep: StepKind<Args> = {
  kind: 'start-nodes',
  summary:
    "Start a cluster's masters, wait until they loaded their data, then the replicas, and wait until they are in sync",
  params: {
    ...GROUP_PARAMS,
    startTimeoutMs: { help: 'how long each node may take to start and load (ms)', type: 'number' },
  },
  resolve(raw, topology) {
    const t = clusterArg({ ...raw, cluster: raw.target ?? raw.cluster ?? '' }, topology);
    const addr = (id: string | undefined) => t.nodes.find((n) => n.id === id)?.address ?? '';
    const nodes = raw.onlyCollector === 'true' ? collectorGroup(t, raw.pivot || undefined) : t.nodes;
    return {
      cluster: t.cluster,
      masters: nodes.filter((n) => n.role === 'master').map((n) => n.address),
      replicas: nodes
        .filter((n) => n.role === 'replica')
        .map((n) => ({ address: n.address, master: addr(n.masterId) })),
      timeoutMs: Number(raw.startTimeoutMs ?? 300_000),
    };
  },
  // The nodes' own account of the start: the file they loaded, keys loaded, the replicas' sync.
  logNodes: (a) => ({ cluster: a.cluster, nodes: [...a.masters, ...a.replicas.map((r) => r.address)] }),
  title: (a) =>
    `Start ${a.masters.join(', ')} of ${a.cluster}, then ${a.replicas.length ? a.replicas.map((r) => r.address).join(', ') : 'no replica'}; wait for loading and sync`,
  // A node that was down longer than cluster-node-timeout stays flagged `fail` on the others
  // for a while after it is back, and they answer CLUSTERDOWN meanwhile.
  settles: (a) => [{ cluster: a.cluster }],
  // `start-sent:<address>`: a node's start command returned (only for a node that was down).
  failpoints: (a) => [
    ...a.masters.map((n) => `start-sent:${n}`),
    'masters-started',
    ...a.replicas.map((r) => `start-sent:${r.address}`),
  ],
  commands: (a, hosts) =>
    [...a.masters, ...a.replicas.map((r) => r.address)].map((n) =>
      serviceCommand(hosts, n, 'start', undefined, 'unless already running'),
    ),
  async check(ctx) {
    const noStart = [...ctx.args.masters, ...ctx.args.replicas.map((r) => r.address)].filter(
      (n) => !ctx.env.host(n)?.service('start'),
    );
    return [
      cond(
        'start commands',
        noStart.length === 0,
        'every node has a host with service.start',
        `${noStart.join(', ')}: no service.start in the inventory`,
      ),
    ];
  },
  async run(ctx) {
    // Masters first: a replica started before its master would just wait, but a master
    // must have loaded its file before anyone syncs from it.
    await Promise.all(ctx.args.masters.map((n) => startOne(ctx, n)));
    ctx.failpoint('masters-started');
    await Promise.all(ctx.args.replicas.map((r) => startOne(ctx, r.address)));
    const synced = await waitFor(
      async () => ((await Promise.all(ctx.args.replicas.map((r) => inSync(ctx, r)))).every(Boolean) ? true : undefined),
      { timeoutMs: ctx.args.timeoutMs, intervalMs: 200, signal: ctx.signal },
    );
    if (!synced)
      throw failedError(
        'E_REPLICA_SYNC',
        `replicas of ${ctx.args.cluster} are not in sync ${ctx.args.timeoutMs} ms after start`,
        'read their logs (full sync in progress?) and retry the step',
      );
    // A node that was down is flagged failed by the others until gossip clears it; until then
    // the cluster refuses commands (CLUSTERDOWN). Done is when the started nodes say ok.
    const started = [...ctx.args.masters, ...ctx.args.replicas.map((r) => r.address)];
    const ok = await waitFor(
      async () =>
        (await Promise.all(started.map((n) => clusterState(ctx.env.pool(ctx.args.cluster), n)))).every(
          (st) => st === 'ok',
        )
          ? true
          : undefined,
      { timeoutMs: ctx.args.timeoutMs, intervalMs: 100, signal: ctx.signal },
    );
    if (!ok)
      throw failedError(
        'E_CLUSTER_STATE',
        `${ctx.args.cluster} does not report cluster_state:ok on the started nodes ${ctx.args.timeoutMs} ms after start`,
        'check the cluster bus between the nodes (port + 10000); retry the step',
      );
    return { started: ctx.args.masters.length + ctx.args.replicas.length };
  },
  async verify(ctx) {
    const lagging: string[] = [];
    for (const r of ctx.args.replicas) if (!(await inSync(ctx, r).catch(() => false))) lagging.push(r.address);
    return [
      cond(
        'replicas in sync',
        lagging.length === 0,
        `${ctx.args.replicas.length} replicas linked and caught up`,
        `not in sync: ${lagging.join(', ')}`,
      ),
    ];
  },
};
