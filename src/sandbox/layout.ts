/**
 * Port layout of a sandbox cluster. Ports are derived, never chosen at
 * random, so a given --base-port always gives the same addresses and the
 * demo script and tests can name them.
 *
 *   masters:              base + i                              (i = 0..masters-1)
 *   replica j of master i: base + masters + i * replicas + j     (j = 0..replicas-1)
 *
 * e.g. base 7000, 3 masters, 1 replica: masters 7000-7002, replicas 7003
 * (of 7000), 7004 (of 7001), 7005 (of 7002). The source cluster uses
 * basePort, the target basePort + 100; at most 16 * (1 + 4) = 80 nodes fit
 * below that offset. Each node also binds its cluster bus on port + 10000.
 */
export const TARGET_PORT_OFFSET = 100;
export const CLUSTER_BUS_OFFSET = 10000;
export const MAX_MASTERS = 16;
export const MAX_REPLICAS = 4;

export type SandboxClusterName = 'source' | 'target';

export interface ClusterLayout {
  name: SandboxClusterName;
  masterPorts: number[];
  /** replicaPorts[i] are the replicas of masterPorts[i]. */
  replicaPorts: number[][];
  /** Masters first, then replicas in layout order. */
  ports: number[];
  replicasPerMaster: number;
}

export function clusterLayout(
  name: SandboxClusterName,
  base: number,
  masters: number,
  replicas: number,
): ClusterLayout {
  const masterPorts = Array.from({ length: masters }, (_, i) => base + i);
  const replicaPorts = masterPorts.map((_, i) =>
    Array.from({ length: replicas }, (_, j) => base + masters + i * replicas + j),
  );
  return {
    name,
    masterPorts,
    replicaPorts,
    ports: [...masterPorts, ...replicaPorts.flat()],
    replicasPerMaster: replicas,
  };
}

export function busPort(port: number): number {
  return port + CLUSTER_BUS_OFFSET;
}
