import { failedError } from '../../errors.js';
import { parseClusterNodes } from '../../redis/cluster-nodes.js';
import { replicationOf, type NodeRef } from '../../redis/failover.js';
import { answers, clusterView, ownerIn } from '../../redis/node-state.js';
import { formatRanges, type SlotRange } from '../../redis/slots.js';
import { nodeArg, NODE_PARAMS } from '../args.js';
import {
  earlierIntent,
  cond,
  fail,
  pass,
  serviceCommand,
  waitFor,
  type Condition,
  type StepKind,
  type StepRunContext,
} from '../kind.js';

interface Args {
  cluster: string;
  node: NodeRef;
  /** The slots the node owned before it was stopped: their owner now is the master it must follow. */
  ranges: SlotRange[];
  nodes: string[];
  startTimeoutMs: number;
  syncTimeoutMs: number;
}

/** The master that owns the node's former slots now, as the other nodes see it. */
async function newMaster(ctx: StepRunContext<Args>): Promise<{ id: string; address: string } | undefined> {
  const a = ctx.args;
  const v = await clusterView(
    ctx.env.pool(a.cluster),
    a.nodes.filter((n) => n !== a.node.address),
  );
  const owner = v && ownerIn(v.view, a.ranges[0]![0]);
  return owner && owner.id !== a.node.id ? { id: owner.id, address: owner.address } : undefined;
}

/** Replica of the new master, link up, offset caught up, and no node flags it failed. */
async function rejoined(
  ctx: StepRunContext<Args>,
  master: { id: string; address: string },
): Promise<string | undefined> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  const r = await replicationOf(pool, a.node.address).catch(() => undefined);
  if (!r) return `${a.node.address} does not answer`;
  if (r.role !== 'replica' || `${r.masterHost}:${r.masterPort}` !== master.address)
    return `${a.node.address} is ${r.role}${r.masterHost ? ` of ${r.masterHost}:${r.masterPort}` : ''}, not a replica of ${master.address}`;
  if (!r.linkUp) return `${a.node.address} is still syncing from ${master.address} (master_link_status:down)`;
  if (!(await caughtUp(ctx, master.address)))
    return `${a.node.address} has not caught up with ${master.address}'s replication offset`;
  for (const n of a.nodes.filter((x) => x !== a.node.address)) {
    try {
      const line = parseClusterNodes(await pool.node(n).text('CLUSTER', 'NODES')).find((l) => l.id === a.node.id);
      if (!line || line.flags.some((f) => f.startsWith('fail')) || line.masterId !== master.id)
        return `${n} does not see ${a.node.address} as a healthy replica of ${master.address} yet`;
    } catch {
      // unreachable nodes cannot disagree
    }
  }
  return undefined;
}

/** Read the master first, then the replica: a replica at or past that offset has caught up. */
async function caughtUp(ctx: StepRunContext<Args>, master: string): Promise<boolean> {
  const pool = ctx.env.pool(ctx.args.cluster);
  const m = await replicationOf(pool, master);
  const r = await replicationOf(pool, ctx.args.node.address);
  return r.offset >= m.offset;
}

export const restartAsReplicaStep: StepKind<Args> = {
  kind: 'restart-as-replica',
  summary:
    "Start a stopped former master through its host's service control and wait until it rejoined as a replica and finished its sync",
  params: {
    ...NODE_PARAMS,
    startTimeoutMs: { help: 'how long the node may take to start and load (ms)', type: 'number' },
    syncTimeoutMs: { help: 'how long it may take to rejoin in sync (ms)', type: 'number' },
  },
  resolve(raw, topology) {
    const { t, n } = nodeArg(raw, topology);
    return {
      cluster: t.cluster,
      node: { id: n.id, address: n.address },
      ranges: n.slots,
      nodes: t.nodes.map((x) => x.address),
      startTimeoutMs: Number(raw.startTimeoutMs ?? 30_000),
      syncTimeoutMs: Number(raw.syncTimeoutMs ?? 120_000),
    };
  },
  title: (a) =>
    `Start ${a.node.address} again and wait until it is a replica of the new master of slots ${formatRanges(a.ranges)}, in sync`,
  settles: (a) => [{ cluster: a.cluster }],
  // The node's start and sync, and the others clearing its FAIL flag.
  logNodes: (a) => ({ cluster: a.cluster }),
  failpoints: ['started'],
  commands: (a, hosts) => [
    serviceCommand(hosts, a.node.address, 'start', undefined, 'unless it already answers'),
    {
      target: a.node.address,
      command: 'INFO replication',
      when: 'until replica of the new master, link up, caught up',
    },
    { target: 'every other node', command: 'CLUSTER NODES', when: 'until none flags it failed' },
  ],
  async check(ctx) {
    const a = ctx.args;
    const host = ctx.env.host(a.node.address);
    const out: Condition[] = [];
    const up = await answers(ctx.env.pool(a.cluster), a.node.address);
    {
      out.push(
        cond(
          'start command',
          !!host?.service('start'),
          `host ${host?.name}: \`${host?.service('start')}\``,
          host
            ? `hosts.${host.name}.service.start is not set: add the command that starts the node (e.g. \`systemctl start redis@{port}\`), or pass restore=false`
            : `no inventory host lists ${a.node.address}'s address: add it under hosts: with service.start, or pass restore=false`,
        ),
      );
    }
    if (ctx.planning && up)
      out.push(pass('checked when the step runs', `${a.node.address} is stopped by the steps before this one`));
    if (!ctx.planning)
      out.push(
        (await newMaster(ctx))
          ? pass('slots have a new master', `slots ${formatRanges(a.ranges)} are served by another node`)
          : fail(
              'slots have a new master',
              `no other node owns slots ${formatRanges(a.ranges)}: starting ${a.node.address} now would make it master again, not a replica`,
            ),
      );
    return out;
  },
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    const master = await newMaster(ctx);
    if (!master)
      throw failedError(
        'E_NO_NEW_MASTER',
        `no other node owns slots ${formatRanges(a.ranges)}`,
        'the failover did not happen; look at the cluster before starting the old master',
      );
    const started = Date.now();
    let restarted = false;
    if (!(await answers(pool, a.node.address))) {
      const host = ctx.env.host(a.node.address)!;
      const cmd = host.service('start')!;
      // A start an earlier attempt was about to send is waited for, not repeated.
      const earlier = earlierIntent(ctx, 'start', a.startTimeoutMs);
      if (!earlier) {
        ctx.intent('start', { host: host.name });
        const r = await host.run(cmd, { timeoutMs: a.startTimeoutMs, signal: ctx.signal });
        if (r.exitCode !== 0)
          throw failedError(
            'E_START_FAILED',
            `the start command on host ${host.name} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`,
            `check hosts.${host.name}.service.start and the node's log`,
          );
        restarted = true;
      }
      ctx.failpoint('started');
      const up = await waitFor(async () => ((await answers(pool, a.node.address)) ? true : undefined), {
        timeoutMs: a.startTimeoutMs,
        intervalMs: 50,
        signal: ctx.signal,
      });
      if (!up)
        throw failedError(
          'E_START_FAILED',
          `${a.node.address} does not answer ${a.startTimeoutMs} ms after its start command`,
          'read the node log',
        );
    }
    const upAt = Date.now();
    let last = '';
    const ok = await waitFor(
      async () => {
        const why = await rejoined(ctx, master);
        last = why ?? '';
        return why === undefined ? true : undefined;
      },
      { timeoutMs: a.syncTimeoutMs, intervalMs: 100, signal: ctx.signal },
    );
    if (!ok)
      throw failedError(
        'E_NOT_REJOINED',
        `${a.node.address} did not rejoin as an in-sync replica within ${a.syncTimeoutMs} ms: ${last}`,
        'read its log (full sync, "Configuration change detected"); retrying the step waits again',
      );
    ctx.log(`${a.node.address} is a replica of ${master.address} and in sync`);
    return { restarted, master: master.address, upMs: upAt - started, syncMs: Date.now() - upAt };
  },
  async verify(ctx) {
    const master = await newMaster(ctx);
    const why = master ? await rejoined(ctx, master) : 'no new master owns its slots';
    return [
      cond(
        'rejoined as replica',
        why === undefined,
        `${ctx.args.node.address} replicates ${master?.address}, in sync`,
        why ?? '',
      ),
    ];
  },
};
