/**
 * What moving one key from a master to another costs the two servers, by kind of mover, and so
 * how fast any mover of that kind could go on this machine:
 * - redis-cli --cluster reshard (MIGRATE, 10 keys a call, one slot at a time);
 * - the engine (moveSlots in src/redis/slot-move.ts: MIGRATE, groups of slots at once);
 * - a sketch of a DUMP/RESTORE mover: while the slot is only IMPORTING on the target, DUMP the
 *   slot's keys under WATCH and RESTORE-ASKING them on the target, then MULTI { SETSLOT MIGRATING;
 *   DEL the keys } EXEC on the source (keys written meanwhile fail the EXEC; keys created
 *   meanwhile go by MIGRATE). It is here to be measured, not used: it has no crash handling
 *   (docs/benchmarks.md, "slot migration", says what that needs).
 * For each: keys/s, and CPU microseconds per moved key of the source and the target (INFO cpu)
 * and of the mover's process (redis-cli under /usr/bin/time; the engine and the sketch run in
 * this process: its rusage). The machine's cores divided by the CPU a key costs is a ceiling no
 * mover of that kind passes here, however well it overlaps its work.
 * Every slot of master A goes to master B and back, BENCH_ROUNDS times (default 2) per mover.
 * `npm run bench -- move-ceiling` (not in the default set: it takes about 5 minutes).
 */
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import type { ClusterNodeLine } from '../src/redis/cluster-nodes.js';
import { moveSlots } from '../src/redis/slot-move.js';
import { rangesToSlots } from '../src/redis/slots.js';
import { median } from './stats.js';
import { timed } from './timed.js';
import { slotSandbox } from './slot-sandbox.js';
import { benchCli } from './bench-cli.js';

const BASE = 8230;
const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** Slots the sketch moves at once, a connection pair each. */
const SKETCH_LANES = 16;
const { home, cli } = benchCli('move-ceiling');

type Mover = 'redis-cli' | 'engine' | 'dump-restore sketch';
interface Move {
  keys: number;
  ms: number;
  srcCpuS: number;
  dstCpuS: number;
  moverCpuS: number;
}

async function cpuSeconds(c: Redis): Promise<number> {
  const t = String(await c.call('INFO', 'cpu'));
  const field = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(t)![1]);
  return field('used_cpu_sys') + field('used_cpu_user');
}

/** The sketch's move of one slot (see the header): copy under WATCH, then one EXEC marks and deletes. */
async function sketchSlot(a: Redis, b: Redis, slot: number, from: ClusterNodeLine, to: ClusterNodeLine, pw: string) {
  await b.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
  for (;;) {
    const keys = (await a.call('CLUSTER', 'GETKEYSINSLOT', slot, 100_000)) as string[];
    if (keys.length) {
      await a.call('WATCH', ...keys);
      const p = a.pipeline();
      for (const k of keys) p.dumpBuffer(k).pttl(k);
      const got = (await p.exec())!;
      const q = b.pipeline();
      keys.forEach((k, i) => {
        const payload = got[2 * i]![1] as Buffer | null;
        const ttl = got[2 * i + 1]![1] as number;
        // A key gone before the WATCH has nothing to move; one changed after it fails the EXEC (redone).
        if (payload) q.call('RESTORE-ASKING', k, ttl > 0 ? ttl : 0, payload, 'REPLACE');
      });
      const put = (await q.exec())!;
      const bad = put.find(([e]) => e);
      if (bad) throw bad[0]!;
    }
    const m = a.multi().call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    if (keys.length) m.call('DEL', ...keys);
    if ((await m.exec()) !== null) break;
  }
  // Keys created since GETKEYSINSLOT (none on this idle cluster) stay on the source: MIGRATE.
  for (;;) {
    const keys = (await a.call('CLUSTER', 'GETKEYSINSLOT', slot, 1000)) as string[];
    if (!keys.length) break;
    const [host, port] = to.address.split(':');
    // A fresh error: ioredis's own carries the command's arguments, the password among them.
    await a.call('MIGRATE', host!, port!, '', 0, 20_000, 'AUTH', pw, 'KEYS', ...keys).catch((err: Error) => {
      throw new Error(`MIGRATE of slot ${slot} to ${to.address} failed: ${err.message.split(pw).join('***')}`);
    });
  }
}

async function main(): Promise<void> {
  const {
    pool,
    password: pw,
    masters,
    a,
    b,
    settle,
  } = await slotSandbox(cli, { name: 'moveceil', base: BASE, keys: KEYS });
  const slots = rangesToSlots(a.slots);
  const aKeys = Number(await pool.node(a.address).call('DBSIZE'));
  const conn = (l: ClusterNodeLine) => {
    const [host, port] = l.address.split(':');
    return new Redis({ host, port: Number(port), password: pw, enableAutoPipelining: false });
  };
  const ctl = new Map(masters.map((m) => [m.id, conn(m)]));

  /** The sketch: SKETCH_LANES slots at once, each on a connection pair of its own (WATCH is per connection). */
  const sketch = async (from: ClusterNodeLine, to: ClusterNodeLine) => {
    const lanes = Array.from({ length: SKETCH_LANES }, () => ({ a: conn(from), b: conn(to) }));
    let next = 0;
    try {
      await Promise.all(
        lanes.map(async ({ a: src, b: dst }) => {
          while (next < slots.length) {
            const slot = slots[next++]!;
            await sketchSlot(src, dst, slot, from, to, pw);
            await Promise.all(masters.map((m) => ctl.get(m.id)!.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id)));
          }
        }),
      );
    } finally {
      for (const l of lanes) {
        l.a.disconnect();
        l.b.disconnect();
      }
    }
  };

  const run = async (mover: Mover, from: ClusterNodeLine, to: ClusterNodeLine): Promise<Move> => {
    const keys = Number(await ctl.get(from.id)!.call('DBSIZE'));
    const [s0, d0] = [await cpuSeconds(ctl.get(from.id)!), await cpuSeconds(ctl.get(to.id)!)];
    const r0 = process.cpuUsage();
    const t0 = Date.now();
    let childCpuS = 0;
    if (mover === 'redis-cli') {
      const t = timed(
        'redis-cli',
        [
          ...['--cluster', 'reshard', `127.0.0.1:${BASE + 2}`, '--cluster-from', from.id, '--cluster-to', to.id],
          ...['--cluster-slots', String(slots.length), '--cluster-yes'],
        ],
        home,
        { ...process.env, REDISCLI_AUTH: pw },
      );
      if (t.status !== 0) throw new Error(`redis-cli reshard failed: ${t.stderr.slice(-2000)}`);
      childCpuS = t.cpuS;
    } else if (mover === 'engine') {
      const moves = slots.map((slot) => ({
        slot,
        from: { id: from.id, address: from.address },
        to: { id: to.id, address: to.address },
      }));
      await moveSlots(pool, moves, {
        batch: 100,
        migrateTimeoutMs: 20_000,
        masters: masters.map((m) => m.address),
        concurrency: 8,
      });
    } else await sketch(from, to);
    const ms = Date.now() - t0;
    const own = process.cpuUsage(r0);
    // Both ways move master A's own slots (redis-cli takes a master's lowest slots first: A's are 0-5460).
    const moved = keys - Number(await ctl.get(from.id)!.call('DBSIZE'));
    if (moved !== aKeys)
      throw new Error(`${mover}: moved ${moved} keys ${from.address} -> ${to.address}, not ${aKeys}`);
    return {
      keys: moved,
      ms,
      srcCpuS: (await cpuSeconds(ctl.get(from.id)!)) - s0,
      dstCpuS: (await cpuSeconds(ctl.get(to.id)!)) - d0,
      // redis-cli's own process; the engine and the sketch run in this one (the bench's waiting included).
      moverCpuS: mover === 'redis-cli' ? childCpuS : (own.user + own.system) / 1e6,
    };
  };

  const movers: Mover[] = ['redis-cli', 'engine', 'dump-restore sketch'];
  const moves = new Map<Mover, Move[]>(movers.map((m) => [m, []]));
  for (let i = 0; i < ROUNDS; i++)
    for (const mover of i % 2 ? [...movers].reverse() : movers)
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const m = await run(mover, from, to);
        moves.get(mover)!.push(m);
        process.stderr.write(
          `round ${i + 1}: ${mover} moved ${m.keys} keys ${from.address} -> ${to.address} in ${m.ms} ms; CPU s: source ${m.srcCpuS.toFixed(1)}, target ${m.dstCpuS.toFixed(1)}, mover ${m.moverCpuS.toFixed(1)}\n`,
        );
        await settle();
      }
  await pool.close();
  for (const c of ctl.values()) c.disconnect();

  const cores = availableParallelism();
  const us = (xs: Move[], f: (m: Move) => number) => median(xs.map((m) => (f(m) * 1e6) / m.keys));
  const rate = (xs: Move[]) => median(xs.map((m) => m.keys / (m.ms / 1000)));
  const cliRate = rate(moves.get('redis-cli')!);
  console.log(
    `\nslot moves, what a key costs: every slot of one master (${slots.length} slots, about ${Math.round(KEYS / 3)} keys) to another and back, ${ROUNDS} rounds, medians; ${cores} cores. Ceiling: cores x 1e6 / CPU us per key.`,
  );
  console.log(
    '| mover | keys/s | source CPU us/key | target CPU us/key | mover CPU us/key | ceiling, servers only | ceiling, with the mover | keys/s ratio to redis-cli |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const mover of movers) {
    const xs = moves.get(mover)!;
    const [src, dst, own] = [us(xs, (m) => m.srcCpuS), us(xs, (m) => m.dstCpuS), us(xs, (m) => m.moverCpuS)];
    console.log(
      `| ${mover} | ${Math.round(rate(xs))} | ${src.toFixed(1)} | ${dst.toFixed(1)} | ${own.toFixed(1)} | ${Math.round((cores * 1e6) / (src + dst))} | ${Math.round((cores * 1e6) / (src + dst + own))} | ${(rate(xs) / cliRate).toFixed(2)} |`,
    );
  }
  console.log(`5x redis-cli here: ${Math.round(5 * cliRate)} keys/s`);
}

try {
  await main();
} finally {
  cli(['sandbox', 'down', '--name', 'moveceil']);
}
