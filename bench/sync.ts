/**
 * The built-in sync engine's full sync against a ceiling measured in the
 * same run: a minimal loader that RESTOREs the same keys' DUMP payloads,
 * read beforehand into memory, straight into the target (pipelines of 256
 * per owner, 4 in flight per node: what the engine's loader does, minus
 * receiving and parsing the RDB). Then the incremental phase under a steady
 * write load on the source: end-to-end lag of probe writes (acknowledged on
 * the source -> readable in the target).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ClusterPool, type NodeClient } from '../src/redis/connect.js';
import { openEndpoint, type Endpoint } from '../src/data/endpoint.js';
import { RespPipe } from '../src/data/protocol/resp-pipe.js';
import { median, percentile } from './stats.js';
import { engineFullSync } from './engine-sync.js';
import { measureLag } from './lag.js';
import { benchCli } from './bench-cli.js';

const BASE = 8420;
const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_MASTERS = 5;
const { home, cli } = benchCli('sync');

type Payload = [Buffer, string, Buffer];

/** Every key's DUMP payload and TTL (not timed): what the minimal loader writes. */
async function dumpAll(source: Endpoint): Promise<{ payloads: Payload[]; bytes: number }> {
  const payloads: Payload[] = [];
  let bytes = 0;
  for (const node of source.masters) {
    let cursor = '0';
    do {
      const [next, keys] = (await node.call('SCAN', cursor, 'COUNT', 1000)) as [Buffer, Buffer[]];
      cursor = String(next);
      const res = await node.pipeline(keys.flatMap((k) => [['DUMP', k] as const, ['PTTL', k] as const]));
      keys.forEach((k, i) => {
        const p = res[2 * i]![1] as Buffer | null;
        const ttl = Number(res[2 * i + 1]![1]);
        if (!p || ttl === -2 || ttl === 0) return;
        payloads.push([k, ttl > 0 ? String(ttl) : '0', p]);
        bytes += p.length;
      });
    } while (cursor !== '0');
  }
  return { payloads, bytes };
}

/**
 * The ceiling: pipelined RESTORE of ready payloads, routed by slot, 4
 * pipelines of 256 in flight per node, over the same bare connection the
 * engine writes through (resp-pipe.ts), so the two differ only in what the
 * engine does besides writing.
 */
async function minimalLoader(
  target: Endpoint,
  payloads: Payload[],
  credentials: { password?: string },
): Promise<number> {
  const t0 = Date.now();
  const queues = new Map<NodeClient, Payload[]>();
  for (const p of payloads) {
    const n = target.route(p[0]);
    const q = queues.get(n) ?? [];
    q.push(p);
    queues.set(n, q);
  }
  await Promise.all(
    [...queues].map(async ([node, q]) => {
      const pipe = await RespPipe.open(node.address, credentials);
      let next = 0;
      const worker = async () => {
        while (next < q.length) {
          const part = q.slice(next, next + 256);
          next += 256;
          const errors = await pipe.send(part.map(([k, ttl, p]) => ['RESTORE', k, ttl, p, 'REPLACE']));
          if (errors.length) throw new Error(errors[0]!.message);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      pipe.close();
    }),
  );
  return Date.now() - t0;
}

async function flushTarget(target: Endpoint): Promise<void> {
  await Promise.all(target.masters.map((m) => m.call('FLUSHALL')));
}

/** The source's part alone: every master producing and sending its RDB at once (redis-cli --rdb), for the floor. */
async function sourceRdbs(source: Endpoint, password: string): Promise<number> {
  const t0 = Date.now();
  await Promise.all(
    source.masters.map((m) => {
      const i = m.address.lastIndexOf(':');
      return execa(
        'redis-cli',
        [
          '-h',
          m.address.slice(0, i),
          '-p',
          m.address.slice(i + 1),
          '--rdb',
          join(home, `source-${i}-${m.address.slice(i + 1)}.rdb`),
        ],
        { env: { REDISCLI_AUTH: password }, stdout: 'ignore', stderr: 'ignore' },
      );
    }),
  );
  const ms = Date.now() - t0;
  for (const f of readdirSync(home)) if (f.endsWith('.rdb')) rmSync(join(home, f));
  return ms;
}

async function main(): Promise<void> {
  process.stderr.write(`seeding ${KEYS} keys...\n`);
  const up = cli([
    'sandbox',
    'up',
    '--name',
    'syncb',
    '--base-port',
    String(BASE),
    '--replicas',
    '0',
    '--keys',
    String(KEYS),
    '--target-masters',
    String(TARGET_MASTERS),
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const inventory = up.stdout.trim();
  const pwFile = join(inventory, '..', 'password');
  const password = readFileSync(pwFile, 'utf8').trim();
  const source = new ClusterPool(
    { name: 'source', seeds: [`127.0.0.1:${BASE}`], auth: { password: { file: pwFile } } },
    { access: 'read-write' },
  );
  const target = new ClusterPool(
    { name: 'target', seeds: [`127.0.0.1:${BASE + 100}`], auth: { password: { file: pwFile } } },
    { access: 'read-write' },
  );
  const src = await openEndpoint(source);
  const tgt = await openEndpoint(target);
  const { payloads, bytes } = await dumpAll(src);
  process.stderr.write(
    `${payloads.length} keys, ${(bytes / 1048576).toFixed(1)} MB of DUMP payloads read for the ceiling loader\n`,
  );

  const ceilMs: number[] = [];
  const engMs: number[] = [];
  const srcMs: number[] = [];
  let rdbBytes = 0;
  let engKeys = 0;
  for (let i = 0; i < ROUNDS; i++) {
    srcMs.push(await sourceRdbs(src, password));
    for (const which of i % 2 === 0 ? ['ceiling', 'engine'] : ['engine', 'ceiling']) {
      await flushTarget(tgt);
      if (which === 'ceiling') {
        const ms = await minimalLoader(tgt, payloads, { password });
        ceilMs.push(ms);
        process.stderr.write(`round ${i + 1}: ceiling loader ${payloads.length} keys in ${ms} ms\n`);
      } else {
        const r = await engineFullSync(source, target, `bench${i}`);
        await r.session.stop();
        engMs.push(r.ms);
        rdbBytes = r.rdbBytes;
        engKeys = r.keys;
        process.stderr.write(
          `round ${i + 1}: engine full sync ${r.keys} keys (${(r.rdbBytes / 1048576).toFixed(1)} MB RDB) in ${r.ms} ms\n`,
        );
      }
      if ((await tgt.keyCount()) < payloads.length)
        throw new Error(`the target holds ${await tgt.keyCount()} keys, fewer than ${payloads.length}`);
    }
  }

  // Incremental: a steady write load, and probe writes timed from the source's ack to the target.
  await flushTarget(tgt);
  const inc = await engineFullSync(source, target, 'bench-inc');
  const RATE = Number(process.env.BENCH_RATE ?? 10000);
  const { writes, elapsed, lags } = await measureLag({
    sourcePort: BASE,
    targetPort: BASE + 100,
    password,
    rate: RATE,
    seconds: 15,
  });
  const applied = inc.session.status().reduce((n, s) => n + s.opsPerSec, 0);
  await inc.session.stop();
  await source.close();
  await target.close();

  const p99 = percentile(lags, 99);
  const kps = (ms: number, keys: number) => Math.round(keys / (ms / 1000));
  const mbps = (ms: number, b: number) => (b / 1048576 / (ms / 1000)).toFixed(1);
  console.log(
    `\nfull sync: ${engKeys} mixed keys (strings, lists, hashes, sets, zsets, streams; ~10% with TTL), source 3 masters -> target ${TARGET_MASTERS} masters, no replicas, ${ROUNDS} rounds each, medians`,
  );
  console.log('| loader | median ms | keys/s | MB/s | runs (ms) | ratio to ceiling |');
  console.log('|---|---|---|---|---|---|');
  console.log(
    `| ceiling: minimal loader, RESTORE of ready DUMP payloads (${(bytes / 1048576).toFixed(1)} MB), pipelines of 256, 4 in flight per node, same bare connection | ${median(ceilMs)} | ${kps(median(ceilMs), payloads.length)} | ${mbps(median(ceilMs), bytes)} | ${ceilMs.join(', ')} | 1.00 |`,
  );
  console.log(
    `| engine: PSYNC per source master, RDB parsed as it arrives, RESTORE payloads built from it (${(rdbBytes / 1048576).toFixed(1)} MB RDB) | ${median(engMs)} | ${kps(median(engMs), engKeys)} | ${mbps(median(engMs), rdbBytes)} | ${engMs.join(', ')} | ${(median(ceilMs) / median(engMs)).toFixed(2)} |`,
  );
  console.log(
    `| reference: the source alone producing and sending its RDBs (redis-cli --rdb FILE, every master at once) | ${median(srcMs)} | | | ${srcMs.join(', ')} | |`,
  );
  console.log(
    `\nThe ceiling excludes the source's part. Ceiling + source part: ${median(ceilMs) + median(srcMs)} ms; the engine, which overlaps them: ${median(engMs)} ms (ratio ${((median(ceilMs) + median(srcMs)) / median(engMs)).toFixed(2)}).`,
  );
  console.log(
    `\nincremental: ${Math.round(writes / elapsed)} writes/s on the source for ${elapsed.toFixed(0)} s (engine applying ~${applied} commands/s at the end); ${lags.length} probe writes, source ack -> readable in the target:`,
  );
  console.log('| lag median ms | p99 ms | max ms |');
  console.log('|---|---|---|');
  console.log(`| ${median(lags)} | ${p99} | ${Math.max(...lags)} |`);
}

try {
  await main();
} finally {
  cli(['sandbox', 'down', '--name', 'syncb']);
}
