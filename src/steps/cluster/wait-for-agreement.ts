import { failedError } from '../../errors.js';
import { disagreeingNodes, type FailoverPair } from '../../redis/failover.js';
import { failoverArgs, FAILOVER_PARAMS } from '../args.js';
import { cond, waitFor, type StepKind } from '../kind.js';

type Args = {
  cluster: string;
  reverse: boolean;
  nodes: string[];
  timeoutMs: number;
  failoverStep: string;
} & FailoverPair;

/**
 * CLUSTER FAILOVER returning, or even the replica saying role:master, is not
 * the end: the other nodes learn the new epoch through gossip. Done is when
 * every reachable node's CLUSTER NODES agrees on the new roles.
 */
export const waitForAgreementStep: StepKind<Args> = {
  kind: 'wait-for-agreement',
  summary: 'Wait until every node agrees on the new roles (CLUSTER NODES on each node)',
  params: {
    ...FAILOVER_PARAMS,
    agreeTimeoutMs: {
      help: 'how long the nodes may take to agree (ms; default 3 x cluster-node-timeout, at least 10000)',
      type: 'number',
    },
    failoverStep: {
      help: 'the failover step whose send time the agreement is measured from',
      type: 'step',
      default: 'failover',
    },
  },
  resolve(raw, topology) {
    const a = failoverArgs(raw, topology);
    const t = topology(a.cluster);
    return {
      ...a,
      nodes: t.nodes.map((n) => n.address),
      timeoutMs: Number(raw.agreeTimeoutMs ?? Math.max(10000, t.nodeTimeoutMs * 3)),
      failoverStep: raw.failoverStep ?? 'failover',
    };
  },
  title: (a) =>
    `Wait until all ${a.nodes.length} nodes see ${a.candidate.address} as master and ${a.master.address} as its replica`,
  commands: (a) => a.nodes.map((n) => ({ target: n, command: 'CLUSTER NODES', when: 'until all agree' })),
  // After FORCE or TAKEOVER the replaced master may stay down (flagged fail): tolerated.
  settles: (a) => [{ cluster: a.cluster, tolerate: a.mode === 'default' ? [] : [a.master.address, a.master.id] }],
  async check(ctx) {
    return [
      cond(
        'candidate reachable',
        !!(await ctx.env
          .pool(ctx.args.cluster)
          .node(ctx.args.candidate.address)
          .call('PING')
          .catch(() => false)),
        'answers PING',
        `${ctx.args.candidate.address} does not answer`,
      ),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    const left = await waitFor(
      async () => ((await disagreeingNodes(pool, a.nodes, a)).length === 0 ? true : undefined),
      { timeoutMs: a.timeoutMs, intervalMs: 20, signal: ctx.signal },
    );
    const agreedAt = Date.now();
    if (!left) {
      const still = await disagreeingNodes(pool, a.nodes, a);
      throw failedError(
        'E_NO_AGREEMENT',
        `after ${a.timeoutMs} ms these nodes still disagree about the new roles: ${still.join(', ')}`,
        'check the cluster bus between them (cluster port = port + 10000); retry the step',
      );
    }
    const sentAt = (ctx.outputs[a.failoverStep] as { sentAt?: number } | undefined)?.sentAt;
    return { agreedAt, failoverToAgreementMs: sentAt ? agreedAt - sentAt : undefined };
  },
  async verify(ctx) {
    const still = await disagreeingNodes(ctx.env.pool(ctx.args.cluster), ctx.args.nodes, ctx.args);
    return [
      cond(
        'all nodes agree',
        still.length === 0,
        'every reachable node sees the new roles',
        `still disagreeing: ${still.join(', ')}`,
      ),
    ];
  },
};
