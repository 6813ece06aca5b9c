import type { Redis } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { failedError, messageOf } from '../errors.js';
import { evenRanges, SLOT_COUNT, type SlotRange } from '../redis/slots.js';
import type { ClusterLayout } from './layout.js';
import { callText, openNode, LOOPBACK } from './node-client.js';
import { parseClusterNodes, parseInfo, topologySignature, assignedSlots } from './cluster-view.js';
import { waitUntil } from './wait.js';

export interface FormedMaster {
  port: number;
  id: string;
  ranges: SlotRange[];
  replicas: Array<{ port: number; id: string }>;
}

export interface FormedCluster {
  name: string;
  masters: FormedMaster[];
}

export interface FormOptions {
  password: string;
  /** Bound for each convergence wait. */
  timeoutMs?: number;
  onProgress?: (line: string) => void;
  tls?: ConnectionOptions;
  /** A node's address (a --hosts sandbox: its host's); loopback by default. */
  addrOf?: (port: number) => string;
}

/**
 * Form a cluster from started, empty nodes, the way `redis-cli --cluster
 * create` does, but with our own connections so every step is bounded and
 * its failure names the node:
 *   1. masters: distinct config epochs (so no epoch collision has to be
 *      resolved later) and an even share of the slots;
 *   2. every node MEETs the first; gossip introduces the rest;
 *   3. once everyone knows everyone, replicas REPLICATE their master (a node
 *      can only replicate a master it already knows);
 *   4. wait for cluster_state:ok everywhere, one agreed topology, and every
 *      replica's link up.
 */
export async function formCluster(layout: ClusterLayout, o: FormOptions): Promise<FormedCluster> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const say = o.onProgress ?? (() => {});
  const conns = new Map<number, Redis>();
  const addr = o.addrOf ?? (() => LOOPBACK);
  try {
    const step = async <T>(port: number, what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw failedError(
          'E_SANDBOX_FORM',
          `${layout.name}: ${what} on ${addr(port)}:${port} failed: ${messageOf(err)}`,
        );
      }
    };
    for (const port of layout.ports) {
      conns.set(
        port,
        await step(port, 'connecting', () =>
          openNode(port, { password: o.password, tls: o.tls, host: addr(port), commandTimeoutMs: 5000 }),
        ),
      );
    }
    const conn = (port: number) => conns.get(port)!;

    const ids = new Map<number, string>();
    for (const port of layout.ports)
      ids.set(port, await step(port, 'CLUSTER MYID', () => callText(conn(port), 'CLUSTER', 'MYID')));

    const ranges = evenRanges(layout.masterPorts.length);
    say(`${layout.name}: assigning ${SLOT_COUNT} slots over ${layout.masterPorts.length} master(s)`);
    for (const [i, port] of layout.masterPorts.entries()) {
      const [first, last] = ranges[i]!;
      await step(port, 'CLUSTER SET-CONFIG-EPOCH', () => callText(conn(port), 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1));
      await step(port, 'CLUSTER ADDSLOTSRANGE', () => callText(conn(port), 'CLUSTER', 'ADDSLOTSRANGE', first, last));
    }

    const [first, ...rest] = layout.ports;
    for (const port of rest) {
      await step(port, 'CLUSTER MEET', () => callText(conn(port), 'CLUSTER', 'MEET', addr(first!), first!));
    }
    const wait = (what: string, probe: () => Promise<string | undefined>) =>
      waitUntil({ what: `${layout.name}: ${what}`, code: 'E_SANDBOX_FORM', timeoutMs, intervalMs: 100 }, probe);

    const allIds = new Set(ids.values());
    await wait(`all ${layout.ports.length} nodes know each other`, async () => {
      for (const port of layout.ports) {
        const nodes = parseClusterNodes(await callText(conn(port), 'CLUSTER', 'NODES'));
        const known = nodes.filter(
          (n) => allIds.has(n.id) && !n.flags.includes('handshake') && !n.flags.includes('noaddr'),
        );
        if (known.length !== allIds.size) return `${addr(port)}:${port} knows ${known.length} of ${allIds.size}`;
      }
      return undefined;
    });

    if (layout.replicasPerMaster > 0)
      say(`${layout.name}: attaching ${layout.replicasPerMaster} replica(s) per master`);
    for (const [i, masterPort] of layout.masterPorts.entries()) {
      for (const port of layout.replicaPorts[i]!) {
        await step(port, `CLUSTER REPLICATE (of ${addr(masterPort)}:${masterPort})`, () =>
          callText(conn(port), 'CLUSTER', 'REPLICATE', ids.get(masterPort)!),
        );
      }
    }

    await wait('cluster_state:ok on every node with one agreed topology', async () => {
      let reference: string | undefined;
      for (const port of layout.ports) {
        const info = parseInfo(await callText(conn(port), 'CLUSTER', 'INFO'));
        if (info.cluster_state !== 'ok') return `${addr(port)}:${port} cluster_state:${info.cluster_state ?? '?'}`;
        const nodes = parseClusterNodes(await callText(conn(port), 'CLUSTER', 'NODES'));
        if (assignedSlots(nodes) !== SLOT_COUNT)
          return `${addr(port)}:${port} sees ${assignedSlots(nodes)} slots assigned`;
        const replicas = nodes.filter((n) => n.masterId !== undefined).length;
        if (replicas !== layout.ports.length - layout.masterPorts.length)
          return `${addr(port)}:${port} sees ${replicas} replicas`;
        const sig = topologySignature(nodes);
        if (reference === undefined) reference = sig;
        else if (sig !== reference)
          return `${addr(port)}:${port} disagrees with ${addr(first!)}:${first} about slot owners or roles`;
      }
      return undefined;
    });

    await wait('every replica linked to its master', async () => {
      for (const [i, masterPort] of layout.masterPorts.entries()) {
        for (const port of layout.replicaPorts[i]!) {
          const info = parseInfo(await callText(conn(port), 'INFO', 'replication'));
          if (info.role !== 'slave' || info.master_port !== String(masterPort) || info.master_link_status !== 'up') {
            return `${addr(port)}:${port} role:${info.role ?? '?'} master_port:${info.master_port ?? '-'} master_link_status:${info.master_link_status ?? '-'}`;
          }
        }
      }
      return undefined;
    });

    say(
      `${layout.name}: cluster ok (${layout.masterPorts.length} masters, ${layout.ports.length - layout.masterPorts.length} replicas)`,
    );
    return {
      name: layout.name,
      masters: layout.masterPorts.map((port, i) => ({
        port,
        id: ids.get(port)!,
        ranges: [ranges[i]!],
        replicas: layout.replicaPorts[i]!.map((p) => ({ port: p, id: ids.get(p)! })),
      })),
    };
  } finally {
    for (const c of conns.values()) c.disconnect();
  }
}
