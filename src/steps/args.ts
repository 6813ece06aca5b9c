import { usageError } from '../errors.js';
import type { Topology } from '../redis/topology.js';
import { parseMode, resolveFailoverPair, type FailoverPair } from '../redis/failover.js';

/** The cluster a step acts on: a name from the inventory, checked at plan time. */
export function clusterArg(raw: Record<string, string>, topology: (c: string) => Topology): Topology {
  const name = raw.cluster;
  if (!name) throw usageError('E_PARAM', 'the cluster parameter is missing', 'pass --param cluster=NAME (a cluster of the inventory)');
  return topology(name);
}

/** The failover pair most failover steps share: resolved the same way by each, from the same topology. */
export function failoverArgs(raw: Record<string, string>, topology: (c: string) => Topology): { cluster: string } & FailoverPair {
  const t = clusterArg(raw, topology);
  return { cluster: t.cluster, ...resolveFailoverPair(t, raw.node, parseMode(raw.mode)) };
}
