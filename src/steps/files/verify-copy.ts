import { SOURCE_TARGET_PARAMS, COLLECTOR_PARAMS } from '../args.js';
import { clusterConditions, shardBaseline } from '../cluster/check-cluster.js';
import { sourceAndTarget } from './match-shards.js';
import type { PersistedShard } from './persist-masters.js';
import { cond, type StepKind, onlyReads } from '../kind.js';

interface Args {
  source: string;
  target: string;
  persistStep: string;
  total: boolean;
}

export const verifyCopyStep: StepKind<Args> = {
  kind: 'verify-copy',
  summary: "Verify the target: cluster ok, all slots covered, keys per shard equal to the source's at its save",
  params: {
    ...SOURCE_TARGET_PARAMS,
    persistStep: {
      help: 'the persist-masters step whose key counts at the save are compared',
      type: 'step',
      default: 'persist',
    },
    consolidated: COLLECTOR_PARAMS.consolidated,
  },
  resolve(raw, topology) {
    const { source, target } = sourceAndTarget(raw, topology);
    return {
      source: source.cluster,
      target: target.cluster,
      persistStep: raw.persistStep ?? 'persist',
      total: raw.consolidated === 'true',
    };
  },
  title: (a) =>
    `Verify ${a.target}: cluster ok, 16384 slots covered, keys per shard equal to ${a.source}'s at the save`,
  commands: () => [{ target: 'every target node', command: 'CLUSTER NODES; CLUSTER INFO; INFO all' }],
  check: onlyReads,
  async run(ctx) {
    const t = await ctx.env.topology(ctx.args.target);
    return { shards: shardBaseline(t) };
  },
  async verify(ctx) {
    const t = await ctx.env.topology(ctx.args.target);
    const saved = (ctx.outputs[ctx.args.persistStep] as { shards?: PersistedShard[] } | undefined)?.shards ?? [];
    if (ctx.args.total) {
      // Resharded since the copy: the whole target holds what the collecting master had at its save.
      const was = saved.reduce((s, x) => s + x.keys, 0);
      const now = shardBaseline(t).reduce((s, x) => s + (x.keys ?? 0), 0);
      return [
        ...clusterConditions(t),
        cond(
          'keys as saved',
          saved.length > 0 && now === was,
          `${now} keys, as many as the collecting master had at its save`,
          saved.length
            ? `${now} keys on the target, ${was} at the save`
            : `no record of the save (step ${ctx.args.persistStep})`,
        ),
      ];
    }
    const now = new Map(shardBaseline(t).map((s) => [s.ranges, s.keys]));
    const differ = saved
      .filter((s) => now.get(s.ranges) !== s.keys)
      .map((s) => `slots ${s.ranges}: ${s.keys} at the save, ${now.get(s.ranges) ?? 'no owner'} on the target`);
    return [
      ...clusterConditions(t),
      saved.length
        ? cond(
            'keys per shard as saved',
            differ.length === 0,
            `${saved.length} shards hold exactly the keys their source master had at the save`,
            differ.join('; '),
          )
        : cond('keys per shard as saved', false, '', `no record of the save (step ${ctx.args.persistStep})`),
    ];
  },
};
