import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdsFieldTtls, printsShortestScores, rdbVersionOf, serverIdentity } from '../../src/redis/server-identity.js';

test('Valkey is told by server_name / valkey_version, not by its fixed redis_version 7.2.4', () => {
  assert.deepEqual(serverIdentity({ redis_version: '7.2.4', server_name: 'valkey', valkey_version: '8.0.1' }), {
    flavor: 'valkey',
    version: '8.0.1',
    rdbVersion: 11,
  });
  assert.deepEqual(serverIdentity({ redis_version: '7.0.15' }), { flavor: 'redis', version: '7.0.15', rdbVersion: 10 });
});

test('the RDB format each release writes', () => {
  assert.deepEqual(
    ['6.2.16', '7.0.15', '7.2.6', '7.4.1', '8.0.0'].map((v) => rdbVersionOf('redis', v)),
    [9, 10, 11, 12, 12],
  );
  assert.equal(rdbVersionOf('valkey', '8.0.1'), 11);
});

test('only Redis 7.4+ holds hash-field TTLs (and is ever sent HPEXPIRETIME)', () => {
  const holds = (info: Record<string, string>) => holdsFieldTtls(serverIdentity(info));
  assert.equal(holds({ redis_version: '7.4.1' }), true);
  assert.equal(holds({ redis_version: '8.0.0' }), true);
  assert.equal(holds({ redis_version: '7.2.6' }), false);
  assert.equal(holds({ redis_version: '6.2.16' }), false);
  assert.equal(holds({ redis_version: '7.2.4', server_name: 'valkey', valkey_version: '8.0.1' }), false);
  assert.equal(holds({}), false, 'a server not read is taken for the oldest');
});

test('Redis 7.2+ and Valkey print scores in the shortest form, Redis 7.0 and before as %.17g (what verify digests need to know)', () => {
  const shortest = (info: Record<string, string>) => printsShortestScores(serverIdentity(info));
  assert.equal(shortest({ redis_version: '7.0.15' }), false);
  assert.equal(shortest({ redis_version: '6.2.16' }), false);
  assert.equal(shortest({ redis_version: '7.2.6' }), true);
  assert.equal(shortest({ redis_version: '7.4.1' }), true);
  assert.equal(shortest({ redis_version: '7.2.4', server_name: 'valkey', valkey_version: '8.0.1' }), true);
});

test('a sandbox server is told by its --version line; before Redis 7 the sandbox config leaves out the enable-* directives', async () => {
  const { parseServerVersion, hasEnableDirectives } = await import('../../src/sandbox/servers.js');
  const { renderNodeConfig } = await import('../../src/sandbox/node-config.js');
  assert.deepEqual(parseServerVersion('Valkey server v=8.0.1 sha=00000000:1 malloc=jemalloc-5.3.0 bits=64'), {
    flavor: 'valkey',
    version: '8.0.1',
  });
  const r62 = parseServerVersion('Redis server v=6.2.16 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64')!;
  assert.deepEqual(r62, { flavor: 'redis', version: '6.2.16' });
  assert.equal(parseServerVersion('redis-cli 7.0.15'), undefined);
  assert.equal(hasEnableDirectives(r62), false);
  assert.equal(hasEnableDirectives({ flavor: 'redis', version: '7.0.15' }), true);
  const paths = { dir: '/d', conf: '/d/redis.conf', pid: '/d/redis.pid', log: '/d/redis.log' };
  const conf = (before7: boolean) =>
    renderNodeConfig({ port: 7000, paths: paths as never, password: 'p', nodeTimeoutMs: 2000, before7 });
  assert.doesNotMatch(conf(true), /enable-debug-command|enable-protected-configs/);
  assert.match(conf(false), /enable-debug-command local/);
});
