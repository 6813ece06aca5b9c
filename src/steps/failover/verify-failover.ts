import { replicationOf, type FailoverPair } from '../../redis/failover.js';
import { failoverArgs, FAILOVER_PARAMS } from '../args.js';
import { clusterConditions, shardBaseline, type ShardBaseline } from '../cluster/check-cluster.js';
import { cond, pass, type Condition, type StepKind, onlyReads } from '../kind.js';
import { keyConditions } from '../cluster/verify-cluster.js';

type Args = { cluster: string; reverse: boolean; baselineStep: string } & FailoverPair;

export const verifyFailoverStep: StepKind<Args> = {
  kind: 'verify-failover',
  summary: 'Verify roles swapped, cluster ok and keys per shard not lower',
  params: {
    ...FAILOVER_PARAMS,
    baselineStep: {
      help: 'the check-cluster step whose keys per shard are the baseline',
      type: 'step',
      default: 'preflight',
    },
  },
  resolve: (raw, topology) => ({ ...failoverArgs(raw, topology), baselineStep: raw.baselineStep ?? 'preflight' }),
  title: (a) =>
    `Verify ${a.candidate.address} is master, ${a.master.address} its replica, cluster ok, keys per shard not lower`,
  commands: () => [{ target: 'every node', command: 'CLUSTER NODES; CLUSTER INFO; INFO all' }],
  check: onlyReads,
  async run(ctx) {
    const t = await ctx.env.topology(ctx.args.cluster);
    return { shards: shardBaseline(t) };
  },
  async verify(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    const t = await ctx.env.topology(a.cluster);
    const out: Condition[] = [];
    const cand = await replicationOf(pool, a.candidate.address);
    out.push(
      cond(
        'new master',
        cand.role === 'master',
        `${a.candidate.address} is master`,
        `${a.candidate.address} is ${cand.role}`,
      ),
    );
    const old = await replicationOf(pool, a.master.address).catch(() => undefined);
    if (old) {
      const follows = old.role === 'replica' && `${old.masterHost}:${old.masterPort}` === a.candidate.address;
      out.push(
        cond(
          'old master demoted',
          follows,
          `${a.master.address} replicates ${a.candidate.address}`,
          `${a.master.address} is ${old.role}${old.masterHost ? ` of ${old.masterHost}:${old.masterPort}` : ''}`,
        ),
      );
    } else {
      out.push(
        pass(
          'old master demoted',
          `${a.master.address} is down; it rejoins as a replica of ${a.candidate.address} when it returns`,
        ),
      );
    }
    out.push(...clusterConditions(t, a.mode === 'default' ? undefined : a.master.address));
    const baseline = (ctx.outputs[a.baselineStep] as { shards?: ShardBaseline[] } | undefined)?.shards;
    out.push(...keyConditions(baseline, shardBaseline(t), 'per-shard', a.baselineStep));
    return out;
  },
};
