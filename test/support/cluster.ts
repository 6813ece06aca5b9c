import { Redis } from 'ioredis';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { moveSlots } from '../../src/redis/slot-move.js';

/** Direct, unaudited access to a sandbox node, for assertions only: `port` (loopback) or `host:port`. */
export async function withNode<T>(node: number | string, password: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const [host, port] =
    typeof node === 'number'
      ? ['127.0.0.1', node]
      : [node.slice(0, node.lastIndexOf(':')), Number(node.slice(node.lastIndexOf(':') + 1))];
  // No reconnects: a node that is down must fail the call, not hang the test.
  const r = new Redis({
    host,
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
    commandTimeout: 30000,
  });
  r.on('error', () => {});
  await r.connect();
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

export interface Roles {
  masterOfSlot0: string;
  replicaOfIt: string;
  nodesText: string;
}

/** The first slot of each shard of a 3-master sandbox. */
export const SHARD_SLOTS = [0, 5461, 10923];

/**
 * Who owns `slot` and which replica follows it, as the node on `port` sees it.
 * Right after a failover a node may briefly list the new master with no replica
 * yet; this waits (bounded) until the view is complete.
 */
export async function roles(port: number, password: string, slot = 0): Promise<Roles> {
  for (let i = 0; ; i++) {
    const text = (await withNode(port, password, (r) => r.call('CLUSTER', 'NODES'))) as string;
    const nodes = parseClusterNodes(text);
    const m = nodes.find((n) => n.flags.includes('master') && n.slots.some(([a, b]) => a <= slot && slot <= b));
    const r = m && nodes.find((n) => n.masterId === m.id);
    if (m && r) return { masterOfSlot0: m.address, replicaOfIt: r.address, nodesText: text };
    if (i > 100) throw new Error(`no master with a replica for slot ${slot} in the view of ${port}:\n${text}`);
    await new Promise((s) => setTimeout(s, 50));
  }
}

/** A structural summary of the cluster that must not change under a read-only command. */
export async function structure(ports: number[], password: string): Promise<string> {
  const parts: string[] = [];
  for (const p of ports) {
    const text = (await withNode(p, password, (r) => r.call('CLUSTER', 'NODES'))) as string;
    const repl = (await withNode(p, password, (r) => r.call('INFO', 'replication'))) as string;
    const epoch = parseClusterNodes(text)
      .map(
        (n) =>
          `${n.id} ${n.flags.filter((f) => f !== 'myself').join(',')} ${n.masterId ?? '-'} ${n.configEpoch} ${JSON.stringify(n.slots)}`,
      )
      .sort()
      .join('\n');
    parts.push(`${p}\n${epoch}\nrole:${/role:(\w+)/.exec(repl)![1]}`);
  }
  return parts.join('\n');
}

/**
 * Moves `count` slots of the master owning slot 0 (as the node on `port` sees it) to the next
 * master, with the product's slot mover, so that rebalance has work to do. `masters` lists every
 * master's address, which the mover tells the new owner.
 */
export async function unbalance(port: number, password: string, count: number): Promise<void> {
  process.env.RR_UNBALANCE_PW = password;
  const pool = new ClusterPool(
    { name: 'source', seeds: [`127.0.0.1:${port}`], auth: { password: { env: 'RR_UNBALANCE_PW' } } } as never,
    { access: 'read-write' },
  );
  try {
    const view = parseClusterNodes(await pool.node(`127.0.0.1:${port}`).text('CLUSTER', 'NODES'));
    const masters = view.filter((l) => l.flags.includes('master') && l.slots.length && !l.flags.includes('fail'));
    masters.sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
    const [from, to] = [masters[0]!, masters[1]!];
    const slots = from.slots.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i)).slice(0, count);
    const ref = (l: typeof from) => ({ id: l.id, address: l.address });
    await moveSlots(
      pool,
      slots.map((slot) => ({ slot, from: ref(from), to: ref(to) })),
      { batch: 100, migrateTimeoutMs: 20000, masters: masters.map((m) => m.address), concurrency: 4 },
    );
  } finally {
    await pool.close();
  }
}
