/**
 * What one CLUSTER SETSLOT costs on a master with a replica, on each server build this machine
 * has (REDIS_RUNBOOK_BUILDS): 256 slots marked MIGRATING, then STABLE, then given away (NODE),
 * pipelined on 1 connection and spread over SETSLOT_LANES connections, and the same on a Valkey 8
 * master without a replica. Valkey 8 holds each SETSLOT until the replicas acknowledge it (see
 * setslotLanes in src/redis/slot-move.ts): this is what made one connection slow there.
 *
 * Bare nodes, no sandbox: master A (all slots) on 20800, an empty master B on 20801, A's replica
 * on 20802. `npm run bench -- setslot`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { availableBuilds, resolveServer } from '../src/sandbox/servers.js';
import { SETSLOT_LANES } from '../src/redis/slot-move.js';
import { median } from './stats.js';

const BASE = 20800;
const SLOTS = Number(process.env.BENCH_SLOTS ?? 256);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const t = Date.now();
  for (;;) {
    if (await f().catch(() => false)) return;
    if (Date.now() - t > ms) throw new Error('timed out waiting for the bench cluster');
    await sleep(100);
  }
}

/** A (all slots), B (none), and A's replica when asked: bare nodes in a temporary directory. */
async function cluster(binary: string, replica: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'rr-bench-setslot-'));
  const ports = replica ? [BASE, BASE + 1, BASE + 2] : [BASE, BASE + 1];
  const procs: ChildProcess[] = ports.map((port) => {
    writeFileSync(
      join(dir, `${port}.conf`),
      `port ${port}\nbind 127.0.0.1\ncluster-enabled yes\ncluster-config-file nodes-${port}.conf\n` +
        `cluster-node-timeout 2000\ndir ${dir}\nsave ""\nappendonly no\n`,
    );
    return spawn(binary, [join(dir, `${port}.conf`)], { stdio: 'ignore' });
  });
  const c = ports.map(
    (port) => new Redis({ port, maxRetriesPerRequest: 0, retryStrategy: (n) => (n > 100 ? null : 100) }),
  );
  c.forEach((x) => x.on('error', () => {}));
  const stop = async () => {
    c.forEach((x) => x.disconnect());
    // Gone before the directory is: a replica may still be writing its copy of the data.
    await Promise.all(
      procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(0) : (p.once('exit', r), p.kill())))),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return { ids: await join3(c, replica), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Meet the nodes, give A every slot, make the replica A's: returns the node ids. */
async function join3(c: Redis[], replica: boolean): Promise<string[]> {
  await until(async () => (await Promise.all(c.map((x) => x.ping()))).every((r) => r === 'PONG'));
  // ADDSLOTS, not ADDSLOTSRANGE: Redis 6.2 has no ADDSLOTSRANGE.
  await c[0]!.call('CLUSTER', 'ADDSLOTS', ...Array.from({ length: 16384 }, (_, i) => i));
  for (const x of c.slice(1)) await x.call('CLUSTER', 'MEET', '127.0.0.1', BASE);
  const ids = (await Promise.all(c.map((x) => x.call('CLUSTER', 'MYID')))).map(String);
  await until(async () => {
    const n = String(await c[0]!.call('CLUSTER', 'NODES'));
    return ids.every((id) => n.includes(id)) && !n.includes('handshake');
  });
  if (replica) {
    await until(async () => String(await c[2]!.call('CLUSTER', 'NODES')).includes(ids[0]!));
    await c[2]!.call('CLUSTER', 'REPLICATE', ids[0]!);
    // Online, not just connected: Valkey waits only for replicas done with their first sync.
    await until(async () => /master_link_status:up/.test(await c[2]!.info('replication')));
    await until(async () => /slave0:.*state=online/.test(await c[0]!.info('replication')));
  }
  return ids;
}

/** ms per slot for each phase, the slots dealt over `lanes` connections to A. */
async function round(ids: string[], lanes: number): Promise<[number, number, number]> {
  const conns = Array.from({ length: lanes }, () => new Redis({ port: BASE }));
  const b = new Redis({ port: BASE + 1 });
  await Promise.all([...conns, b].map((x) => x.ping()));
  const slots = Array.from({ length: SLOTS }, (_, i) => i);
  const phase = async (cmd: (s: number) => (string | number)[]) => {
    const t = process.hrtime.bigint();
    await Promise.all(
      conns.map(async (x, j) => {
        const res = await x.pipeline(slots.filter((s) => s % lanes === j).map((s) => cmd(s))).exec();
        for (const [e] of res ?? []) if (e) throw e;
      }),
    );
    return Number(process.hrtime.bigint() - t) / 1e6 / SLOTS;
  };
  const mig = await phase((s) => ['cluster', 'setslot', s, 'MIGRATING', ids[1]!]);
  const stable = await phase((s) => ['cluster', 'setslot', s, 'STABLE']);
  const node = await phase((s) => ['cluster', 'setslot', s, 'NODE', ids[1]!]);
  // Back to A, untimed: A takes them (no importing mark, so no epoch bump), then B lets go.
  await Promise.all(
    conns.map((x, j) =>
      x.pipeline(slots.filter((s) => s % lanes === j).map((s) => ['cluster', 'setslot', s, 'NODE', ids[0]!])).exec(),
    ),
  );
  await b.pipeline(slots.map((s) => ['cluster', 'setslot', s, 'NODE', ids[0]!])).exec();
  conns.forEach((x) => x.disconnect());
  b.disconnect();
  return [mig, stable, node];
}

async function main(): Promise<void> {
  const builds = availableBuilds();
  if (!builds.length) throw new Error('set REDIS_RUNBOOK_BUILDS to a directory of server builds');
  const fmt = (n: number) => n.toFixed(3).padStart(7);
  console.log(`CLUSTER SETSLOT, ms per slot (median of ${ROUNDS}), ${SLOTS} slots: MIGRATING / STABLE / NODE`);
  for (const build of builds) {
    const server = await resolveServer(build);
    const cases = server.flavor === 'valkey' ? [true, false] : [true];
    for (const replica of cases) {
      const c = await cluster(server.binary, replica);
      try {
        for (const lanes of [1, SETSLOT_LANES]) {
          const rs: Array<[number, number, number]> = [];
          for (let r = 0; r < ROUNDS; r++) rs.push(await round(c.ids, lanes));
          const m = [0, 1, 2].map((i) => median(rs.map((x) => x[i]!)));
          console.log(
            `${build.padEnd(14)} ${replica ? 'replica   ' : 'no replica'} ${String(lanes).padStart(2)} conn: ${m.map(fmt).join(' ')}`,
          );
        }
      } finally {
        await c.stop();
      }
    }
  }
}

await main();
