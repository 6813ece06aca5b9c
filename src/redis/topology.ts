import { serverIdentity, type ServerIdentity } from './server-identity.js';
import { createHash } from 'node:crypto';
import { preconditionError, RunbookError } from '../errors.js';
import { tlsHint, type ClusterPool } from './connect.js';
import { parseClusterNodes, parseInfo, keysFromInfo, isMaster, type ClusterNodeLine } from './cluster-nodes.js';
import type { SlotRange } from './slots.js';

/** What one node says about itself, when it answers. */
export interface NodeSelfReport {
  /** redis_version: for Valkey a fixed compatibility value (7.2.4); `server` says what it really is. */
  version: string;
  server?: ServerIdentity;
  role: 'master' | 'replica';
  replOffset: number;
  masterLinkUp: boolean | undefined;
  /** Replica's view of its master's offset is its own; a master reports each replica's offset here. */
  replicaOffsets: Record<string, number>;
  keys: number;
  usedMemory: number;
  maxmemory: number;
  clusterState: string;
  persistence: {
    dir: string;
    dbfilename: string;
    appendonly: boolean;
    /** '' on Redis before 7.0: no such setting, the AOF is the single file appendfilename. */
    appenddirname: string;
    appendfilename: string;
    clusterConfigFile: string;
  };
  /** This node's CLUSTER NODES, parsed: its view of the whole cluster. */
  view: ClusterNodeLine[];
}

export interface TopologyNode {
  id: string;
  address: string;
  role: 'master' | 'replica';
  masterId: string | undefined;
  flags: string[];
  slots: SlotRange[];
  configEpoch: number;
  reachable: boolean;
  /** Why the node did not answer, when it did not. */
  error?: string;
  self?: NodeSelfReport;
}

/** A read-only snapshot of a live cluster. It has a fingerprint of its structure. */
export interface Topology {
  cluster: string;
  takenAt: string;
  seed: string;
  nodeTimeoutMs: number;
  nodes: TopologyNode[];
  fingerprint: string;
}

/**
 * Discover a cluster from its seeds: read CLUSTER NODES from the first seed
 * that answers, then ask every node about itself. Unreachable nodes are kept
 * (with the reason) so that a plan can reason about a failed master.
 */
/**
 * Errors that are not about a node: a wrong password, the inventory's own
 * mistakes (a secret or TLS file that cannot be read: usage), a state
 * database that cannot be written. Reported as they are, never as "unreachable".
 */
function fatalToDiscovery(err: unknown): boolean {
  return err instanceof RunbookError && (err.code === 'E_AUTH' || err.kind === 'usage' || err.code === 'E_STATE_WRITE');
}

export async function discoverTopology(pool: ClusterPool): Promise<Topology> {
  const name = pool.config.name;
  let lines: ClusterNodeLine[] | undefined;
  let seedUsed = '';
  const seedErrors: string[] = [];
  for (const seed of pool.config.seeds) {
    try {
      const text = await pool.node(seed).text('CLUSTER', 'NODES');
      lines = parseClusterNodes(text);
      seedUsed = seed;
      break;
    } catch (err) {
      if (fatalToDiscovery(err)) throw err;
      const msg = (err as Error).message;
      if (/cluster support disabled/i.test(msg)) {
        throw preconditionError(
          'E_NOT_CLUSTER',
          `${seed} (cluster ${name}) is not in cluster mode`,
          'point the inventory at Redis Cluster nodes (cluster-enabled yes)',
        );
      }
      seedErrors.push(`${seed}: ${msg}`);
    }
  }
  if (!lines) {
    throw preconditionError(
      'E_CLUSTER_UNREACHABLE',
      `no seed of cluster ${name} answered (${seedErrors.join('; ')})`,
      `check clusters.${name}.seeds in ${'the inventory'} and that the nodes are running${tlsHint(pool.config)}`,
    );
  }
  // The seed's view decides who is in the cluster; noaddr/handshake entries are not yet members.
  const members = lines.filter((l) => !l.flags.includes('handshake') && !l.flags.includes('noaddr'));
  const nodes = await Promise.all(
    members.map(async (l): Promise<TopologyNode> => {
      const node: TopologyNode = {
        id: l.id,
        address: l.address,
        role: isMaster(l) ? 'master' : 'replica',
        masterId: l.masterId,
        flags: l.flags.filter((f) => f !== 'myself'),
        slots: l.slots,
        configEpoch: l.configEpoch,
        reachable: false,
      };
      try {
        node.self = await selfReport(pool, l.address);
        node.reachable = true;
      } catch (err) {
        if (fatalToDiscovery(err)) throw err;
        node.error = (err as Error).message;
      }
      return node;
    }),
  );
  nodes.sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true }));
  let nodeTimeoutMs = 15000;
  const anyReachable = nodes.find((n) => n.reachable);
  if (anyReachable) {
    const cfg = (await pool.node(anyReachable.address).call('CONFIG', 'GET', 'cluster-node-timeout')) as string[];
    nodeTimeoutMs = Number(cfg[1] ?? 15000);
  }
  const topo: Omit<Topology, 'fingerprint'> = {
    cluster: name,
    takenAt: new Date().toISOString(),
    seed: seedUsed,
    nodeTimeoutMs,
    nodes,
  };
  return { ...topo, fingerprint: fingerprintOf(nodes) };
}

async function selfReport(pool: ClusterPool, address: string): Promise<NodeSelfReport> {
  const c = pool.node(address);
  // One CONFIG GET per parameter: several in one call need Redis 7.
  const config = (name: string) => c.call('CONFIG', 'GET', name) as Promise<string[]>;
  const [infoText, nodesText, clusterInfoText, cfg, cfg2, cfg3, cfg4, cfg5, cfg6] = await Promise.all([
    c.text('INFO', 'all'),
    c.text('CLUSTER', 'NODES'),
    c.text('CLUSTER', 'INFO'),
    config('dir'),
    config('dbfilename'),
    config('appendonly'),
    config('appenddirname'),
    config('cluster-config-file'),
    config('appendfilename'),
  ]);
  const info = parseInfo(infoText);
  const cinfo = parseInfo(clusterInfoText);
  const role = info.role === 'master' ? 'master' : 'replica';
  const replicaOffsets: Record<string, number> = {};
  for (const [k, v] of Object.entries(info)) {
    if (/^slave\d+$/.test(k)) {
      const m = /ip=([^,]+),port=(\d+),.*offset=(\d+)/.exec(v);
      if (m) replicaOffsets[`${m[1]}:${m[2]}`] = Number(m[3]);
    }
  }
  return {
    version: info.redis_version ?? 'unknown',
    server: serverIdentity(info),
    role,
    replOffset:
      Number(role === 'master' ? info.master_repl_offset : (info.slave_repl_offset ?? info.master_repl_offset)) || 0,
    masterLinkUp: role === 'replica' ? info.master_link_status === 'up' : undefined,
    replicaOffsets,
    keys: keysFromInfo(info),
    usedMemory: Number(info.used_memory ?? 0),
    maxmemory: Number(info.maxmemory ?? 0),
    clusterState: cinfo.cluster_state ?? 'unknown',
    persistence: {
      dir: cfg[1] ?? '',
      dbfilename: cfg2[1] ?? '',
      appendonly: cfg3[1] === 'yes',
      // Redis 6 answers an empty list for a setting it does not have: '' says "single-file AOF".
      appenddirname: cfg4[1] ?? '',
      appendfilename: cfg6[1] ?? 'appendonly.aof',
      clusterConfigFile: cfg5[1] ?? '',
    },
    view: parseClusterNodes(nodesText),
  };
}

/**
 * The structure that a plan depends on: ids, addresses, roles, masters and
 * slots. Offsets, key counts and memory change all the time and are left out.
 */
export function fingerprintOf(nodes: readonly TopologyNode[]): string {
  const canon = [...nodes]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((n) => [n.id, n.address, n.role, n.masterId ?? '-', n.slots.map(([a, b]) => `${a}-${b}`).join(',')].join(' '))
    .join('\n');
  return createHash('sha256').update(canon).digest('hex').slice(0, 16);
}

/** Which structural facts differ between two topologies, in words. */
export function describeDrift(before: Topology, after: Topology): string[] {
  const out: string[] = [];
  const byId = new Map(after.nodes.map((n) => [n.id, n]));
  for (const b of before.nodes) {
    const a = byId.get(b.id);
    if (!a) {
      out.push(`node ${b.address} (${b.id.slice(0, 8)}) is gone`);
      continue;
    }
    if (a.role !== b.role) out.push(`${b.address} was ${b.role}, is now ${a.role}`);
    else if (a.masterId !== b.masterId) out.push(`${b.address} now replicates another master`);
    if (a.address !== b.address) out.push(`${b.id.slice(0, 8)} moved from ${b.address} to ${a.address}`);
    if (JSON.stringify(a.slots) !== JSON.stringify(b.slots)) out.push(`${b.address} slots changed`);
  }
  const beforeIds = new Set(before.nodes.map((n) => n.id));
  for (const a of after.nodes) if (!beforeIds.has(a.id)) out.push(`new node ${a.address} (${a.id.slice(0, 8)})`);
  return out;
}

/** Masters that own slots (failed ones included: a failed master still owns its slots until a replica takes over). */
export const masters = (t: Topology) => t.nodes.filter((n) => n.role === 'master' && n.slots.length > 0);
export const replicasOf = (t: Topology, masterId: string) =>
  t.nodes.filter((n) => n.role === 'replica' && n.masterId === masterId);

export function findNode(t: Topology, address: string): TopologyNode | undefined {
  return t.nodes.find((n) => n.address === address || n.id === address);
}

/**
 * When the plan read this topology, as `YYYYMMDD-HHMMSS`: one name per plan
 * for files a run leaves on hosts (backups, frozen saves), found again by a
 * resumed run, never shared with a later one.
 */
export function planStamp(t: Pick<Topology, 'takenAt'>): string {
  return t.takenAt.replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}
