import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { skipUnless } from '../support/server-matrix.js';
import { cli, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { loadInventory } from '../../src/inventory/load.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { openEndpoint } from '../../src/data/endpoint.js';
import { verifyData, VERIFY_DEFAULTS } from '../../src/data/verify/verify.js';

// Redis 7.4's hash fields with their own TTL (HPEXPIREAT, HPERSIST) in `verify`: between two 7.4
// clusters a field TTL moved or removed on the target is a difference of that key, and nothing
// else is; a 7.4 source against a 7.2 target (which cannot hold them, and is never sent
// HPEXPIRETIME) reports the keys whose field TTLs were lost. Needs the redis-7.4.1 build (and
// redis-7.2.6 for the second case): REDIS_BUILDS names the directory of builds.
// One sandbox at a time: source 16800-16802, target 16900-16902 (no replicas).
const BASE = 16800;
const home = tempStateDir('rr-field-ttl-');
let inventory = '';
let clients: Cluster[] = [];

async function up(targetServer: string): Promise<{ src: Cluster; tgt: Cluster }> {
  for (const c of clients) c.disconnect();
  await sandboxDown(home);
  const s = await sandbox(home, BASE, [
    '--keys',
    '300',
    '--replicas',
    '0',
    '--target-masters',
    '3',
    '--seed-target',
    '--source-server',
    'redis-7.4.1',
    '--target-server',
    targetServer,
  ]);
  inventory = s.inventory;
  const cluster = (port: number) => {
    const c = new Cluster([{ host: '127.0.0.1', port }], { redisOptions: { password: s.password } });
    c.on('error', () => {});
    return c;
  };
  clients = [cluster(BASE), cluster(BASE + 100)];
  return { src: clients[0]!, tgt: clients[1]! };
}

after(async () => {
  for (const c of clients) c.disconnect();
  await sandboxDown(home);
});

const verify = (args: string[] = []) =>
  cli(home, ['verify', '--inventory', inventory, '--source', 'source', '--target', 'target', '--qps', '0', ...args]);
const lastLine = (out: string) => out.trim().split('\n').pop()!;
type Found = { key: string; kind: string; source: string; target: string };

/** A hash with a field that keeps no TTL and fields that have one, all expiring at `at`. */
async function hashWithFieldTtls(c: Cluster, key: string, fields: number, at: number): Promise<void> {
  const names = Array.from({ length: fields }, (_, i) => `f${i}`);
  await c.hset(key, 'keep', 'v', ...names.flatMap((n) => [n, `v-${n}`]));
  await c.call('HPEXPIREAT', key, String(at), 'FIELDS', String(names.length), ...names);
}

// Each key lives on whichever master owns its slot, on each side: routing is the comparison's job.
const KEYS = ['fttl:same', 'fttl:near', 'fttl:moved', 'fttl:persisted', 'fttl:big-same', 'fttl:big-moved'];

test(
  '7.4 -> 7.4: equal field TTLs verify clean; one moved beyond the tolerance or removed (HPERSIST) is a field-ttl difference of exactly that key',
  {
    skip: skipUnless('verify-field-ttl 7.4 -> 7.4', 'redis-7.4.1'),
  },
  async () => {
    const { src, tgt } = await up('redis-7.4.1');
    // Before any field TTL exists, nothing is compared and nothing said about them.
    const none = await verify(['--json']);
    assert.equal(none.code, 0, none.out);
    assert.deepEqual(JSON.parse(none.stdout).report.fieldTtls, { sourceKeys: 0, targetKeys: 0, compared: false });

    const at = Date.now() + 3_600_000;
    for (const c of [src, tgt]) {
      for (const k of ['fttl:same', 'fttl:near', 'fttl:moved', 'fttl:persisted']) await hashWithFieldTtls(c, k, 3, at);
      // Bigger than a page (1000 elements): compared a HSCAN page at a time.
      for (const k of ['fttl:big-same', 'fttl:big-moved']) await hashWithFieldTtls(c, k, 1500, at);
    }
    const clean = await verify();
    assert.equal(clean.code, 0, clean.out);
    assert.match(
      clean.out,
      /hash-field TTLs compared \(HPEXPIRETIME\): 6 source key\(s\) and 6 target key\(s\) have some/,
    );
    assert.equal(lastLine(clean.stdout), 'verify: 306 keys compared, 0 differ');

    await tgt.call('HPEXPIREAT', 'fttl:near', String(at + 1000), 'FIELDS', '1', 'f1'); // within the 2 s tolerance
    await tgt.call('HPEXPIREAT', 'fttl:moved', String(at + 60_000), 'FIELDS', '1', 'f2');
    await tgt.call('HPERSIST', 'fttl:persisted', 'FIELDS', '1', 'f0');
    await tgt.call('HPEXPIREAT', 'fttl:big-moved', String(at - 60_000), 'FIELDS', '1', 'f1234');
    const r = await verify(['--rounds', '1', '--json']);
    assert.equal(r.code, 1, r.out);
    const { differences, report } = JSON.parse(r.stdout) as { differences: Found[]; report: Record<string, unknown> };
    const byKey = Object.fromEntries(
      differences.map(({ key, kind, source, target }) => [key, { key, kind, source, target }]),
    );
    assert.deepEqual(Object.keys(byKey).sort(), ['fttl:big-moved', 'fttl:moved', 'fttl:persisted']);
    for (const d of differences) assert.equal(d.kind, 'field-ttl', JSON.stringify(d));
    const iso = (ms: number) => new Date(ms).toISOString();
    assert.deepEqual(byKey['fttl:moved'], {
      key: 'fttl:moved',
      kind: 'field-ttl',
      source: `field "f2" expires ${iso(at)}`,
      target: `field "f2" expires ${iso(at + 60_000)}`,
    });
    assert.equal(byKey['fttl:persisted']!.source, `field "f0" expires ${iso(at)}`);
    assert.equal(byKey['fttl:persisted']!.target, 'field "f0" no TTL');
    assert.equal(byKey['fttl:big-moved']!.target, `field "f1234" expires ${iso(at - 60_000)}`);
    assert.equal(report.differ, 3);
    assert.deepEqual(report.byKind, { 'field-ttl': 3 });

    // The text report lists them like any difference; the multi-command path (servers before 7.0
    // take it) finds the same keys as the script path.
    const text = await verify(['--rounds', '1']);
    assert.match(text.stdout, /field-ttl fttl:persisted: source field "f0" expires \S+ \| target field "f0" no TTL/);
    assert.equal(lastLine(text.stdout), 'verify: 306 keys compared, 3 differ');
    const inv = loadInventory(inventory);
    const pools = ['source', 'target'].map((c) => new ClusterPool(inv.clusters[c]!, { access: 'read-only' }));
    try {
      const [s, t] = await Promise.all(pools.map((p) => openEndpoint(p)));
      const without = await verifyData(s!, t!, { ...VERIFY_DEFAULTS, qps: 0, rounds: 1, useScripts: false });
      assert.deepEqual(without.differences.map((d) => `${d.key} ${d.kind}`).sort(), [
        'fttl:big-moved field-ttl',
        'fttl:moved field-ttl',
        'fttl:persisted field-ttl',
      ]);
      // Length mode does not read field names, so it does not compare field TTLs, and says so.
      const length = await verify(['--rounds', '1', '--mode', 'length']);
      assert.equal(length.code, 0, length.out);
      assert.match(length.out, /hash-field TTLs not compared in length mode/);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }

    // Put back as the source has them: 0 differences again.
    await tgt.call('HPEXPIREAT', 'fttl:moved', String(at), 'FIELDS', '1', 'f2');
    await tgt.call('HPEXPIREAT', 'fttl:persisted', String(at), 'FIELDS', '1', 'f0');
    await tgt.call('HPEXPIREAT', 'fttl:big-moved', String(at), 'FIELDS', '1', 'f1234');
    const again = await verify(['--rounds', '1']);
    assert.equal(again.code, 0, again.out);
    assert.equal(lastLine(again.stdout), 'verify: 306 keys compared, 0 differ');
    for (const k of KEYS) await Promise.all([src.del(k), tgt.del(k)]);
  },
);

test(
  '7.4 -> 7.2: the keys whose field TTLs the target cannot hold are differences, with why; the 7.2 target is never sent HPEXPIRETIME',
  {
    skip: skipUnless('verify-field-ttl 7.4 -> 7.2', 'redis-7.4.1', 'redis-7.2.6'),
  },
  async () => {
    const { src, tgt } = await up('redis-7.2.6');
    const at = Date.now() + 3_600_000;
    await hashWithFieldTtls(src, 'fttl:lost', 1, at); // one field with a TTL: the one named
    await src.hset('fttl:plain', 'a', '1');
    // The target holds the same values, without field TTLs (all it can hold).
    await tgt.hset('fttl:lost', 'keep', 'v', 'f0', 'v-f0');
    await tgt.hset('fttl:plain', 'a', '1');
    const errorsBefore = await tgtErrorReplies(tgt);
    const r = await verify(['--rounds', '1', '--json']);
    assert.equal(r.code, 1, r.out);
    const { differences } = JSON.parse(r.stdout) as { differences: Found[] };
    assert.deepEqual(
      differences.map(({ key, kind, source, target }) => ({ key, kind, source, target })),
      [
        {
          key: 'fttl:lost',
          kind: 'field-ttl',
          source: `field "f0" expires ${new Date(at).toISOString()}`,
          target: 'field "f0" no TTL (redis 7.2.6 cannot hold hash-field TTLs)',
        },
      ],
    );
    // An HPEXPIRETIME sent to 7.2 would be an unknown-command error reply there.
    assert.equal(await tgtErrorReplies(tgt), errorsBefore, 'no command of the comparison failed on the 7.2 target');
    for (const k of ['fttl:lost', 'fttl:plain']) await Promise.all([src.del(k), tgt.del(k)]);
  },
);

/** Error replies every target master has sent (INFO stats total_error_replies), summed. */
async function tgtErrorReplies(tgt: Cluster): Promise<number> {
  const counts = await Promise.all(
    tgt.nodes('master').map(async (n) => Number(/total_error_replies:(\d+)/.exec(await n.info('stats'))?.[1] ?? 0)),
  );
  return counts.reduce((a, b) => a + b, 0);
}
