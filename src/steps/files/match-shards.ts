import { describeServer, serverIdentity, type ServerIdentity } from '../../redis/server-identity.js';
import { usageError } from '../../errors.js';
import { pairShards, type ShardPair } from '../../redis/pairing.js';
import { chooseCollector } from '../../redis/consolidate.js';
import { masters } from '../../redis/topology.js';
import type { Topology, TopologyNode } from '../../redis/topology.js';
import { shellQuote } from '../../hosts/copy.js';
import { hostOf } from '../../address.js';
import { aofLayout } from '../../hosts/node-files.js';
import { aofCopy } from './aof-copy.js';
import { cond, pass, type Condition, type StepKind, type StepRunContext, onlyReads } from '../kind.js';
import { liveKeys, masterKeys, SOURCE_TARGET_PARAMS, COLLECTOR_PARAMS } from '../args.js';

export type CopyFormat = 'rdb' | 'aof';

interface Args {
  source: string;
  target: string;
  format: CopyFormat;
  pairs: ShardPair[];
  targetKeys: number;
  /** Every target node, for the host checks. */
  targetNodes: string[];
  sourceMasters: string[];
  /** Bytes each target master's data directory must take (its source's used_memory). */
  needs: Record<string, number>;
}

export function parseFormat(raw: string | undefined): CopyFormat {
  if (raw !== 'rdb' && raw !== 'aof')
    throw usageError('E_PARAM', `format=${raw} is not a persistence format`, 'use format=rdb or format=aof');
  return raw;
}

/** The two clusters of a migration, by their parameter names. */
export function sourceAndTarget(
  raw: Record<string, string>,
  topology: (c: string) => Topology,
): { source: Topology; target: Topology } {
  if (!raw.source || !raw.target)
    throw usageError(
      'E_PARAM',
      'source and target clusters are needed',
      'pass --param source=NAME --param target=NAME',
    );
  if (raw.source === raw.target)
    throw usageError('E_PARAM', `source and target are both \`${raw.source}\``, 'pass two different clusters');
  return { source: topology(raw.source), target: topology(raw.target) };
}

/** Which server a node that answered runs (a plan made before server identities: from its redis_version). */
const serverOf = (n: TopologyNode): ServerIdentity =>
  n.self!.server ?? serverIdentity({ redis_version: n.self!.version });

/**
 * The newest source's files must load on the oldest target: a server loads
 * its own RDB format and older ones, never a newer one (Redis 7.4 writes RDB
 * 12, which Redis 7.2 and Valkey 8.0 refuse). An AOF carries an RDB preamble
 * by default, so the same holds for it.
 */
function versionCondition(a: Args, s: Topology, t: Topology): Condition {
  const servers = (x: Topology) =>
    x.nodes
      .filter((n) => n.self)
      .map(serverOf)
      .sort((p, q) => p.rdbVersion - q.rdbVersion);
  const src = servers(s).pop();
  const dst = servers(t)[0];
  if (!src || !dst) return cond('versions', false, '', 'no node of the source or the target answered');
  return cond(
    'versions',
    src.rdbVersion <= dst.rdbVersion,
    `source ${describeServer(src)} writes RDB ${src.rdbVersion}, target ${describeServer(dst)} loads up to RDB ${dst.rdbVersion}`,
    `source ${describeServer(src)} writes RDB ${src.rdbVersion}, newer than target ${describeServer(dst)} loads ` +
      `(RDB ${dst.rdbVersion} at most): its ${a.format.toUpperCase()} files do not load there; ` +
      // Not "or use migrate-sync": it refuses a target older than the source as well.
      'upgrade the target first (no runbook migrates to an older server)',
  );
}

/** The target nodes must load the copied format at start: appendonly decides which file a node reads. */
function persistenceCondition(a: Args, s: Topology, t: Topology): Condition {
  const aofOn = t.nodes.filter((n) => n.self?.persistence.appendonly).map((n) => n.address);
  if (a.format === 'rdb') {
    return cond(
      'target loads an RDB',
      aofOn.length === 0,
      'appendonly no on every target node',
      `${aofOn.join(', ')} have appendonly yes and would load their AOF, not the copied RDB: use format=aof, or set appendonly no there (CONFIG SET + CONFIG REWRITE)`,
    );
  }
  const srcOff = s.nodes
    .filter((n) => n.role === 'master' && n.self && !n.self.persistence.appendonly)
    .map((n) => n.address);
  const tOff = t.nodes.filter((n) => n.self && !n.self.persistence.appendonly).map((n) => n.address);
  return cond(
    'AOF on both sides',
    srcOff.length + tOff.length === 0,
    'appendonly yes on the source masters and every target node',
    `appendonly no on ${[...srcOff, ...tOff].join(', ')}: use format=rdb, or turn the AOF on there first`,
  );
}

/**
 * An AOF must be one the target reads, pair by pair: Redis 6 keeps a single
 * file, Redis 7+ a directory (aofCopy). A Redis 6 file into Redis 7+ is
 * adopted by the target at start; a Redis 7 directory means nothing to
 * Redis 6, and is refused here, in the plan, before anything is stopped.
 */
function aofLayoutCondition(a: Args, s: Topology, t: Topology): Condition | undefined {
  if (a.format !== 'aof') return undefined;
  const ways = new Set<string>();
  // Refused pairs, grouped by the two servers: each pair of versions is named once, with its
  // nodes filled in for %s.
  const refused = new Map<string, { writes: string; reads: string; src: string[]; dst: string[] }>();
  for (const p of a.pairs) {
    const sn = s.nodes.find((n) => n.id === p.source.id);
    const tn = t.nodes.find((n) => n.id === p.target.id);
    if (!sn?.self || !tn?.self) continue; // an unanswered node is the versions condition's refusal
    const [sp, tp] = [sn.self.persistence, tn.self.persistence];
    const c = aofCopy(sp, tp);
    if (c.ok) {
      const adopt = c.mustBeAbsent ? ' (the target adopts the file into its AOF directory at start)' : '';
      ways.add(`${aofLayout(sp)} to ${aofLayout(tp)}${adopt}`);
      continue;
    }
    const [source, target] = [describeServer(serverOf(sn)), describeServer(serverOf(tn))];
    const [writes, reads] = [`${source} (%s) writes ${c.writes}`, `${target} (%s) reads ${c.reads}`];
    const key = `${writes}\n${reads}`;
    const g = refused.get(key) ?? { writes, reads, src: [], dst: [] };
    g.src.push(sn.address);
    g.dst.push(tn.address);
    refused.set(key, g);
  }
  const why = [...refused.values()].map(
    (g) => `source ${g.writes.replace('%s', g.src.join(', '))}; target ${g.reads.replace('%s', g.dst.join(', '))}`,
  );
  return cond(
    'AOF layout',
    refused.size === 0,
    [...ways].join('; ') || 'no pair answered',
    `${why.join('; ')}; upgrade the target to Redis 7 or later first (no runbook migrates to an older server)`,
  );
}

/**
 * Two target masters on one host, sharing a data directory, may use the same
 * appendfilename: Redis 7 only prefixes the files inside each node's own AOF
 * directory with it. A Redis 6 file copied into both would land on one path,
 * the second copy over the first: refused, naming the path.
 */
export function sharedDestinationCondition(
  a: Pick<Args, 'format' | 'pairs'>,
  s: Topology,
  t: Topology,
): Condition | undefined {
  if (a.format !== 'aof') return undefined;
  const by = new Map<string, string[]>();
  for (const p of a.pairs) {
    const sp = s.nodes.find((n) => n.id === p.source.id)?.self?.persistence;
    const tp = t.nodes.find((n) => n.id === p.target.id)?.self?.persistence;
    const c = sp && tp ? aofCopy(sp, tp) : undefined;
    if (!c?.ok) continue;
    const key = `${hostOf(p.target.address)}:${tp!.dir.replace(/\/+$/, '')}/${c.name}`;
    by.set(key, [...(by.get(key) ?? []), p.target.address]);
  }
  const shared = [...by].filter(([, v]) => v.length > 1).map(([k, v]) => `${v.join(' and ')} would both get ${k}`);
  if (!shared.length) return undefined;
  return cond(
    'one AOF per target path',
    false,
    '',
    `${shared.join('; ')}: give each target master its own appendfilename or data directory`,
  );
}

/** Disk: the target master's data directory must hold about the source master's dataset. */
async function diskCondition(ctx: StepRunContext<Args>, t: Topology): Promise<Condition> {
  const a = ctx.args;
  const short: string[] = [];
  for (const p of a.pairs) {
    const need = a.needs[p.target.address] ?? 0;
    const tn = t.nodes.find((n) => n.id === p.target.id);
    const host = ctx.env.host(p.target.address);
    if (!tn?.self || !host) {
      short.push(`${p.target.address}: not checked (no answer, or no inventory host)`);
      continue;
    }
    const df = await readDf(ctx, p.target.address, tn.self.persistence.dir);
    if (df === undefined) short.push(`${p.target.address}: df on its host failed, free space unknown`);
    else if (df < need * 1.1)
      short.push(
        `${p.target.address}: ${Math.round(df / 1e6)} MB free in ${tn.self.persistence.dir}, about ${Math.round((need * 1.1) / 1e6)} MB needed`,
      );
  }
  return cond(
    'disk space on the targets',
    short.length === 0,
    'each target data directory has room for its shard (used_memory + 10%)',
    short.join('; '),
  );
}

export const matchShardsStep: StepKind<Args> = {
  kind: 'match-shards',
  summary: 'Map each source master to the target master with the same slots, and check the target can take the files',
  params: { ...SOURCE_TARGET_PARAMS, ...COLLECTOR_PARAMS, format: { help: 'rdb or aof', default: 'rdb' } },
  resolve(raw, topology) {
    const { source, target } = sourceAndTarget(raw, topology);
    const used = (id: string) => source.nodes.find((n) => n.id === id)?.self?.usedMemory ?? 0;
    let pairs: ShardPair[];
    let needs: Record<string, number>;
    if (raw.consolidated === 'true') {
      // One file: the source master that collects every slot, to the target master that does.
      const v = chooseCollector(source, raw.via || undefined);
      const c = chooseCollector(target, raw.collector || undefined);
      pairs = [
        {
          ranges: '0-16383',
          source: { id: v.id, address: v.address },
          target: { id: c.id, address: c.address },
          targetReplicas: target.nodes
            .filter((n) => n.masterId === c.id)
            .map((n) => ({ id: n.id, address: n.address })),
        },
      ];
      needs = { [c.address]: masters(source).reduce((s, m) => s + used(m.id), 0) };
    } else {
      pairs = pairShards(source, target);
      needs = Object.fromEntries(pairs.map((p) => [p.target.address, used(p.source.id)]));
    }
    const targetKeys = masterKeys(target);
    return {
      source: source.cluster,
      target: target.cluster,
      format: parseFormat(raw.format ?? 'rdb'),
      pairs,
      targetKeys,
      targetNodes: target.nodes.map((n) => n.address),
      sourceMasters: pairs.map((p) => p.source.address),
      needs,
    };
  },
  title: (a) =>
    a.pairs[0]?.ranges === '0-16383' && a.pairs.length === 1
      ? `Check that ${a.pairs[0].target.address} can load the file of ${a.pairs[0].source.address} (every slot collected on each)`
      : `Pair ${a.pairs.length} shards by slots: ${a.pairs.map((p) => `${p.source.address} -> ${p.target.address} (${p.ranges})`).join(', ')}`,
  commands: () => [
    { target: 'every node of both clusters', command: 'INFO; CONFIG GET appendonly; df on the target hosts' },
  ],
  destructive: (a) =>
    a.targetKeys > 0
      ? `target ${a.target} holds ${a.targetKeys} keys: the copy replaces them (their files are kept in a backup directory on each host)`
      : undefined,
  // Read again right before the copy is committed to: the target may have gained keys since the plan.
  async liveDestructive(ctx) {
    const n = await liveKeys(ctx.env, ctx.args.target);
    return n > 0
      ? `target ${ctx.args.target} holds ${n} keys now: the copy replaces them (their files are kept in a backup directory on each host)`
      : undefined;
  },
  async check(ctx) {
    const a = ctx.args;
    const [s, t] = await Promise.all([ctx.env.topology(a.source), ctx.env.topology(a.target)]);
    const out: Condition[] = [];
    out.push(versionCondition(a, s, t));
    out.push(persistenceCondition(a, s, t));
    for (const c of [aofLayoutCondition(a, s, t), sharedDestinationCondition(a, s, t)]) if (c) out.push(c);
    const missing = a.targetNodes.filter((n) => !ctx.env.host(n)?.service('start'));
    out.push(
      cond(
        'target hosts can start nodes',
        missing.length === 0,
        'every target node has a host with service.start',
        `${missing.join(', ')}: no inventory host with service.start (the runbook stops and starts the target nodes)`,
      ),
    );
    const srcNoHost = a.sourceMasters.filter((n) => !ctx.env.host(n));
    out.push(
      cond(
        'source hosts known',
        srcNoHost.length === 0,
        'every source master has an inventory host (files are read there)',
        `${srcNoHost.join(', ')}: add their hosts under hosts:`,
      ),
    );
    out.push(await diskCondition(ctx, t));
    if (a.targetKeys > 0)
      out.push(
        pass(
          'target not empty',
          `target holds ${a.targetKeys} keys; they are replaced (this step is marked destructive)`,
        ),
      );
    return out;
  },
  async run(ctx) {
    return { pairs: ctx.args.pairs };
  },
  verify: onlyReads,
};

/** Free bytes in a directory, read with df on the node's host (a read: not journaled, allowed in a plan). */
async function readDf(ctx: StepRunContext<Args>, address: string, dir: string): Promise<number | undefined> {
  const h = ctx.env.host(address);
  if (!h) return undefined;
  const r = await h.read(`df -Pk ${shellQuote(dir)} | tail -1`);
  const avail = Number(r.stdout.trim().split(/\s+/)[3]);
  return r.exitCode === 0 && Number.isFinite(avail) ? avail * 1024 : undefined;
}
