import { countSlots } from '../../redis/slots.js';
import { findNode } from '../../redis/topology.js';
import { clusterArg, NODE_PARAMS } from '../args.js';
import { clusterConditions, shardBaseline, type ShardBaseline } from './check-cluster.js';
import { cond, type Condition, type StepKind, onlyReads } from '../kind.js';

interface Args {
  cluster: string;
  baselineStep: string;
  /** A node expected to be down (a drill without restore); everything else must answer. */
  tolerateDown?: string;
  /** A node that must be gone from every node's CLUSTER NODES (decommission). */
  gone?: { id: string; address: string };
  /** per-shard: each shard's key count unchanged (slots did not move); total: the sum only (slots moved). */
  keys: 'per-shard' | 'total';
}

/** Compare key counts with the baseline the preflight step recorded. */
export function keyConditions(
  baseline: ShardBaseline[] | undefined,
  now: ShardBaseline[],
  mode: 'per-shard' | 'total',
  baselineStep: string,
): Condition[] {
  // Fails closed: a verification that silently drops its key check when the baseline is
  // missing would pass a run that lost keys.
  if (!baseline)
    return [
      cond(
        mode === 'total' ? 'total key count not lower' : 'keys per shard not lower',
        false,
        '',
        `no key counts recorded by step ${baselineStep} to compare with`,
      ),
    ];
  if (mode === 'total') {
    const sum = (xs: ShardBaseline[]) => xs.reduce((s, x) => s + (x.keys ?? 0), 0);
    const unknown = [...baseline, ...now].filter((x) => x.keys === null).map((x) => x.master);
    if (unknown.length) return [cond('no keys lost', false, '', `key counts unknown for ${unknown.join(', ')}`)];
    // Not lower rather than equal: keys written meanwhile are fine. Keys that expired
    // meanwhile also lower the count; the message says so rather than calling them lost.
    return [
      cond(
        'total key count not lower',
        sum(now) >= sum(baseline),
        `${sum(now)} keys now, ${sum(baseline)} before`,
        `${sum(now)} keys now, ${sum(baseline)} before: ${sum(baseline) - sum(now)} fewer (lost, or expired since the baseline)`,
      ),
    ];
  }
  const byRanges = new Map(now.map((s) => [s.ranges, s]));
  // Not lower rather than equal, as for the total: clients keep writing through a failover,
  // and a shard that gained keys lost none of the ones counted. A shard with fewer keys
  // lost some, or clients deleted them or they expired meanwhile: the message says so.
  const fewer = baseline
    .filter((b) => b.keys !== null && (byRanges.get(b.ranges)?.keys ?? -1) < b.keys)
    .map((b) => `slots ${b.ranges}: ${b.keys} -> ${byRanges.get(b.ranges)?.keys ?? 'no owner'}`);
  return [
    cond(
      'keys per shard not lower',
      fewer.length === 0,
      `${baseline.length} shards hold at least the keys they held before`,
      `${fewer.join('; ')} (lost, or deleted or expired since the baseline)`,
    ),
  ];
}

export const verifyClusterStep: StepKind<Args> = {
  kind: 'verify-cluster',
  summary: 'Verify the cluster is ok, every slot covered, and no keys lost against the preflight baseline',
  params: {
    ...NODE_PARAMS,
    baselineStep: {
      help: 'the check-cluster step whose keys per shard are the baseline',
      type: 'step',
      default: 'preflight',
    },
    gone: { help: 'true: node must be forgotten by every other node', type: 'bool', default: 'false' },
    keys: { help: 'per-shard: no shard holds fewer keys; total: the cluster holds no fewer', default: 'per-shard' },
    tolerateDown: { help: 'node: the node named by node may be down' },
  },
  resolve(raw, topology) {
    const t = clusterArg(raw, topology);
    const n = raw.gone === 'true' && raw.node ? findNode(t, raw.node) : undefined;
    const tolerate = raw.tolerateDown === 'node' && raw.node ? findNode(t, raw.node)?.address : undefined;
    return {
      cluster: t.cluster,
      baselineStep: raw.baselineStep ?? 'preflight',
      tolerateDown: tolerate,
      gone: n ? { id: n.id, address: n.address } : undefined,
      keys: raw.keys === 'total' ? 'total' : 'per-shard',
    };
  },
  title: (a) =>
    `Verify cluster ${a.cluster}: ok, all 16384 slots covered, ${a.keys === 'total' ? 'no keys lost' : 'keys per shard not lower'}${a.gone ? `, no node lists ${a.gone.address}` : ''}${a.tolerateDown ? ` (${a.tolerateDown} left down)` : ''}`,
  commands: () => [{ target: 'every node', command: 'CLUSTER NODES; CLUSTER INFO; INFO all' }],
  check: onlyReads,
  async run(ctx) {
    const t = await ctx.env.topology(ctx.args.cluster);
    return { shards: shardBaseline(t) };
  },
  async verify(ctx) {
    const a = ctx.args;
    const t = await ctx.env.topology(a.cluster);
    const out = clusterConditions(t, a.tolerateDown, false);
    const owned = t.nodes.filter((n) => n.role === 'master').reduce((s, n) => s + countSlots(n.slots), 0);
    out.push(cond('slot count', owned === 16384, `masters own 16384 slots`, `masters own ${owned} slots`));
    if (a.gone) {
      const listing = t.nodes.filter((n) => n.self?.view.some((l) => l.id === a.gone!.id)).map((n) => n.address);
      out.push(
        cond(
          'node forgotten',
          listing.length === 0 && !t.nodes.some((n) => n.id === a.gone!.id),
          `no node lists ${a.gone.address}`,
          `still listed by ${listing.join(', ') || 'the seed'}`,
        ),
      );
    }
    const baseline = (ctx.outputs[a.baselineStep] as { shards?: ShardBaseline[] } | undefined)?.shards;
    out.push(...keyConditions(baseline, shardBaseline(t), a.keys, a.baselineStep));
    return out;
  },
};
