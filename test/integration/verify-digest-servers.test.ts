import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { ClusterPool } from '../../src/redis/connect.js';
import { openEndpoint } from '../../src/data/endpoint.js';
import { verifyData, VERIFY_DEFAULTS } from '../../src/data/verify/verify.js';
import { availableBuilds, resolveServer, BUILDS_ENV } from '../../src/sandbox/servers.js';
import { startStandalone, type Standalone } from '../support/standalone.js';

// verify's full mode compares digests the servers make (a read script on each side), so two
// servers of different versions must make the same digest of the same value. Each pair: values of
// every type, written in other orders on each side (listpack hashes and sets iterate in insertion
// order, big ones in their table's order; Redis 7.0 keeps small string sets as hashtables where
// 7.2 has listpacks), must verify clean with no key read again whole, and a change in each type
// is found. Zset scores go into the digest as the servers print them only when both print a
// double alike: Redis 7.0 prints 0.1 as "0.10000000000000001", Redis 7.2+ and Valkey as "0.1".
// Ports 17350-17351.
const BASE = 17350;
const BUILDS = process.env.REDIS_BUILDS ?? process.env[BUILDS_ENV];
if (BUILDS) process.env[BUILDS_ENV] = BUILDS;
const builds = BUILDS && existsSync(BUILDS) ? availableBuilds(BUILDS) : [];
if (!builds.includes('redis-7.2.6') || !builds.includes('valkey-8.0.1'))
  console.log('verify-digest-servers: REDIS_BUILDS lacks redis-7.2.6 or valkey-8.0.1: same-server pair only');

const pairs: Array<[string, string, boolean]> = [
  ['default', 'default', true],
  ...(builds.includes('redis-7.2.6') ? [['default', 'redis-7.2.6', false] as [string, string, boolean]] : []),
  ...(builds.includes('redis-7.2.6') && builds.includes('valkey-8.0.1')
    ? [['redis-7.2.6', 'valkey-8.0.1', true] as [string, string, boolean]]
    : []),
];

const N = 40;

/** Values of every type, each written in insertion order, or in reverse on the other side. */
async function writeAll(r: Redis, reverse: boolean): Promise<string[]> {
  const order = <T>(xs: T[]) => (reverse ? [...xs].reverse() : xs);
  const keys: string[] = [];
  for (let i = 0; i < N; i++) {
    const big = i % 4 === 0;
    const size = big ? 300 : 5;
    const fields = Array.from({ length: size }, (_, j) => [
      `f${j}`,
      j % 3 ? `v${j}:${i}` : Buffer.from([0, j, 255, 10]),
    ]);
    await r.hset(`hash:${i}`, ...order(fields).flat());
    await r.sadd(`set:${i}`, ...order(Array.from({ length: size }, (_, j) => `m${j}-${i}`)));
    await r.sadd(`intset:${i}`, ...order(Array.from({ length: size }, (_, j) => String(j * 7 - 3))));
    await r.zadd(`board:${i}`, '0.1', 'a', String(i + 0.3), 'b', '1234.567', 'c', '1e20', 'd', '-7', 'e');
    await r.rpush(`list:${i}`, 'one', Buffer.from([0, 255, 13, 10]), `${i}`);
    await r.xadd(`stream:${i}`, '1-1', 'k', 'v', 'n', String(i));
    await r.xadd(`stream:${i}`, '2-1', 'k', Buffer.from([1, 0, 2]));
    await r.set(`string:${i}`, Buffer.from([0, 1, 2, 255, i]));
    keys.push(...['hash', 'set', 'intset', 'board', 'list', 'stream', 'string'].map((t) => `${t}:${i}`));
  }
  return keys;
}

/** One changed element in a key of each type, on one side. */
async function changeOneOfEach(r: Redis): Promise<string[]> {
  await r.hset('hash:4', 'f150', 'X');
  await r.srem('set:1', 'm2-1');
  await r.sadd('set:1', 'm2-1x');
  await r.srem('intset:2', '4');
  await r.sadd('intset:2', '5');
  await r.zadd('board:7', '1234.5670001', 'c');
  await r.lset('list:3', 1, Buffer.from([0, 255, 13, 11]));
  await r.xadd('stream:5', '3-1', 'k', 'w');
  await r.setrange('string:6', 1, 'x');
  return ['hash:4', 'set:1', 'intset:2', 'board:7', 'list:3', 'stream:5', 'string:6'];
}

for (const [source, target, asPrinted] of pairs) {
  test(`${source} -> ${target}: equal values of every type give equal digests (zset scores ${asPrinted ? 'as printed' : 'normalised'}), a change in each type is found`, async () => {
    const servers: Standalone[] = [];
    const pools: ClusterPool[] = [];
    try {
      for (const [i, name] of [source, target].entries()) {
        const server = await resolveServer(name === 'default' ? undefined : name);
        servers.push(await startStandalone({ port: BASE + i, dirPrefix: 'rr-score-print-', binary: server.binary }));
      }
      const clients = await Promise.all(servers.map((s) => s.client()));
      try {
        const keys = await writeAll(clients[0]!, false);
        await writeAll(clients[1]!, true);
        pools.push(
          ...servers.map(
            (s, i) =>
              new ClusterPool(
                { name: i ? 'target' : 'source', seeds: [`127.0.0.1:${s.port}`] },
                { access: 'read-only' },
              ),
          ),
        );
        const [s, t] = await Promise.all(pools.map((p) => openEndpoint(p)));
        const run = () => verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1 });
        const clean = await run();
        assert.deepEqual(clean.digests, { used: true, reread: 0, scoresAsPrinted: asPrinted });
        assert.equal(clean.compared, keys.length);
        assert.equal(clean.differences.length, 0);
        const changed = await changeOneOfEach(clients[1]!);
        const after = await run();
        assert.equal(after.digests.reread, changed.length, 'only the changed keys are read again whole');
        assert.deepEqual(
          after.differences.map((d) => `${String(d.key)} ${d.kind}`).sort(),
          changed.map((k) => `${k} value`).sort(),
        );
      } finally {
        for (const c of clients) c.disconnect();
      }
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      for (const s of servers) await s.stop();
    }
  });
}
