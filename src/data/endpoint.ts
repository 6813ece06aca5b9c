import { preconditionError, RunbookError } from '../errors.js';
import { tlsHint, type ClusterPool, type NodeClient } from '../redis/connect.js';
import { parseInfo, keysFromInfo, fieldTtlKeysFromInfo } from '../redis/cluster-nodes.js';
import { serverIdentity, type ServerIdentity } from '../redis/server-identity.js';
import { keySlot, SLOT_COUNT } from '../redis/slots.js';

/**
 * One side of a comparison: the nodes that hold its keys and how to find the
 * owner of a key. A cluster routes by slot (whatever its shard layout); a
 * standalone server owns every key.
 */
export interface Endpoint {
  name: string;
  kind: 'cluster' | 'standalone';
  masters: NodeClient[];
  route(key: Buffer): NodeClient;
  /** Keys held, summed over masters (db0). */
  keyCount(): Promise<number>;
  /** Keys with hash fields that have their own TTL (Redis 7.4+), summed over masters. */
  fieldTtlKeys(): Promise<number>;
  /** Redis 7.0+ on every master: the read script (EVALSHA_RO) can be used. */
  scripts: boolean;
  /** What a master runs (by its own name: Valkey as Valkey), which decides the commands it may be sent. */
  server(node: NodeClient): ServerIdentity;
}

/** INFO server of each master, read once: whether scripts can be used, and what each one can hold. */
async function servers(nodes: NodeClient[]): Promise<Pick<Endpoint, 'scripts' | 'server'>> {
  const infos = await Promise.all(nodes.map(async (n) => parseInfo(await n.text('INFO', 'server'))));
  const identities = new Map(nodes.map((n, i) => [n, serverIdentity(infos[i]!)]));
  return {
    // Valkey reports the Redis version whose commands it speaks (7.2.4): that is what scripts need.
    scripts: infos.every((info) => Number((info.redis_version ?? '0').split('.')[0]) >= 7),
    // A node not among the masters read is taken for the oldest server: it is sent nothing new.
    server: (node) => identities.get(node) ?? serverIdentity({}),
  };
}

/** A sum over masters of one number of their INFO keyspace. */
const keyspaceSum = (masters: NodeClient[], of: (info: Record<string, string>) => number) => async () => {
  const counts = await Promise.all(masters.map(async (m) => of(parseInfo(await m.text('INFO', 'keyspace')))));
  return counts.reduce((a, b) => a + b, 0);
};

export async function openEndpoint(pool: ClusterPool): Promise<Endpoint> {
  const name = pool.config.name;
  let lastError: unknown;
  for (const seed of pool.config.seeds) {
    const node = pool.node(seed);
    let info: Record<string, string>;
    try {
      info = parseInfo(await node.text('INFO', 'cluster'));
    } catch (err) {
      if (err instanceof RunbookError && err.code === 'E_AUTH') throw err;
      lastError = err;
      continue;
    }
    if (info.cluster_enabled !== '1') {
      return {
        name,
        kind: 'standalone',
        masters: [node],
        route: () => node,
        keyCount: keyspaceSum([node], keysFromInfo),
        fieldTtlKeys: keyspaceSum([node], fieldTtlKeysFromInfo),
        ...(await servers([node])),
      };
    }
    const slots = (await node.call('CLUSTER', 'SLOTS')) as Array<
      [number, number, [string, number, ...unknown[]], ...unknown[]]
    >;
    const masters: NodeClient[] = [];
    const index = new Map<string, number>();
    const owner = new Int16Array(SLOT_COUNT).fill(-1);
    for (const [start, end, [host, port]] of slots) {
      const address = `${host}:${port}`;
      let i = index.get(address);
      if (i === undefined) {
        i = masters.length;
        masters.push(pool.node(address));
        index.set(address, i);
      }
      owner.fill(i, start, end + 1);
    }
    const unowned = owner.indexOf(-1);
    if (unowned !== -1) {
      throw preconditionError(
        'E_SLOTS_UNCOVERED',
        `cluster ${name}: slot ${unowned} has no owner`,
        `fix the cluster first (\`redis-runbook check --cluster ${name}\`)`,
      );
    }
    return {
      name,
      kind: 'cluster',
      ...(await servers(masters)),
      masters,
      route: (key) => masters[owner[keySlot(key)]!]!,
      keyCount: keyspaceSum(masters, keysFromInfo),
      fieldTtlKeys: keyspaceSum(masters, fieldTtlKeysFromInfo),
    };
  }
  throw preconditionError(
    'E_CLUSTER_UNREACHABLE',
    `no seed of ${name} answered (${(lastError as Error | undefined)?.message ?? 'no seeds'})`,
    `check clusters.${name}.seeds and that the nodes are running${tlsHint(pool.config)}`,
  );
}
