import type { SandboxServer } from './servers.js';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * sandbox.json: what `down` and `status` need without asking any node. It is
 * written before the first node starts, so a sandbox that failed half-way
 * can still be found and stopped.
 */
export interface SandboxMetaCluster {
  name: 'source' | 'target';
  ports: number[];
  masters: number;
  replicasPerMaster: number;
  /** The server its nodes run (absent in sandboxes made before servers could be chosen: redis-server on PATH). */
  server?: SandboxServer;
}

export interface SandboxMeta {
  version: 1;
  name: string;
  createdAt: string;
  basePort: number;
  nodeTimeoutMs: number;
  keys: number;
  clusters: SandboxMetaCluster[];
  /** Only for `sandbox up --hosts N`: the network namespaces standing in for separate hosts. */
  network?: SandboxNetwork;
}

/**
 * One simulated host: a network namespace joined to the sandbox's bridge by a
 * veth pair. Everything `down` must remove and a fault test must touch is named here.
 */
export interface SandboxHost {
  /** Inventory host name, e.g. host1; also its directory: hosts/<name>/. */
  name: string;
  netns: string;
  address: string;
  /** The veth end in the root namespace, enslaved to the bridge (`ip link set <it> down` cuts the host off). */
  vethRoot: string;
  /** The veth end inside the namespace. */
  vethNs: string;
  sshPort: number;
  /** pidfile of the host's sshd (the pid itself changes when sshd restarts). */
  sshdPidFile: string;
  /** Ports of the nodes that run on this host. */
  nodes: number[];
}

export interface SandboxNetwork {
  /** e.g. 10.213.7.0/24: used only by the bridge and the namespaces. */
  subnet: string;
  prefix: number;
  bridge: string;
  /** The bridge's address: where this machine (the runner) meets the hosts. */
  runnerAddress: string;
  hosts: SandboxHost[];
}

export function writeMeta(path: string, meta: SandboxMeta): void {
  writeFileSync(path, JSON.stringify(meta, null, 2) + '\n');
}

/** undefined when the file is missing or not ours: callers then fall back to what is on disk. */
export function readMeta(path: string): SandboxMeta | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (!doc || typeof doc !== 'object') return undefined;
  const m = doc as Partial<SandboxMeta>;
  if (m.version !== 1 || typeof m.name !== 'string' || !Array.isArray(m.clusters)) return undefined;
  const clusters = m.clusters.filter(
    (c): c is SandboxMetaCluster =>
      !!c &&
      (c.name === 'source' || c.name === 'target') &&
      Array.isArray(c.ports) &&
      c.ports.every((p) => Number.isInteger(p)),
  );
  return { ...(m as SandboxMeta), clusters };
}
