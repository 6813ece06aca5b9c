import { checkCluster, describeStranded, type StrandedSlots } from '../../redis/check.js';
import { formatRanges } from '../../redis/slots.js';
import type { Topology } from '../../redis/topology.js';
import { clusterArg, CLUSTER_PARAM } from '../args.js';
import { cond, type Condition, type StepKind } from '../kind.js';

interface Args {
  cluster: string;
  /** In force/takeover mode the master being replaced may be down; its absence is tolerated. */
  tolerateDown: string | undefined;
  nodes: string[];
}

export interface ShardBaseline {
  ranges: string;
  master: string;
  keys: number | null;
}

/**
 * Conditions for a healthy cluster, as `redis-cli --cluster check` judges it.
 * `tolerateDown`: a node allowed not to answer. Before a FORCE failover its
 * slots may also be uncovered (`relaxCoverage`); after any failover they must not.
 */
export function clusterConditions(
  t: Topology,
  tolerateDown?: string,
  relaxCoverage = tolerateDown !== undefined,
): Condition[] {
  const c = checkCluster(t);
  // c.failed entries may carry a suffix after the address ("127.0.0.1:7000 (fail)"): match the address exactly.
  const tolerated = (entry: string) =>
    tolerateDown !== undefined && (entry === tolerateDown || entry.startsWith(`${tolerateDown} `));
  const unreachable = c.unreachable.filter((u) => !tolerated(u));
  const failed = c.failed.filter((f) => !tolerated(f));
  const badStates = Object.entries(c.clusterStates).filter(([, s]) => s !== 'ok');
  return [
    cond(
      'nodes agree about slots',
      c.agree,
      `all ${t.nodes.length - c.unreachable.length} reachable nodes agree`,
      c.disagreements.join('; '),
    ),
    cond('no open slots', c.openSlots.length === 0, 'no slot is migrating or importing', c.openDetails.join('; ')),
    cond(
      'all 16384 slots covered',
      c.covered || relaxCoverage,
      'every slot has an owner',
      `missing ${formatRanges(c.uncovered)}`,
    ),
    cond(
      'cluster_state ok',
      badStates.length === 0 || relaxCoverage,
      'cluster_state:ok on every reachable node',
      badStates.map(([a, s]) => `${a}: ${s}`).join(', '),
    ),
    strandedCondition(c.stranded),
    cond(
      'every node reachable',
      unreachable.length === 0 && failed.length === 0,
      tolerateDown ? `all nodes but ${tolerateDown} answer` : `all ${t.nodes.length} nodes answer`,
      [...unreachable, ...failed.map((f) => `${f} flagged fail`)].join('; '),
    ),
  ];
}

/** No slot owned by a failed master that no replica can take over (Redis leaves those down). */
export function strandedCondition(s: readonly StrandedSlots[]): Condition {
  return cond(
    'no slots stranded on a failed master',
    s.length === 0,
    'every failed master has a live replica, or owns no slots',
    describeStranded(s),
  );
}

/**
 * Keys per shard (slot ranges -> key count). A master that does not answer is
 * counted through its replica with the highest offset, which is what a
 * FORCE failover will promote; with no answer at all the count is null.
 */
export function shardBaseline(t: Topology): ShardBaseline[] {
  return t.nodes
    .filter((n) => n.role === 'master' && n.slots.length > 0)
    .map((n) => {
      const replica = t.nodes
        .filter((r) => r.masterId === n.id && r.self)
        .sort((a, b) => (b.self?.replOffset ?? 0) - (a.self?.replOffset ?? 0))[0];
      return { ranges: formatRanges(n.slots), master: n.address, keys: n.self?.keys ?? replica?.self?.keys ?? null };
    })
    .sort((a, b) => a.ranges.localeCompare(b.ranges));
}

export const checkClusterStep: StepKind<Args> = {
  kind: 'check-cluster',
  summary: 'Check the cluster as redis-cli --cluster check does, and record keys per shard as the baseline',
  params: {
    ...CLUSTER_PARAM,
    mode: {
      help: "manual-failover's mode: with force or takeover, the failing master of node is expected down",
      default: 'default',
    },
    node: { help: "manual-failover's node (with mode force or takeover)" },
  },
  resolve(raw, topology) {
    const t = clusterArg(raw, topology);
    const mode = raw.mode ?? 'default';
    let tolerateDown: string | undefined;
    if (mode !== 'default' && raw.node) {
      // The master being replaced by a FORCE/TAKEOVER failover is expected to be down.
      const n = t.nodes.find((x) => x.address === raw.node);
      tolerateDown = n?.role === 'replica' ? t.nodes.find((x) => x.id === n.masterId)?.address : n?.address;
    }
    return { cluster: t.cluster, tolerateDown, nodes: t.nodes.map((n) => n.address) };
  },
  title: (a) =>
    `Check cluster ${a.cluster} is healthy${a.tolerateDown ? ` (except ${a.tolerateDown}, expected down)` : ''}`,
  commands: (a) => a.nodes.map((n) => ({ target: n, command: 'CLUSTER NODES; CLUSTER INFO; INFO all' })),
  async check(ctx) {
    return clusterConditions(await ctx.env.topology(ctx.args.cluster), ctx.args.tolerateDown);
  },
  async run(ctx) {
    const t = await ctx.env.topology(ctx.args.cluster);
    return { shards: shardBaseline(t), fingerprint: t.fingerprint };
  },
  async verify(ctx) {
    return clusterConditions(await ctx.env.topology(ctx.args.cluster), ctx.args.tolerateDown);
  },
};
