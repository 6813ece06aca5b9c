import { preconditionError, RunbookError } from '../errors.js';
import { tlsHint, type ClusterPool, type NodeClient } from '../redis/connect.js';
import { parseInfo, keysFromInfo } from '../redis/cluster-nodes.js';
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
  /** Redis 7.0+ on every master: the read script (EVALSHA_RO) can be used. */
  scripts: boolean;
}

async function supportsScripts(nodes: NodeClient[]): Promise<boolean> {
  const versions = await Promise.all(
    nodes.map(async (n) => parseInfo(await n.text('INFO', 'server')).redis_version ?? '0'),
  );
  return versions.every((v) => Number(v.split('.')[0]) >= 7);
}

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
        keyCount: async () => keysFromInfo(parseInfo(await node.text('INFO', 'keyspace'))),
        scripts: await supportsScripts([node]),
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
      scripts: await supportsScripts(masters),
      masters,
      route: (key) => masters[owner[keySlot(key)]!]!,
      keyCount: async () => {
        const counts = await Promise.all(
          masters.map(async (m) => keysFromInfo(parseInfo(await m.text('INFO', 'keyspace')))),
        );
        return counts.reduce((a, b) => a + b, 0);
      },
    };
  }
  throw preconditionError(
    'E_CLUSTER_UNREACHABLE',
    `no seed of ${name} answered (${(lastError as Error | undefined)?.message ?? 'no seeds'})`,
    `check clusters.${name}.seeds and that the nodes are running${tlsHint(pool.config)}`,
  );
}
