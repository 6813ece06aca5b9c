import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, tempStateDir } from '../support/cli.js';
import { availableBuilds } from '../../src/sandbox/servers.js';

// Every server build this machine has, beside the default redis-server: REDIS_BUILDS (or
// REDIS_RUNBOOK_BUILDS) names a directory of builds, <name>/bin/{redis,valkey}-server. For each
// build, a sandbox of it runs a manual failover with fail-back and a live sync into a target of the
// same build; then the upgrade pairs a migration most often is, and a downgrade the plan refuses.
// Without the builds the default server's suite still runs, and this file says the matrix was not.
// One sandbox at a time, source 17000-17005, target 17100-17105.
const BASE = 17000;
const BUILDS = process.env.REDIS_BUILDS ?? process.env.REDIS_RUNBOOK_BUILDS;
if (BUILDS) process.env.REDIS_RUNBOOK_BUILDS = BUILDS;
const builds = BUILDS && existsSync(BUILDS) ? availableBuilds(BUILDS) : [];
const home = tempStateDir('rr-versions-');
const results: Array<{ source: string; target: string; runbook: string; result: string }> = [];

async function up(source: string, target: string): Promise<string> {
  await cli(home, ['sandbox', 'down', '--name', 'ver']);
  const args = ['sandbox', 'up', '--name', 'ver', '--base-port', String(BASE), '--keys', '3000'];
  args.push('--target-masters', '3');
  if (source !== 'default') args.push('--source-server', source);
  if (target !== 'default') args.push('--target-server', target);
  const r = await cli(home, args);
  assert.equal(r.code, 0, `sandbox of ${source} -> ${target}:\n${r.out}`);
  return r.stdout.trim().split('\n').pop()!;
}

async function run(inventory: string, runbook: string, params: string[] = []): Promise<{ code: number; out: string }> {
  const r = await cli(home, [
    'run',
    runbook,
    '--inventory',
    inventory,
    ...params.flatMap((p) => ['--param', p]),
    '--yes',
    '--allow-destructive',
  ]);
  return { code: r.code, out: r.out };
}

after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'ver']);
  if (!builds.length) {
    console.log('server matrix: not available (set REDIS_BUILDS to a directory of builds); default server only');
    return;
  }
  console.log(`server matrix: builds ${builds.join(', ')} and the default redis-server`);
  for (const r of results) console.log(`  ${r.source} -> ${r.target}: ${r.runbook}: ${r.result}`);
});

for (const b of builds) {
  test(`${b}: a sandbox of it; manual failover with fail-back; migrate-sync into ${b} ends with 0 differences`, async () => {
    const inventory = await up(b, b);
    const mf = await run(inventory, 'manual-failover', [`node=127.0.0.1:${BASE}`, 'failback=true']);
    assert.equal(mf.code, 0, mf.out);
    results.push({ source: b, target: b, runbook: 'manual-failover (fail-back)', result: 'succeeded' });
    // The psync engine's exactly-once apply needs Redis 7 scripts on the target: before 7, the
    // plan refuses it and names mode=scan, which is then what runs.
    const before7 = /^redis-6\./.test(b);
    if (before7) {
      const r = await cli(home, ['plan', 'migrate-sync', '--inventory', inventory]);
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /FAIL target runs Redis 7\+: the target runs 6\.\d+\.\d+: .*use mode=scan/);
      results.push({ source: b, target: b, runbook: 'migrate-sync mode=psync', result: 'refused by the plan' });
    }
    const sync = await run(inventory, 'migrate-sync', before7 ? ['mode=scan'] : []);
    assert.equal(sync.code, 0, sync.out);
    assert.match(sync.out, /comparison: 3000 keys compared, 0 differ/);
    const name = before7 ? 'migrate-sync mode=scan' : 'migrate-sync';
    results.push({ source: b, target: b, runbook: name, result: 'succeeded, 0 differences' });
  });
}

// A migration is often an upgrade too: each pair present on this machine, by live sync.
const UPGRADES: Array<[string, string]> = [
  ['redis-6.2.16', 'redis-7.2.6'],
  ['default', 'redis-7.4.1'],
  ['redis-7.2.6', 'valkey-8.0.1'],
  ['redis-6.2.16', 'valkey-8.0.1'],
];
const have = (b: string) => b === 'default' || builds.includes(b);
for (const [source, target] of UPGRADES.filter(([s, t]) => have(s) && have(t))) {
  test(`upgrade by migrate-sync: ${source} -> ${target} ends with 0 differences`, async () => {
    const inventory = await up(source, target);
    const sync = await run(inventory, 'migrate-sync');
    assert.equal(sync.code, 0, sync.out);
    assert.match(sync.out, /comparison: 3000 keys compared, 0 differ/);
    results.push({ source, target, runbook: 'migrate-sync', result: 'succeeded, 0 differences' });
  });
}

if (have('redis-7.4.1'))
  test('downgrade: redis-7.4.1 -> the default server, by migrate-sync and by migrate-copy-files, is refused by the plan, naming both', async () => {
    const inventory = await up('redis-7.4.1', 'default');
    const r = await cli(home, ['plan', 'migrate-sync', '--inventory', inventory]);
    assert.notEqual(r.code, 0, r.out);
    assert.match(
      r.out,
      /FAIL target version: the target runs redis \d+\.\d+\.\d+, older than the source's redis 7\.4\.1/,
    );
    results.push({ source: 'redis-7.4.1', target: 'default', runbook: 'migrate-sync', result: 'refused by the plan' });
    const c = await cli(home, ['plan', 'migrate-copy-files', '--inventory', inventory]);
    assert.notEqual(c.code, 0, c.out);
    assert.match(
      c.out,
      /FAIL versions: source redis 7\.4\.1 writes RDB 12, newer than target redis \S+ loads \(RDB 1[01] at most\)/,
    );
    results.push({
      source: 'redis-7.4.1',
      target: 'default',
      runbook: 'migrate-copy-files',
      result: 'refused by the plan',
    });
  });

// A file copy is an upgrade only when the target loads the source's format. Valkey 8 drops, when
// it starts, the keys of slots it does not own: the slot mapping of the copy must be exact.
if (have('redis-6.2.16') && have('valkey-8.0.1'))
  test('upgrade by migrate-copy-files: redis-6.2.16 -> valkey-8.0.1, same structure; every key arrives', async () => {
    const inventory = await up('redis-6.2.16', 'valkey-8.0.1');
    const r = await run(inventory, 'migrate-copy-files');
    assert.equal(r.code, 0, r.out);
    const v = await cli(home, ['verify', '--inventory', inventory, '--source', 'source', '--target', 'target']);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, /verify: 3000 keys compared, 0 differ/);
    results.push({
      source: 'redis-6.2.16',
      target: 'valkey-8.0.1',
      runbook: 'migrate-copy-files',
      result: 'succeeded, 0 differences',
    });
  });

// Redis 7.4's hash fields with their own TTL: carried by mode=scan (DUMP and RESTORE) into 7.4,
// refused by the plan for the psync engine (its RDB reader does not read them yet) and for a target
// that cannot hold them, with the count of such keys.
if (have('redis-7.4.1'))
  test('hash-field TTLs (7.4): mode=scan carries them into 7.4; psync and a Valkey 8.0 target are refused by the plan with the count', async () => {
    const inventory = await up('redis-7.4.1', have('valkey-8.0.1') ? 'valkey-8.0.1' : 'redis-7.4.1');
    // Each sandbox has its own password: read it again after every `up`.
    const password = () => readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
    const cliOf = join(BUILDS!, 'redis-7.4.1', 'bin', 'redis-cli');
    const on = (port: number, ...args: string[]) => {
      const r = spawnSync(cliOf, ['-c', '-p', String(port), '-a', password(), '--no-auth-warning', ...args], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /^(ERR|WRONGPASS|NOAUTH)/m, r.stdout);
      return r.stdout.trim();
    };
    const redis = (...args: string[]) => on(BASE, ...args);
    const at = Date.now() + 3_600_000;
    for (const k of ['hfe:a', 'hfe:b', 'hfe:c']) {
      redis('HSET', k, 'keep', '1', 'ttl', '2');
      redis('HPEXPIREAT', k, String(at), 'FIELDS', '1', 'ttl');
    }
    if (have('valkey-8.0.1')) {
      const r = await cli(home, ['plan', 'migrate-sync', '--param', 'mode=scan', '--inventory', inventory]);
      assert.notEqual(r.code, 0, r.out);
      assert.match(
        r.out,
        /FAIL hash-field TTLs: 3 source key\(s\) have hash fields with their own TTL.*valkey 8\.0\.1\) cannot hold them/,
      );
      results.push({
        source: 'redis-7.4.1',
        target: 'valkey-8.0.1',
        runbook: 'migrate-sync, keys with hash-field TTLs',
        result: 'refused by the plan',
      });
      await up('redis-7.4.1', 'redis-7.4.1');
      for (const k of ['hfe:a', 'hfe:b', 'hfe:c']) {
        redis('HSET', k, 'keep', '1', 'ttl', '2');
        redis('HPEXPIREAT', k, String(at), 'FIELDS', '1', 'ttl');
      }
    }
    const psync = await cli(home, ['plan', 'migrate-sync', '--inventory', inventory]);
    assert.equal(psync.code, 0, psync.out);
    assert.match(psync.out, /hash-field TTLs: 3 key\(s\) with hash-field TTLs, carried by the full sync/);
    const r = await run(inventory, 'migrate-sync', ['mode=scan']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /comparison: 3003 keys compared, 0 differ/);
    const target = (...args: string[]) => on(BASE + 100, ...args);
    for (const k of ['hfe:a', 'hfe:b', 'hfe:c'])
      assert.equal(target('HPEXPIRETIME', k, 'FIELDS', '2', 'keep', 'ttl'), `-1\n${at}`);
    results.push({
      source: 'redis-7.4.1',
      target: 'redis-7.4.1',
      runbook: 'migrate-sync mode=scan, keys with hash-field TTLs',
      result: 'succeeded, field TTLs kept',
    });
  });
