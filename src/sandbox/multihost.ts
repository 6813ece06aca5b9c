import { join } from 'node:path';
import type { ClusterLayout } from './layout.js';
import type { SandboxMeta, SandboxNetwork } from './metadata.js';
import { chooseSubnet, planNetwork } from './netns.js';
import { LOOPBACK } from './node-client.js';
import type { NodePlace } from './node-process.js';
import { nodePaths, type NodePaths } from './paths.js';
import { nodesByHost, placeNodes } from './placement.js';

/**
 * Where each node of a sandbox lives: its address, its namespace and its
 * directory. One answer for both kinds of sandbox, so up, down and status
 * need no branches: on loopback everything is 127.0.0.1 and nodes/<port>/;
 * with --hosts it is the host's address and hosts/<host>/nodes/<port>/.
 */
export interface NodeWhere {
  addrOf: (port: number) => string;
  placeOf: (port: number) => NodePlace;
  pathsOf: (port: number) => NodePaths;
}

export function nodeWhere(sandboxDir: string, network?: SandboxNetwork): NodeWhere {
  const hostOf = (port: number) => network?.hosts.find((h) => h.nodes.includes(port));
  return {
    addrOf: (port) => hostOf(port)?.address ?? LOOPBACK,
    placeOf: (port) => {
      const h = hostOf(port);
      return h ? { host: h.address, netns: h.netns } : { host: LOOPBACK };
    },
    pathsOf: (port) => {
      const h = hostOf(port);
      return nodePaths(h ? join(sandboxDir, 'hosts', h.name) : sandboxDir, port);
    },
  };
}

export function metaWhere(sandboxDir: string, meta: SandboxMeta | undefined): NodeWhere {
  return nodeWhere(sandboxDir, meta?.network);
}

/** The network a `--hosts N` sandbox will create: a free subnet and the nodes spread over the hosts. */
export async function planHosts(
  sandboxDir: string,
  layouts: ClusterLayout[],
  hostCount: number,
): Promise<SandboxNetwork> {
  const subnet = await chooseSubnet(sandboxDir);
  return planNetwork(sandboxDir, subnet, nodesByHost(placeNodes(layouts, hostCount), hostCount));
}
