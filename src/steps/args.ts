import { failedError, usageError } from '../errors.js';
import { findNode, type Topology, type TopologyNode } from '../redis/topology.js';
import { parseMode, resolveFailoverPair, type FailoverPair } from '../redis/failover.js';
import { pass, type Condition, type StepEnv } from './kind.js';

/** The cluster a step acts on: a name from the inventory, checked at plan time. */
export function clusterArg(raw: Record<string, string>, topology: (c: string) => Topology): Topology {
  const name = raw.cluster;
  if (!name) throw usageError('E_PARAM', 'the cluster parameter is missing', 'pass --param cluster=NAME (a cluster of the inventory)');
  return topology(name);
}

/**
 * The cluster and the node `node=HOST:PORT` names in it. An unknown node is
 * bad input: a usage error listing the cluster's nodes, as the failover
 * steps report it (resolveFailoverPair).
 */
export function nodeArg(raw: Record<string, string>, topology: (c: string) => Topology): { t: Topology; n: TopologyNode } {
  const t = clusterArg(raw, topology);
  const n = raw.node ? findNode(t, raw.node) : undefined;
  if (!n) throw usageError('E_NODE_UNKNOWN', `${raw.node ?? '(none given)'} is not a node of cluster ${t.cluster} (nodes: ${t.nodes.map((x) => x.address).join(', ')})`, 'pass --param node= one of the listed addresses');
  return { t, n };
}

/**
 * The failover pair most failover steps share: resolved the same way by each,
 * from the same topology. `reverse: true` is the fail-back of that failover:
 * the original master is promoted back in place of the replica that replaced
 * it, so its preconditions only hold once the steps before it have run.
 */
export function failoverArgs(raw: Record<string, string>, topology: (c: string) => Topology): { cluster: string; reverse: boolean } & FailoverPair {
  const t = clusterArg(raw, topology);
  const pair = resolveFailoverPair(t, raw.node, parseMode(raw.mode));
  if (raw.reverse !== 'true') return { cluster: t.cluster, reverse: false, ...pair };
  if (pair.mode !== 'default') throw usageError('E_PARAM', `failback=true needs mode=default (got mode=${pair.mode})`, 'fail back with a planned failover only: drop failback or use mode=default');
  return { cluster: t.cluster, reverse: true, candidate: pair.master, master: pair.candidate, mode: 'default' };
}

/** Preconditions of a fail-back step, evaluated before the failover it reverses has run. */
export function deferredUntilFailover(a: { reverse: boolean; candidate: { address: string }; master: { address: string } }): Condition[] | undefined {
  if (!a.reverse) return undefined;
  return [pass('checked when the step runs', `fail-back: ${a.candidate.address} is master now and becomes ${a.master.address}'s replica in the steps before this one`)];
}

/** Keys the masters of a cluster hold now (INFO keyspace of each master that answers). */
export async function liveKeys(env: StepEnv, cluster: string): Promise<number> {
  const t = await env.topology(cluster);
  const masters = t.nodes.filter((n) => n.role === 'master');
  // A master that does not answer may hold keys: unknown is not "empty".
  const silent = masters.filter((n) => !n.self);
  if (silent.length) throw failedError('E_KEYS_UNKNOWN', `cannot count the keys of ${cluster}: ${silent.map((n) => n.address).join(', ')} do not answer`, 'bring them back, then retry');
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
export function numberParam(raw: Record<string, string>, key: string, dflt: number, o: { min: number; max?: number; unit?: string }): number {
  const text = raw[key];
  if (text === undefined || text === '') return dflt;
  const v = Number(text);
  if (!Number.isFinite(v) || v < o.min || (o.max !== undefined && v > o.max)) {
    const range = o.max !== undefined ? `between ${o.min} and ${o.max}` : `at least ${o.min}`;
    throw usageError('E_PARAM', `${key}=${text} is not a number ${range}${o.unit ? ` (${o.unit})` : ''}`, `pass --param ${key}=${dflt}, or another number ${range}`);
  }
  return v;
}
