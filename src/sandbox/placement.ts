import type { ClusterLayout } from './layout.js';

/** Hosts of a `--hosts N` sandbox. */
export const MIN_HOSTS = 2;
export const MAX_HOSTS = 8;

/**
 * Which host (0-based) each node runs on. Round robin, arranged so that
 *  - a master and its replicas are on different hosts (as long as there are
 *    more hosts than copies of a shard), so losing a host is a failover;
 *  - the target's master i sits one host further than the source's master i,
 *    which owns the same slots: a file copy between them crosses hosts.
 */
export function placeNodes(layouts: ClusterLayout[], hostCount: number): Map<number, number> {
  const place = new Map<number, number>();
  for (const l of layouts) {
    const shift = l.name === 'target' ? 1 : 0;
    l.masterPorts.forEach((port, i) => {
      place.set(port, (i + shift) % hostCount);
      l.replicaPorts[i]!.forEach((r, j) => place.set(r, (i + shift + 1 + j) % hostCount));
    });
  }
  return place;
}

/** The node ports on each host, in host order. */
export function nodesByHost(place: Map<number, number>, hostCount: number): number[][] {
  const out: number[][] = Array.from({ length: hostCount }, () => []);
  for (const [port, h] of [...place].sort((a, b) => a[0] - b[0])) out[h]!.push(port);
  return out;
}
