import { failedError } from '../../errors.js';
import { parseClusterNodes, isMaster } from '../../redis/cluster-nodes.js';
import type { NodeRef } from '../../redis/failover.js';
import { nodeArg, NODE_PARAMS } from '../args.js';
import { cond, pass, waitFor, type Condition, type StepKind, type StepRunContext } from '../kind.js';

interface Args {
  cluster: string;
  node: NodeRef;
  /** Every other node: each must forget it. */
  others: string[];
  timeoutMs: number;
}

// CLUSTER FORGET bans the id for 60 s (CLUSTER_BLACKLIST_TTL): every node must
// forget within that window, or one that still knows the node gossips it back.
const FORGET_WINDOW_MS = 60_000;

/** Which other nodes still list the node, and which do not answer at all. */
async function survey(
  ctx: StepRunContext<Args>,
): Promise<{ listing: string[]; unreachable: string[]; replicas: string[]; ownsSlots: boolean }> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  const listing: string[] = [];
  const unreachable: string[] = [];
  const replicas = new Set<string>();
  let ownsSlots = false;
  await Promise.all(
    a.others.map(async (n) => {
      try {
        const view = parseClusterNodes(await pool.node(n).text('CLUSTER', 'NODES'));
        const line = view.find((l) => l.id === a.node.id);
        if (line) listing.push(n);
        if (line && isMaster(line) && line.slots.length > 0) ownsSlots = true;
        for (const r of view.filter((l) => l.masterId === a.node.id)) replicas.add(r.address);
      } catch {
        unreachable.push(n);
      }
    }),
  );
  return { listing: listing.sort(), unreachable: unreachable.sort(), replicas: [...replicas].sort(), ownsSlots };
}

async function preconditions(ctx: StepRunContext<Args>): Promise<Condition[]> {
  const a = ctx.args;
  // Right after its slots moved, a node may still see it owning them for a moment: decide on an agreed view.
  await ctx.env.consensus(a.cluster);
  const s = await survey(ctx);
  if (ctx.planning && s.ownsSlots)
    return [
      pass(
        'checked when the step runs',
        `${a.node.address} owns slots now; the steps before this one demote it or move them`,
      ),
    ];
  return [
    cond(
      'node owns no slots',
      !s.ownsSlots,
      `${a.node.address} owns no slots`,
      `${a.node.address} still owns slots: forgetting it would leave them without an owner (demote it or move its slots first)`,
    ),
    cond(
      'no replica follows it',
      s.replicas.length === 0,
      'no node replicates it',
      `${s.replicas.join(', ')} replicate ${a.node.address}: point them at another master first (CLUSTER REPLICATE), a node cannot forget its own master`,
    ),
    cond(
      'every other node answers',
      s.unreachable.length === 0,
      `all ${a.others.length} other nodes answer`,
      `${s.unreachable.join(', ')} do not answer: a node that misses the FORGET gossips ${a.node.address} back to the others when it returns`,
    ),
  ];
}

export const forgetNodeStep: StepKind<Args> = {
  kind: 'forget-node',
  summary: 'CLUSTER FORGET a node on every other node, repeated until none lists it (within the 60 s forget window)',
  params: { ...NODE_PARAMS, forgetTimeoutMs: { help: 'how long the forgetting may take (ms)', type: 'number' } },
  resolve(raw, topology) {
    const { t, n } = nodeArg(raw, topology);
    return {
      cluster: t.cluster,
      node: { id: n.id, address: n.address },
      others: t.nodes.filter((x) => x.id !== n.id).map((x) => x.address),
      timeoutMs: Number(raw.forgetTimeoutMs ?? 30_000),
    };
  },
  title: (a) => `Make all ${a.others.length} other nodes forget ${a.node.address} (${a.node.id.slice(0, 8)})`,
  commands: (a) =>
    a.others.map((n) => ({ target: n, command: `CLUSTER FORGET ${a.node.id}`, when: 'while it still lists the node' })),
  destructive: (a) => `removes ${a.node.address} from the cluster: the other nodes stop talking to it`,
  // The forgotten node still runs until shutdown: the others must not list it, it may list them.
  settles: (a) => [{ cluster: a.cluster, tolerate: [a.node.address, a.node.id] }],
  logNodes: (a) => ({ cluster: a.cluster, nodes: [a.node.address, ...a.others] }),
  check: preconditions,
  async run(ctx) {
    const a = ctx.args;
    const bad = (await preconditions(ctx)).filter((c) => !c.ok);
    if (bad.length)
      throw failedError(
        'E_PRECONDITION_CHANGED',
        bad.map((c) => `${c.name}: ${c.reason}`).join('; '),
        'fix that and retry the step',
      );
    const pool = ctx.env.pool(a.cluster);
    const started = Date.now();
    let rounds = 0;
    const done = await waitFor(
      async () => {
        const s = await survey(ctx);
        if (s.listing.length === 0) return true;
        rounds++;
        await Promise.all(
          s.listing.map((n) =>
            pool
              .node(n)
              .call('CLUSTER', 'FORGET', a.node.id)
              .catch(() => undefined),
          ),
        );
        return undefined;
      },
      { timeoutMs: Math.min(a.timeoutMs, FORGET_WINDOW_MS - 5000), intervalMs: 200, signal: ctx.signal },
    );
    if (!done) {
      const s = await survey(ctx);
      throw failedError(
        'E_NOT_FORGOTTEN',
        `${s.listing.join(', ')} still list ${a.node.address} after ${rounds} rounds of CLUSTER FORGET`,
        'another node keeps gossiping it back (a node that did not answer?); retry the step',
      );
    }
    return { rounds, ms: Date.now() - started };
  },
  async verify(ctx) {
    const s = await survey(ctx);
    return [
      cond(
        'forgotten everywhere',
        s.listing.length === 0,
        `no other node lists ${ctx.args.node.address}`,
        `still listed by ${s.listing.join(', ')}`,
      ),
    ];
  },
};
