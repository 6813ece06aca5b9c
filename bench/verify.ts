/**
 * verify in `full` mode on the sandbox's mixed data (default 1M keys; a
 * 3-master source and a 5-master target holding the same keys), against a
 * ceiling measured in the same run: a minimal pipelined reader that fetches
 * the same keys' values from both clusters without comparing anything (SCAN,
 * TYPE, then GET / LRANGE / HGETALL / SMEMBERS / ZRANGE WITHSCORES / XRANGE on
 * both sides, routed by slot, one worker per source master, same batch size).
 * Both run in this process; runs alternate; medians are reported.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadInventory } from '../src/inventory/load.js';
import { ClusterPool } from '../src/redis/connect.js';
import { openEndpoint } from '../src/data/endpoint.js';
import { verifyData, VERIFY_DEFAULTS } from '../src/data/verify/verify.js';
import { keySlot } from '../src/redis/slots.js';
import { benchCli } from './bench-cli.js';
import { median } from './stats.js';

const KEYS = Number(process.env.BENCH_VERIFY_KEYS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_VERIFY_RUNS ?? 3);
const BASE = 7950;
const { cli } = benchCli('verify');

const VALUE: Record<string, (k: Buffer) => [string, ...(string | number | Buffer)[]]> = {
  string: (k) => ['GET', k],
  list: (k) => ['LRANGE', k, 0, -1],
  hash: (k) => ['HGETALL', k],
  set: (k) => ['SMEMBERS', k],
  zset: (k) => ['ZRANGE', k, 0, -1, 'WITHSCORES'],
  stream: (k) => ['XRANGE', k, '-', '+'],
};

async function slotMap(conn: Redis, password: string): Promise<{ route: (k: Buffer) => Redis; close: () => void }> {
  const slots = (await conn.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
  const owner = new Array<Redis>(16384);
  const conns = new Map<number, Redis>();
  for (const [a, b, [host, port]] of slots) {
    let c = conns.get(port);
    if (!c) {
      c = new Redis({ host, port, password });
      conns.set(port, c);
    }
    for (let s = a; s <= b; s++) owner[s] = c;
  }
  return { route: (k) => owner[keySlot(k)]!, close: () => conns.forEach((c) => c.disconnect()) };
}

/** The ceiling: read what verify reads, compare nothing. */
async function ceiling(sourcePorts: number[], targetPort: number, password: string, batch: number): Promise<number> {
  const targetConn = new Redis({ port: targetPort, password });
  const { route, close } = await slotMap(targetConn, password);
  let keys = 0;
  await Promise.all(
    sourcePorts.map(async (port) => {
      const src = new Redis({ port, password });
      let cursor = '0';
      do {
        const [next, ks] = (await src.callBuffer('SCAN', cursor, 'COUNT', batch)) as [Buffer, Buffer[]];
        cursor = next.toString();
        const p = src.pipeline();
        for (const k of ks) p.callBuffer('TYPE', k);
        const types = (await p.exec())!.map(([, t]) => String(t));
        const sp = src.pipeline();
        const tp = new Map<Redis, ReturnType<Redis['pipeline']>>();
        ks.forEach((k, i) => {
          const cmd = VALUE[types[i]!];
          if (!cmd) return;
          const [c, ...a] = cmd(k);
          sp.callBuffer(c, ...a);
          const t = route(k);
          if (!tp.has(t)) tp.set(t, t.pipeline());
          tp.get(t)!.callBuffer(c, ...a);
        });
        await Promise.all([sp.exec(), ...[...tp.values()].map((x) => x.exec())]);
        keys += ks.length;
      } while (cursor !== '0');
      src.disconnect();
    }),
  );
  targetConn.disconnect();
  close();
  return keys;
}

async function main(): Promise<void> {
  process.stderr.write(`starting sandbox with ${KEYS} keys on each side...\n`);
  const up = cli([
    'sandbox',
    'up',
    '--name',
    'benchv',
    '--base-port',
    String(BASE),
    '--replicas',
    '0',
    '--target-masters',
    '5',
    '--seed-target',
    '--keys',
    String(KEYS),
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const inventoryPath = up.stdout.trim();
  const password = readFileSync(join(inventoryPath, '..', 'password'), 'utf8').trim();
  const inv = loadInventory(inventoryPath);
  const batch = VERIFY_DEFAULTS.batch;
  const ceilingRates: number[] = [];
  const verifyRates: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      let t = Date.now();
      const n = await ceiling([BASE, BASE + 1, BASE + 2], BASE + 100, password, batch);
      ceilingRates.push(Math.round(n / ((Date.now() - t) / 1000)));
      const pools = ['source', 'target'].map((c) => new ClusterPool(inv.clusters[c]!, { access: 'read-only' }));
      const [s, tg] = await Promise.all(pools.map((p) => openEndpoint(p)));
      t = Date.now();
      const r = await verifyData(s!, tg!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1 });
      if (r.differences.length || r.compared !== KEYS)
        throw new Error(
          `verify found ${r.differences.length} differences over ${r.compared} keys, e.g. ${JSON.stringify(r.differences.slice(0, 3).map((d) => ({ ...d, key: d.key.toString() })))}`,
        );
      verifyRates.push(Math.round(r.compared / ((Date.now() - t) / 1000)));
      await Promise.all(pools.map((p) => p.close()));
      process.stderr.write(
        `run ${i + 1}/${RUNS}: ceiling ${ceilingRates.at(-1)} keys/s, verify ${verifyRates.at(-1)} keys/s\n`,
      );
    }
  } finally {
    cli(['sandbox', 'down', '--name', 'benchv']);
  }
  console.log(
    `\nverify --mode full, ${KEYS} mixed keys, 3-master source vs 5-master target, batch ${batch}, no rate limit; ${RUNS} alternating runs`,
  );
  console.log('| measurement | median keys/s | runs (keys/s) | ratio to ceiling |');
  console.log('|---|---|---|---|');
  console.log(
    `| ceiling: pipelined reader, both clusters, no comparison | ${median(ceilingRates)} | ${ceilingRates.join(', ')} | 1.00 |`,
  );
  console.log(
    `| verify (full: type, value, TTL compared) | ${median(verifyRates)} | ${verifyRates.join(', ')} | ${(median(verifyRates) / median(ceilingRates)).toFixed(2)} |`,
  );
}

await main();
