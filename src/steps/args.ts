import { usageError } from '../errors.js';
import type { Topology } from '../redis/topology.js';
import { parseMode, resolveFailoverPair, type FailoverPair } from '../redis/failover.js';
import { pass, type Condition } from './kind.js';

/** The cluster a step acts on: a name from the inventory, checked at plan time. */
export function clusterArg(raw: Record<string, string>, topology: (c: string) => Topology): Topology {
  const name = raw.cluster;
  if (!name) throw usageError('E_PARAM', 'the cluster parameter is missing', 'pass --param cluster=NAME (a cluster of the inventory)');
  return topology(name);
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
