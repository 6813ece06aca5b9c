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
  const conns = new Map<number, Redis>();
  const f = forming(layout, o, conns);
  try {
    await connectAll(f, o, conns);
    const ids = new Map<number, string>();
    for (const port of layout.ports)
      ids.set(port, await f.step(port, 'CLUSTER MYID', () => callText(f.conn(port), 'CLUSTER', 'MYID')));
    const ranges = await assignSlots(f);
    await meetFirst(f);
    await waitAllKnown(f, new Set(ids.values()));
    await attachReplicas(f, ids);
    await waitOneTopology(f);
    await waitReplicasLinked(f);
    f.say(
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

/** What each stage of formCluster works with. */
interface Forming {
  layout: ClusterLayout;
  say: (line: string) => void;
  addr: (port: number) => string;
  /** The open connection to a node (connectAll made it). */
  conn: (port: number) => Redis;
  /** Run one command on one node; a failure names the cluster, the node and the command (E_SANDBOX_FORM). */
  step: <T>(port: number, what: string, fn: () => Promise<T>) => Promise<T>;
  /** Poll until the probe reports nothing missing, bounded by the options' timeoutMs. */
  wait: (what: string, probe: () => Promise<string | undefined>) => Promise<void>;
}

function forming(layout: ClusterLayout, o: FormOptions, conns: Map<number, Redis>): Forming {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const addr = o.addrOf ?? (() => LOOPBACK);
  return {
    layout,
    say: o.onProgress ?? (() => {}),
    addr,
    conn: (port) => conns.get(port)!,
    step: async (port, what, fn) => {
      try {
        return await fn();
      } catch (err) {
        throw failedError(
          'E_SANDBOX_FORM',
          `${layout.name}: ${what} on ${addr(port)}:${port} failed: ${messageOf(err)}`,
        );
      }
    },
    wait: (what, probe) =>
      waitUntil({ what: `${layout.name}: ${what}`, code: 'E_SANDBOX_FORM', timeoutMs, intervalMs: 100 }, probe),
  };
}

/** One connection per node, kept in conns as each opens so the caller's finally closes those made before a failure. */
async function connectAll(f: Forming, o: FormOptions, conns: Map<number, Redis>): Promise<void> {
  for (const port of f.layout.ports) {
    conns.set(
      port,
      await f.step(port, 'connecting', () =>
        openNode(port, { password: o.password, tls: o.tls, host: f.addr(port), commandTimeoutMs: 5000 }),
      ),
    );
  }
}

/** Stage 1: each master gets its own config epoch and an even share of the slots; returns the shares. */
async function assignSlots(f: Forming): Promise<SlotRange[]> {
  const { layout, conn } = f;
  const ranges = evenRanges(layout.masterPorts.length);
  f.say(`${layout.name}: assigning ${SLOT_COUNT} slots over ${layout.masterPorts.length} master(s)`);
  for (const [i, port] of layout.masterPorts.entries()) {
    const [first, last] = ranges[i]!;
    await f.step(port, 'CLUSTER SET-CONFIG-EPOCH', () => callText(conn(port), 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1));
    // ADDSLOTS with every slot named: ADDSLOTSRANGE is Redis 7.0+, and a 6.2 sandbox forms too.
    const slots = Array.from({ length: last - first + 1 }, (_, k) => first + k);
    await f.step(port, 'CLUSTER ADDSLOTS', () => callText(conn(port), 'CLUSTER', 'ADDSLOTS', ...slots));
  }
  return ranges;
}

/** Stage 2: every other node MEETs the first; gossip introduces the rest. */
async function meetFirst(f: Forming): Promise<void> {
  const [first, ...rest] = f.layout.ports;
  for (const port of rest) {
    await f.step(port, 'CLUSTER MEET', () => callText(f.conn(port), 'CLUSTER', 'MEET', f.addr(first!), first!));
  }
}

async function waitAllKnown(f: Forming, allIds: Set<string>): Promise<void> {
  const { layout, conn, addr } = f;
  await f.wait(`all ${layout.ports.length} nodes know each other`, async () => {
    for (const port of layout.ports) {
      const nodes = parseClusterNodes(await callText(conn(port), 'CLUSTER', 'NODES'));
      const known = nodes.filter(
        (n) => allIds.has(n.id) && !n.flags.includes('handshake') && !n.flags.includes('noaddr'),
      );
      if (known.length !== allIds.size) return `${addr(port)}:${port} knows ${known.length} of ${allIds.size}`;
    }
    return undefined;
  });
}

/** Stage 3, once everyone knows everyone: a node can only replicate a master it already knows. */
async function attachReplicas(f: Forming, ids: Map<number, string>): Promise<void> {
  const { layout, conn, addr } = f;
  if (layout.replicasPerMaster > 0)
    f.say(`${layout.name}: attaching ${layout.replicasPerMaster} replica(s) per master`);
  for (const [i, masterPort] of layout.masterPorts.entries()) {
    for (const port of layout.replicaPorts[i]!) {
      await f.step(port, `CLUSTER REPLICATE (of ${addr(masterPort)}:${masterPort})`, () =>
        callText(conn(port), 'CLUSTER', 'REPLICATE', ids.get(masterPort)!),
      );
    }
  }
}

/** Stage 4: cluster_state:ok everywhere, all slots assigned, all replicas seen, and one agreed topology. */
async function waitOneTopology(f: Forming): Promise<void> {
  const { layout, conn, addr } = f;
  const first = layout.ports[0];
  await f.wait('cluster_state:ok on every node with one agreed topology', async () => {
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
}

/** Stage 4, last: every replica's link to its master is up. */
async function waitReplicasLinked(f: Forming): Promise<void> {
  const { layout, conn, addr } = f;
  await f.wait('every replica linked to its master', async () => {
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
}
