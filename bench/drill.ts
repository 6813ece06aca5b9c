/**
 * The failover drill on a local sandbox (3 masters x 1 replica,
 * cluster-node-timeout 2000 ms): unavailability window of the failing
 * master's slots, time until cluster_state:ok everywhere, and acknowledged
 * writes lost, as the failover-drill runbook measures them (method=kill and
 * method=shutdown), against a baseline measured in the same run: a bare
 * script that kill -9s the master, writes to the same slot every 10 ms with
 * a plain client (following MOVED, switching to the replica on a connection
 * error) and polls CLUSTER INFO. Medians of ROUNDS drills each.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseClusterNodes, parseInfo } from '../src/redis/cluster-nodes.js';
import { tagInRanges } from '../src/redis/canary.js';
import { median } from './stats.js';
import { benchCli } from './bench-cli.js';

const BASE = 8150;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const SHARDS = [0, 5461, 10923];
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const NODE_TIMEOUT = 2000;

const { cli } = benchCli('drill');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let password = '';
function client(address: string): Redis {
  const [host, port] = [address.split(':')[0]!, Number(address.split(':')[1])];
  const r = new Redis({
    host,
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 300,
    commandTimeout: 500,
    enableOfflineQueue: true,
  });
  r.on('error', () => {});
  return r;
}
async function once<T>(address: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = client(address);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function shard(slot: number) {
  for (;;) {
    try {
      const view = parseClusterNodes(
        await once(`127.0.0.1:${BASE + 1}`, (r) => r.call('CLUSTER', 'NODES') as Promise<string>).catch(() =>
          once(`127.0.0.1:${BASE + 2}`, (r) => r.call('CLUSTER', 'NODES') as Promise<string>),
        ),
      );
      const m = view.find((n) => n.flags.includes('master') && n.slots.some(([a, b]) => a <= slot && slot <= b))!;
      const r = view.find((n) => n.masterId === m.id && !n.flags.some((f) => f.startsWith('fail')))!;
      if (m && r) return { master: m, replica: r };
    } catch {
      /* retry */
    }
    await sleep(100);
  }
}

/** Every node answers, cluster_state:ok everywhere, every replica linked: the next drill can start. */
async function settled(): Promise<void> {
  for (;;) {
    const ok = await Promise.all(
      PORTS.map((p) =>
        once(`127.0.0.1:${p}`, async (r) => {
          const ci = parseInfo((await r.call('CLUSTER', 'INFO')) as string);
          const ri = parseInfo((await r.call('INFO', 'replication')) as string);
          return ci.cluster_state === 'ok' && (ri.role === 'master' || ri.master_link_status === 'up');
        }).catch(() => false),
      ),
    );
    if (ok.every(Boolean)) return;
    await sleep(100);
  }
}

/** The bare drill: kill -9, a plain write loop to the slot, poll CLUSTER INFO; then restart and wait. */
async function bareDrill(
  inventoryDir: string,
  slot: number,
): Promise<{ windowMs: number; okMs: number; lost: number }> {
  const { master, replica } = await shard(slot);
  const { tag } = tagInRanges(master.slots);
  const conns = new Map<string, Redis>();
  const conn = (a: string) => {
    let c = conns.get(a);
    if (!c) {
      c = client(a);
      conns.set(a, c);
    }
    return c;
  };
  let target = master.address;
  let stop = false;
  let firstFail: number | undefined;
  let firstOkAfter: number | undefined;
  const acked: number[] = [];
  let seq = 0;
  let streak = 0;
  const writer = (async () => {
    while (!stop) {
      const n = ++seq;
      const sent = Date.now();
      try {
        try {
          await conn(target).set(`bench:{${tag}}:${n}`, String(n), 'PX', 600000);
        } catch (err) {
          const m = /^MOVED \d+ (\S+)/.exec((err as Error).message);
          if (!m) throw err;
          target = m[1]!;
          await conn(target).set(`bench:{${tag}}:${n}`, String(n), 'PX', 600000);
        }
        acked.push(n);
        streak++;
        if (firstFail !== undefined && firstOkAfter === undefined) firstOkAfter = Date.now();
      } catch {
        streak = 0;
        firstFail ??= sent;
        conns.get(target)?.disconnect();
        conns.delete(target);
        target = target === master.address ? replica.address : master.address;
      }
      await sleep(10);
    }
  })();
  while (streak < 10) await sleep(10);
  const killedAt = Date.now();
  spawnSync('sh', ['-c', `kill -9 $(cat ${join(inventoryDir, 'nodes', master.address.split(':')[1]!, 'redis.pid')})`]);
  let okAt = 0;
  for (;;) {
    const states = await Promise.all(
      PORTS.filter((p) => `127.0.0.1:${p}` !== master.address).map((p) =>
        once(`127.0.0.1:${p}`, async (r) => {
          const ci = parseInfo((await r.call('CLUSTER', 'INFO')) as string).cluster_state;
          const v = parseClusterNodes((await r.call('CLUSTER', 'NODES')) as string).find((x) => x.id === replica.id);
          return ci === 'ok' && !!v && v.flags.includes('master');
        }).catch(() => false),
      ),
    );
    if (states.every(Boolean)) {
      okAt = Date.now();
      break;
    }
    await sleep(20);
  }
  while (streak < 20) await sleep(10);
  stop = true;
  await writer;
  let lost = 0;
  for (const n of acked) if ((await conn(replica.address).get(`bench:{${tag}}:${n}`)) !== String(n)) lost++;
  for (let i = 1; i <= seq; i += 500)
    await conn(replica.address).del(
      ...Array.from({ length: Math.min(500, seq - i + 1) }, (_, j) => `bench:{${tag}}:${i + j}`),
    );
  for (const c of conns.values()) c.disconnect();
  spawnSync('redis-server', [join(inventoryDir, 'nodes', master.address.split(':')[1]!, 'redis.conf')]);
  return { windowMs: firstOkAfter! - firstFail!, okMs: okAt - killedAt, lost };
}

async function main(): Promise<void> {
  const up = cli([
    'sandbox',
    'up',
    '--name',
    'bench',
    '--base-port',
    String(BASE),
    '--keys',
    '20000',
    '--node-timeout',
    String(NODE_TIMEOUT),
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const inventory = up.stdout.trim();
  const inventoryDir = join(inventory, '..');
  password = readFileSync(join(inventoryDir, 'password'), 'utf8').trim();
  const rows: Record<string, { windowMs: number[]; okMs: number[]; lost: number[] }> = {
    'baseline: kill -9 + plain write loop': { windowMs: [], okMs: [], lost: [] },
    'runbook: failover-drill method=kill': { windowMs: [], okMs: [], lost: [] },
    'runbook: failover-drill method=shutdown': { windowMs: [], okMs: [], lost: [] },
  };
  let turn = 0;
  // Voters refuse a second vote about the same master within 2 x node timeout: rotate shards, and settle between drills.
  for (let i = 0; i < ROUNDS; i++) {
    for (const name of Object.keys(rows)) {
      await settled();
      await sleep(2 * NODE_TIMEOUT);
      const slot = SHARDS[turn++ % 3]!;
      let m: { windowMs: number; okMs: number; lost: number };
      if (name.startsWith('baseline')) {
        m = await bareDrill(inventoryDir, slot);
      } else {
        const { master } = await shard(slot);
        const r = cli([
          'run',
          'failover-drill',
          '--inventory',
          inventory,
          '--param',
          `node=${master.address}`,
          '--param',
          `method=${name.endsWith('kill') ? 'kill' : 'shutdown'}`,
          '--yes',
          '--allow-destructive',
        ]);
        if (r.status !== 0) throw new Error(`drill failed:\n${r.stdout}\n${r.stderr}`);
        const id = /^run (\S+):/m.exec(r.stdout)![1]!;
        const out = JSON.parse(cli(['show', id, '--json']).stdout).steps.find(
          (s: { stepId: string }) => s.stepId === 'fail-master',
        ).output;
        m = { windowMs: out.unavailableMs, okMs: out.timeToOkMs, lost: out.writesLost };
      }
      rows[name]!.windowMs.push(m.windowMs);
      rows[name]!.okMs.push(m.okMs);
      rows[name]!.lost.push(m.lost);
      process.stderr.write(
        `round ${i + 1}/${ROUNDS} ${name}: window ${m.windowMs} ms, ok after ${m.okMs} ms, lost ${m.lost}\n`,
      );
    }
  }
  cli(['sandbox', 'down', '--name', 'bench']);
  const base = rows['baseline: kill -9 + plain write loop']!;
  console.log(
    `\nfailover drill on the sandbox (3 masters x 1 replica, 20000 keys, cluster-node-timeout ${NODE_TIMEOUT} ms), ${ROUNDS} drills each, shards rotated`,
  );
  console.log(
    '| measurement | window median ms (min-max) | ratio | time to cluster_state:ok median ms (min-max) | ratio | acknowledged writes lost (median, max) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const [name, r] of Object.entries(rows)) {
    console.log(
      `| ${name} | ${median(r.windowMs)} (${Math.min(...r.windowMs)}-${Math.max(...r.windowMs)}) | ${(median(r.windowMs) / median(base.windowMs)).toFixed(2)} | ${median(r.okMs)} (${Math.min(...r.okMs)}-${Math.max(...r.okMs)}) | ${(median(r.okMs) / median(base.okMs)).toFixed(2)} | ${median(r.lost)}, ${Math.max(...r.lost)} |`,
    );
  }
}

await main();
