import { failedError, usageError } from '../errors.js';
import { findNode, type Topology, type TopologyNode } from '../redis/topology.js';
import { parseMode, resolveFailoverPair, type FailoverPair } from '../redis/failover.js';
import { pass, type Condition, type KindParam, type StepEnv } from './kind.js';

/** The cluster a step acts on: a name from the inventory, checked at plan time. */
export function clusterArg(raw: Record<string, string>, topology: (c: string) => Topology): Topology {
  const name = raw.cluster;
  if (!name)
    throw usageError(
      'E_PARAM',
      'the cluster parameter is missing',
      'pass --param cluster=NAME (a cluster of the inventory)',
    );
  return topology(name);
}

/**
 * The cluster and the node `node=HOST:PORT` names in it. An unknown node is
 * bad input: a usage error listing the cluster's nodes, as the failover
 * steps report it (resolveFailoverPair).
 */
export function nodeArg(
  raw: Record<string, string>,
  topology: (c: string) => Topology,
): { t: Topology; n: TopologyNode } {
  const t = clusterArg(raw, topology);
  const n = raw.node ? findNode(t, raw.node) : undefined;
  if (!n)
    throw usageError(
      'E_NODE_UNKNOWN',
      `${raw.node ?? '(none given)'} is not a node of cluster ${t.cluster} (nodes: ${t.nodes.map((x) => x.address).join(', ')})`,
      'pass --param node= one of the listed addresses',
    );
  return { t, n };
}

/**
 * The failover pair most failover steps share: resolved the same way by each,
 * from the same topology. `reverse: true` is the fail-back of that failover:
 * the original master is promoted back in place of the replica that replaced
 * it, so its preconditions only hold once the steps before it have run.
 */
export function failoverArgs(
  raw: Record<string, string>,
  topology: (c: string) => Topology,
): { cluster: string; reverse: boolean } & FailoverPair {
  const t = clusterArg(raw, topology);
  const pair = resolveFailoverPair(t, raw.node, parseMode(raw.mode));
  if (raw.reverse !== 'true') return { cluster: t.cluster, reverse: false, ...pair };
  if (pair.mode !== 'default')
    throw usageError(
      'E_PARAM',
      `failback=true needs mode=default (got mode=${pair.mode})`,
      'fail back with a planned failover only: drop failback or use mode=default',
    );
  return { cluster: t.cluster, reverse: true, candidate: pair.master, master: pair.candidate, mode: 'default' };
}

/** Preconditions of a fail-back step, evaluated before the failover it reverses has run. */
export function deferredUntilFailover(a: {
  reverse: boolean;
  candidate: { address: string };
  master: { address: string };
}): Condition[] | undefined {
  if (!a.reverse) return undefined;
  return [
    pass(
      'checked when the step runs',
      `fail-back: ${a.candidate.address} is master now and becomes ${a.master.address}'s replica in the steps before this one`,
    ),
  ];
}

/** Keys the masters of a cluster hold now (INFO keyspace of each master that answers). */
export async function liveKeys(env: StepEnv, cluster: string): Promise<number> {
  const t = await env.topology(cluster);
  const masters = t.nodes.filter((n) => n.role === 'master');
  // A master that does not answer may hold keys: unknown is not "empty".
  const silent = masters.filter((n) => !n.self);
  if (silent.length)
    throw failedError(
      'E_KEYS_UNKNOWN',
      `cannot count the keys of ${cluster}: ${silent.map((n) => n.address).join(', ')} do not answer`,
      'bring them back, then retry',
    );
  return masterKeys(t);
}

/** Keys the masters of a topology held when it was read (a master that did not answer counts 0). Pure. */
export function masterKeys(t: Topology): number {
  return t.nodes.filter((n) => n.role === 'master').reduce((s, n) => s + (n.self?.keys ?? 0), 0);
}

/**
 * A numeric parameter: a finite number within bounds, or a usage error naming
 * it (a bare Number() lets 0, negatives and NaN through: a canary interval of
 * NaN is a write loop without pause).
 */
export function numberParam(
  raw: Record<string, string>,
  key: string,
  dflt: number,
  o: { min: number; max?: number; unit?: string },
): number {
  const text = raw[key];
  if (text === undefined || text === '') return dflt;
  const v = Number(text);
  if (!Number.isFinite(v) || v < o.min || (o.max !== undefined && v > o.max)) {
    const range = o.max !== undefined ? `between ${o.min} and ${o.max}` : `at least ${o.min}`;
    throw usageError(
      'E_PARAM',
      `${key}=${text} is not a number ${range}${o.unit ? ` (${o.unit})` : ''}`,
      `pass --param ${key}=${dflt}, or another number ${range}`,
    );
  }
  return v;
}

/** Parameter declarations shared by several kinds (KindParam). */
export const CLUSTER_PARAM = { cluster: { help: 'the inventory cluster the step acts on' } } as const satisfies Record<
  string,
  KindParam
>;
export const NODE_PARAMS = {
  ...CLUSTER_PARAM,
  node: { help: 'the node the step acts on, HOST:PORT (or its node id)' },
} as const satisfies Record<string, KindParam>;
export const FAILOVER_PARAMS = {
  ...NODE_PARAMS,
  mode: { help: 'CLUSTER FAILOVER mode: default (planned, no write lost), force or takeover', default: 'default' },
  reverse: {
    help: 'true: the fail-back of the failover before it (the old master is promoted back)',
    type: 'bool',
    default: 'false',
  },
} as const satisfies Record<string, KindParam>;
export const SOURCE_TARGET_PARAMS = {
  source: { help: 'the inventory cluster data comes from' },
  target: { help: 'the inventory cluster data goes to' },
} as const satisfies Record<string, KindParam>;
/** How a migration picks the one master that collects every slot. */
export const COLLECTOR_PARAMS = {
  consolidated: {
    help: 'true: one file, from the source master that collected every slot to the target master that did',
    type: 'bool',
    default: 'false',
  },
  via: { help: 'the source master that collects every slot (default: the one using the most memory)' },
  collector: { help: 'the target master that collects every slot (default: the one using the most memory)' },
} as const satisfies Record<string, KindParam>;
/** The nodes a stop/back-up/start step takes: a whole cluster, or the collecting master and its replicas. */
export const GROUP_PARAMS = {
  ...CLUSTER_PARAM,
  target: { help: 'the cluster, when the runbook names it target (takes precedence over cluster)' },
  onlyCollector: {
    help: 'true: only the master named by pivot (or the collecting master) and its replicas',
    type: 'bool',
    default: 'false',
  },
  pivot: { help: 'the collecting master, HOST:PORT (default: the one using the most memory)' },
} as const satisfies Record<string, KindParam>;
