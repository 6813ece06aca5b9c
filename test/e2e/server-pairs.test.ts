import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempStateDir } from '../support/cli.js';
import { unbalance } from '../support/cluster.js';
import { MatrixSandbox, builds, have, printCoverage, record, refusal, skipUnless } from '../support/server-matrix.js';

// Between servers, beyond the upgrades of server-upgrades.test.ts: live sync between every other
// pair, the pairs each migration's plan refuses (a downgrade, Redis 7.4's RDB 12 onto Valkey 8.0),
// hash-field TTLs, and a Valkey target sharded one slot differently. One sandbox at a time:
// source 20000-20005, target 20100-20105.
const BASE = 20000;
const box = new MatrixSandbox(tempStateDir('rr-pairs-'), 'pairs', BASE);

after(async () => {
  await box.down();
  printCoverage('server matrix (pairs)');
});

// Live sync between every other pair of servers where the target can hold the source's data (the
// pairs above, and each server into itself in server-versions.test.ts, are not repeated): each
// sync, then a full verify. Valkey 8.0 speaks Redis 7.2's commands and writes RDB 11 as 7.2 does,
// so it syncs into Redis 7.2 and 7.4 too.
const SYNC_PAIRS: Array<[string, string]> = [
  ['redis-6.2.16', 'default'],
  ['redis-6.2.16', 'redis-7.4.1'],
  ['default', 'redis-7.2.6'],
  ['default', 'valkey-8.0.1'],
  ['redis-7.2.6', 'redis-7.4.1'],
  ['valkey-8.0.1', 'redis-7.2.6'],
  ['valkey-8.0.1', 'redis-7.4.1'],
];
const syncPairs = SYNC_PAIRS.filter(([s, t]) => have(s) && have(t));
if (syncPairs.length)
  test(`migrate-sync between every other pair: ${syncPairs.map(([s, t]) => `${s} -> ${t}`).join(', ')}`, async () => {
    for (const [source, target] of syncPairs) {
      await box.up(source, target);
      await box.migrateAndVerify('migrate-sync', source, target);
    }
  });

// A target older than the source cannot load its files nor always hold its data: each migration's
// plan refuses, naming both servers, before anything is touched.
const DOWNGRADES: Array<[string, string, Record<string, RegExp>]> = [
  [
    'redis-7.4.1',
    'default',
    {
      'migrate-sync': /FAIL target version: the target runs redis \d+\.\d+\.\d+, older than the source's redis 7\.4\.1/,
      // The advice is to upgrade the target: migrate-sync refuses an older target as well.
      'migrate-copy-files':
        /FAIL versions: source redis 7\.4\.1 writes RDB 12, newer than target redis \S+ loads .*upgrade the target first \(no runbook migrates to an older server\)$/m,
      'migrate-consolidate-reshard':
        /FAIL versions: source redis 7\.4\.1 writes RDB 12, newer than target redis \S+ loads/,
    },
  ],
  [
    'redis-7.4.1',
    'valkey-8.0.1',
    {
      // Valkey 8.0 answers as Redis 7.2.4: the commands a 7.4 source replicates may not exist there.
      'migrate-sync':
        /FAIL target version: the target runs valkey 8\.0\.1 \(Redis 7\.2\.4 commands\), older than the source's redis 7\.4\.1/,
      'migrate-copy-files': /FAIL versions: source redis 7\.4\.1 writes RDB 12, newer than target valkey 8\.0\.1 loads/,
      'migrate-consolidate-reshard':
        /FAIL versions: source redis 7\.4\.1 writes RDB 12, newer than target valkey 8\.0\.1 loads/,
    },
  ],
];
for (const [source, target, refused] of DOWNGRADES.filter(([s, t]) => have(s) && have(t))) {
  test(`${source} -> ${target}: ${Object.keys(refused).join(', ')} refused by the plan, naming both servers`, async () => {
    await box.up(source, target);
    const v = await box.versions();
    for (const [runbook, pattern] of Object.entries(refused)) {
      const detail = refusal(await box.plan(runbook), pattern);
      record({ runbook, source, target, result: 'refused', detail, sourceVersion: v.source, targetVersion: v.target });
    }
  });
}

// Redis 7.4's hash fields with their own TTL: carried into 7.4 by the psync engine (its full
// sync's RDB and the replicated HPEXPIREAT) and by mode=scan (DUMP and RESTORE), each checked field
// by field; a target that cannot hold them is refused by the plan with the count of such keys.
// test/e2e/hash-field-ttl.test.ts proves the psync path with big hashes and writes during the sync.
if (have('redis-7.4.1'))
  test('hash-field TTLs (7.4): carried into 7.4 by psync and by scan; a Valkey 8.0 target is refused by the plan with the count', async () => {
    const at = Date.now() + 3_600_000;
    const seed = () => {
      for (const k of ['hfe:a', 'hfe:b', 'hfe:c']) {
        box.redis('redis-7.4.1', BASE, 'HSET', k, 'keep', '1', 'ttl', '2');
        box.redis('redis-7.4.1', BASE, 'HPEXPIREAT', k, String(at), 'FIELDS', '1', 'ttl');
      }
    };
    if (have('valkey-8.0.1')) {
      await box.up('redis-7.4.1', 'valkey-8.0.1');
      seed();
      const v = await box.versions();
      for (const mode of ['psync', 'scan']) {
        const detail = refusal(
          await box.plan('migrate-sync', [`mode=${mode}`]),
          /FAIL hash-field TTLs: 3 source key\(s\) have hash fields with their own TTL.*valkey 8\.0\.1\) cannot hold them/,
        );
        record({
          runbook: `migrate-sync mode=${mode} (hash-field TTLs)`,
          source: 'redis-7.4.1',
          target: 'valkey-8.0.1',
          result: 'refused',
          detail,
          sourceVersion: v.source,
          targetVersion: v.target,
        });
      }
    }
    for (const mode of ['psync', 'scan']) {
      await box.up('redis-7.4.1', 'redis-7.4.1');
      seed();
      const r = await box.run('migrate-sync', [`mode=${mode}`]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /comparison: 3003 keys compared, 0 differ/);
      for (const k of ['hfe:a', 'hfe:b', 'hfe:c'])
        assert.equal(
          box.redis('redis-7.4.1', BASE + 100, 'HPEXPIRETIME', k, 'FIELDS', '2', 'keep', 'ttl'),
          `-1\n${at}`,
        );
      const v = await box.versions();
      record({
        runbook: `migrate-sync mode=${mode} (hash-field TTLs)`,
        source: 'redis-7.4.1',
        target: 'redis-7.4.1',
        result: 'supported',
        detail: 'every field TTL kept exactly; verify compared them: 0 differences',
        sourceVersion: v.source,
        targetVersion: v.target,
      });
    }
  });

// Valkey 8 deletes, when it starts, the keys of slots it does not own: a file copied onto a master
// that owns even one slot less than its source master would lose that slot's keys. The plan
// demands the exact same slot ranges on both sides, and refuses one slot off, naming it.
if (have('valkey-8.0.1'))
  test('a Valkey 8.0 target sharded one slot differently: migrate-copy-files is refused by the plan, naming the ranges', async () => {
    await box.up('default', 'valkey-8.0.1');
    await unbalance(BASE + 100, box.password(), 1);
    const detail = refusal(
      await box.plan('migrate-copy-files'),
      /E_STRUCTURE: source and target are not sharded the same way: source slots \d+-\d+ have no target master with exactly those slots/,
    );
    const v = await box.versions();
    record({
      runbook: 'migrate-copy-files (target one slot off)',
      source: 'default',
      target: 'valkey-8.0.1',
      result: 'refused',
      detail,
      sourceVersion: v.source,
      targetVersion: v.target,
    });
  });

// Without any build every case above is left out, and a file of no tests never ends under
// node:test (seen: it waited until killed): one case then says what was not run and why.
if (builds.length === 0)
  test(
    'server pairs',
    { skip: skipUnless('server matrix (pairs)', 'redis-6.2.16', 'redis-7.2.6', 'redis-7.4.1', 'valkey-8.0.1') },
    () => {},
  );
