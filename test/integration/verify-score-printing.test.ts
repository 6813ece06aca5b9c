import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { ClusterPool } from '../../src/redis/connect.js';
import { openEndpoint } from '../../src/data/endpoint.js';
import { verifyData, VERIFY_DEFAULTS } from '../../src/data/verify/verify.js';
import { availableBuilds, resolveServer, BUILDS_ENV } from '../../src/sandbox/servers.js';
import { startStandalone, type Standalone } from '../support/standalone.js';

// verify's digests take zset scores as the servers print them when every node of both sides
// prints a double alike, and normalise them otherwise: Redis 7.0 prints 0.1 as
// "0.10000000000000001", Redis 7.2+ and Valkey as "0.1". Each pair: the same zsets on two
// standalone servers must verify clean with no key read again (a digest taken as printed across
// the two printings would differ for every fractional score), and a changed score is found.
// Ports 17200-17201.
const BASE = 17200;
const BUILDS = process.env.REDIS_BUILDS ?? process.env[BUILDS_ENV];
if (BUILDS) process.env[BUILDS_ENV] = BUILDS;
const builds = BUILDS && existsSync(BUILDS) ? availableBuilds(BUILDS) : [];
if (!builds.includes('redis-7.2.6') || !builds.includes('valkey-8.0.1'))
  console.log('verify-score-printing: REDIS_BUILDS lacks redis-7.2.6 or valkey-8.0.1: same-server pair only');

const pairs: Array<[string, string, boolean]> = [
  ['default', 'default', true],
  ...(builds.includes('redis-7.2.6') ? [['default', 'redis-7.2.6', false] as [string, string, boolean]] : []),
  ...(builds.includes('redis-7.2.6') && builds.includes('valkey-8.0.1')
    ? [['redis-7.2.6', 'valkey-8.0.1', true] as [string, string, boolean]]
    : []),
];

async function writeZsets(r: Redis): Promise<void> {
  for (let i = 0; i < 200; i++)
    await r.zadd(`board:${i}`, '0.1', 'a', String(i + 0.3), 'b', '1234.567', 'c', '1e20', 'd', '-7', 'e');
}

for (const [source, target, asPrinted] of pairs) {
  test(`${source} -> ${target}: zset digests ${asPrinted ? 'take scores as printed' : 'normalise scores'}, verify clean with nothing read again; a changed score is found`, async () => {
    const servers: Standalone[] = [];
    const pools: ClusterPool[] = [];
    try {
      for (const [i, name] of [source, target].entries()) {
        const server = await resolveServer(name === 'default' ? undefined : name);
        servers.push(await startStandalone({ port: BASE + i, dirPrefix: 'rr-score-print-', binary: server.binary }));
      }
      const clients = await Promise.all(servers.map((s) => s.client()));
      try {
        await Promise.all(clients.map(writeZsets));
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
        assert.equal(clean.compared, 200);
        assert.equal(clean.differences.length, 0);
        await clients[1]!.zadd('board:7', '1234.5670001', 'c');
        const changed = await run();
        assert.equal(changed.digests.reread, 1, 'only the changed key is read again whole');
        assert.deepEqual(
          changed.differences.map((d) => `${String(d.key)} ${d.kind}`),
          ['board:7 value'],
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
