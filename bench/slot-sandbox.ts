/**
 * The sandbox the slot-move benchmarks share (reshard.ts, move-ceiling.ts): 3 masters with
 * `keys` mixed keys and no replicas, where master A (the base port) and master B (the next) stay
 * masters when one of them gives all its slots away (Redis 7 would otherwise turn it into a
 * replica), so that slots can go back and forth.
 */
import type { SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterPool } from '../src/redis/connect.js';
import { parseClusterNodes, type ClusterNodeLine } from '../src/redis/cluster-nodes.js';

export interface SlotSandbox {
  pool: ClusterPool;
  password: string;
  masters: ClusterNodeLine[];
  a: ClusterNodeLine;
  b: ClusterNodeLine;
  /** CLUSTER NODES as master B sees it now. */
  view(): Promise<ClusterNodeLine[]>;
  /** Waits (10 s at most) for cluster_state:ok on every master: gossip has spread a move's new owners. */
  settle(): Promise<void>;
}

export async function slotSandbox(
  cli: (args: string[]) => SpawnSyncReturns<string>,
  o: { name: string; base: number; keys: number },
): Promise<SlotSandbox> {
  process.stderr.write(`seeding ${o.keys} keys...\n`);
  const up = cli([
    ...['sandbox', 'up', '--name', o.name, '--base-port', String(o.base)],
    ...['--replicas', '0', '--keys', String(o.keys)],
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const pwFile = join(up.stdout.trim(), '..', 'password');
  const pool = new ClusterPool(
    { name: 'source', seeds: [`127.0.0.1:${o.base}`], auth: { password: { file: pwFile } } },
    { access: 'read-write' },
  );
  const view = async () => parseClusterNodes(await pool.node(`127.0.0.1:${o.base + 1}`).text('CLUSTER', 'NODES'));
  const masters = (await view()).filter((l) => l.flags.includes('master'));
  for (const m of masters) await pool.node(m.address).call('CONFIG', 'SET', 'cluster-allow-replica-migration', 'no');
  return {
    pool,
    password: readFileSync(pwFile, 'utf8').trim(),
    masters,
    a: masters.find((l) => l.address === `127.0.0.1:${o.base}`)!,
    b: masters.find((l) => l.address === `127.0.0.1:${o.base + 1}`)!,
    view,
    settle: async () => {
      for (let i = 0; i < 100; i++) {
        const info = await Promise.all(masters.map((m) => pool.node(m.address).text('CLUSTER', 'INFO')));
        if (info.every((t) => /cluster_state:ok/.test(t))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
