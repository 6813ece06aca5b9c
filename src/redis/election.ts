import { parseClusterNodes, parseInfo, isMaster } from './cluster-nodes.js';
import type { ClusterPool } from './connect.js';

/** What decides whether a replica can win an automatic failover, read from the node. */
export interface ReplicaEligibility {
  address: string;
  reachable: boolean;
  noFailover: boolean;
  validityFactor: number;
  linkDownSinceSeconds: number | null;
  pingPeriodSeconds: number;
}

export async function replicaEligibility(pool: ClusterPool, address: string): Promise<ReplicaEligibility> {
  const node = pool.node(address);
  try {
    const get = async (name: string) => ((await node.call('CONFIG', 'GET', name)) as string[])[1] ?? '';
    const [info, noFailover, factor, ping] = await Promise.all([
      node.text('INFO', 'replication'),
      get('cluster-replica-no-failover'),
      get('cluster-replica-validity-factor'),
      get('repl-ping-replica-period'),
    ]);
    const r = parseInfo(info);
    return {
      address,
      reachable: true,
      noFailover: noFailover === 'yes',
      validityFactor: Number(factor || 10),
      linkDownSinceSeconds:
        r.master_link_down_since_seconds !== undefined && r.master_link_down_since_seconds !== '-1'
          ? Number(r.master_link_down_since_seconds)
          : null,
      pingPeriodSeconds: Number(ping || 10),
    };
  } catch {
    return {
      address,
      reachable: false,
      noFailover: false,
      validityFactor: 10,
      linkDownSinceSeconds: null,
      pingPeriodSeconds: 10,
    };
  }
}

/**
 * Why no replica took over (cluster.c clusterHandleSlaveFailover): each
 * reason an operator would otherwise dig out of the replicas' logs.
 */
export async function whyNoPromotion(
  pool: ClusterPool,
  replicas: string[],
  otherNodes: string[],
  nodeTimeoutMs: number,
  failedMasterId: string,
): Promise<string[]> {
  const reasons: string[] = [];
  const el = await Promise.all(replicas.map((r) => replicaEligibility(pool, r)));
  if (el.every((e) => !e.reachable)) reasons.push(`no replica answers (${replicas.join(', ')})`);
  for (const e of el.filter((x) => x.reachable)) {
    if (e.noFailover)
      reasons.push(`${e.address} has cluster-replica-no-failover yes: it never starts an automatic failover`);
    const maxAge = e.validityFactor > 0 ? (nodeTimeoutMs * e.validityFactor) / 1000 + e.pingPeriodSeconds : Infinity;
    if (e.linkDownSinceSeconds !== null && e.linkDownSinceSeconds > maxAge) {
      reasons.push(
        `${e.address} lost its master ${e.linkDownSinceSeconds} s ago, longer than node timeout x cluster-replica-validity-factor (${e.validityFactor}) + ping period allows (${Math.round(maxAge)} s): its data is too old to be promoted`,
      );
    }
  }
  // Failure detection and the election both need a majority of the masters that own slots.
  let view: ReturnType<typeof parseClusterNodes> | undefined;
  for (const n of otherNodes) {
    try {
      view = parseClusterNodes(await pool.node(n).text('CLUSTER', 'NODES'));
      break;
    } catch {
      /* next */
    }
  }
  if (view) {
    const voters = view.filter((l) => isMaster(l) && l.slots.length > 0);
    const up = voters.filter(
      (l) => !l.flags.includes('fail') && !l.flags.includes('fail?') && l.id !== failedMasterId,
    ).length;
    const majority = Math.floor(voters.length / 2) + 1;
    if (up < majority)
      reasons.push(
        `only ${up} of ${voters.length} slot-owning masters are up, fewer than the ${majority} that must agree the master failed and vote`,
      );
    const failed = view.find((l) => l.id === failedMasterId);
    if (failed && !failed.flags.includes('fail'))
      reasons.push(
        `the other nodes do not flag the master as failed (flags: ${failed.flags.join(',')}): failure detection has not reached a majority`,
      );
  }
  if (!reasons.length)
    reasons.push(
      'the replicas lost the election or are still retrying it (a failed election is retried after 4 x node timeout); read the replicas\' logs for "Failover attempt expired" or "Currently unable to failover"',
    );
  return reasons;
}
