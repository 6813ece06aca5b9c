import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Cluster } from 'ioredis';
import '../support/ioredis-asking.js';
import { skipUnless } from '../support/server-matrix.js';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';

// Redis 7.4's hash fields with their own TTL (HEXPIRE), carried by the psync engine: the full
// sync's RDB holds them in the two encodings 7.4 writes (listpack-ex for small hashes, hashtable
// with metadata for big ones), and the replication stream carries HPEXPIREAT, HPERSIST and the
// HDEL of a field that expired. A 7.4 source and a 7.4 target of another shape (3 masters into 2),
// so a key's commands must reach the master that owns its slot there. Source 16410-16415, target
// 16510-16513 (test/support/ports.ts). Needs the redis-7.4.1 build (REDIS_BUILDS).
const BASE = 16410;
const BUILD = 'redis-7.4.1';
const skip = skipUnless('hash-field TTL e2e', BUILD);

const home = tempStateDir('rr-hfe-');
let inventory = '';
let password = '';
let source: Cluster | undefined;
let target: Cluster | undefined;

before(async () => {
  if (skip) return;
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'hfe',
    '--base-port',
    String(BASE),
    '--keys',
    '500',
    '--target-masters',
    '2',
    '--source-server',
    BUILD,
    '--target-server',
    BUILD,
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
  const open = (port: number) =>
    new Cluster([{ host: '127.0.0.1', port }], { redisOptions: { password }, enableOfflineQueue: true });
  source = open(BASE);
  target = open(BASE + 100);
});
after(async () => {
  source?.disconnect();
  target?.disconnect();
  if (!skip) await cli(home, ['sandbox', 'down', '--name', 'hfe']);
});

const SMALL = 60; // listpack-ex: 6 fields, under hash-max-listpack-entries (512)
const BIG = 6; // hashtable: 700 fields (over 512), about 20 KB in the RDB: over bigKeyBytes below, so rebuilt
const FAR = () => Date.now() + 3_600_000;
const small = (i: number) => `hfe:s:{${i}}`;
const big = (i: number) => `hfe:b:{${i}}`;

/** Hashes with fields of their own TTL, some fields without, small and big, spread over the slots. */
async function seed(c: Cluster): Promise<void> {
  const at = FAR();
  for (let i = 0; i < SMALL; i++) {
    const k = small(i);
    await c.hset(k, 'a', '1', 'b', '2', 'c', '3', 'd', '4', 'e', '5', 'n', String(i));
    // Distinct times per field: the RDB keeps each one (listpack-ex: absolute, per field).
    await c.call('HPEXPIREAT', k, String(at + i), 'FIELDS', '1', 'a');
    await c.call('HPEXPIREAT', k, String(at + 1000 + i), 'FIELDS', '2', 'b', 'c');
    // Gone before the comparison: while the runner is down, or already in the RDB's past.
    if (i % 5 === 0) await c.call('HPEXPIRE', k, String(1500 + 50 * i), 'FIELDS', '1', 'd');
    if (i % 7 === 0) await c.pexpire(k, 7_200_000); // a key TTL besides the field TTLs
  }
  for (let i = 0; i < BIG; i++) {
    const k = big(i);
    const fields = Array.from({ length: 700 }, (_, f) => [`field-${f}`, `value-${i}-${f}`]).flat();
    await c.hset(k, ...fields);
    // Metadata form: TTLs relative to the hash's earliest, some far apart (multi-byte lengths).
    for (let f = 0; f < 700; f += 3)
      await c.call('HPEXPIREAT', k, String(at + f * 997_001), 'FIELDS', '1', `field-${f}`);
    await c.call('HPEXPIRE', k, '2000', 'FIELDS', '1', 'field-1');
  }
}

/** What the writes made while the sync runs, and while the runner is down, do to the hashes. */
async function change(c: Cluster, round: number): Promise<void> {
  const at = FAR() + round;
  for (let i = round % 3; i < SMALL; i += 3) {
    const k = small(i);
    await c.call('HPEXPIREAT', k, String(at), 'FIELDS', '1', 'e'); // a TTL on a field that had none
    await c.call('HPERSIST', k, 'FIELDS', '1', 'b'); // a TTL removed
    await c.call('HPEXPIRE', k, '0', 'FIELDS', '1', 'c'); // expired at once: replicated as HDEL
    await c.hset(k, `new-${round}`, 'x');
  }
  for (let i = 0; i < BIG; i++) {
    await c.call('HPEXPIREAT', big(i), String(at + i), 'FIELDS', '2', 'field-2', `field-${(round * 3) % 700}`);
    await c.call('HPERSIST', big(i), 'FIELDS', '1', 'field-3');
  }
}

/** Every field of every hash-field-TTL key with its value and HPEXPIRETIME (-1: none), as one server sees it. */
async function fieldsOf(c: Cluster): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  const keys = [...Array.from({ length: SMALL }, (_, i) => small(i)), ...Array.from({ length: BIG }, (_, i) => big(i))];
  keys.push('hfe:late');
  for (const k of keys) {
    const h = await c.hgetall(k);
    const names = Object.keys(h).sort();
    const times = names.length
      ? ((await c.call('HPEXPIRETIME', k, 'FIELDS', String(names.length), ...names)) as number[])
      : [];
    out.set(k, new Map(names.map((n, j) => [n, `${h[n]} @ ${times[j]}`])));
  }
  return out;
}

test(
  'psync carries hash-field TTLs: full sync (listpack-ex and hashtable, RESTORE and rebuilt) and the stream (HPEXPIREAT, HPERSIST, a field expiring); every field TTL equals the source, 0 differences',
  { skip },
  async () => {
    const s = source!;
    await seed(s);
    // Both encodings 7.4 writes hashes with field TTLs in are in the source's RDB.
    assert.equal(await s.call('OBJECT', 'ENCODING', small(1)), 'listpackex');
    assert.equal(await s.call('OBJECT', 'ENCODING', big(1)), 'hashtable');
    const plan = await cli(home, ['plan', 'migrate-sync', '--inventory', inventory]);
    assert.equal(plan.code, 0, plan.out);
    assert.match(plan.out, /hash-field TTLs: \d+ key\(s\) with hash-field TTLs, carried by the full sync/);

    // Killed once caught up (so the full sync is loaded and the stream applied), with writes all
    // along: each lands in the RDB or in the stream, depending on when the fork happened.
    const args = ['run', 'migrate-sync', '--inventory', inventory, '--yes', '--param', 'bigKeyBytes=8kb'];
    let done = false;
    const first = cli(home, args, { REDIS_RUNBOOK_FAILPOINT: 'catch-up:caught-up' }).finally(() => (done = true));
    let round = 0;
    while (!done) {
      await change(s, ++round);
      await new Promise((r) => setTimeout(r, 100));
    }
    const killed = await first;
    assert.equal(killed.code, 137, killed.out);
    assert.match(killed.out, /full sync loaded/);
    assert.ok(round >= 2, `${round} rounds of changes during the first run`);

    // While nothing syncs: these come only through the continuation (partial resync). A big hash
    // made now arrives as HSET and HPEXPIREAT; the short field TTLs run out, replicated as HDEL.
    await change(s, ++round);
    await s.hset('hfe:late', ...Array.from({ length: 600 }, (_, f) => [`f${f}`, `v${f}`]).flat());
    await s.call('HPEXPIREAT', 'hfe:late', String(FAR()), 'FIELDS', '2', 'f1', 'f2');
    await s.call('HPEXPIRE', 'hfe:late', '300', 'FIELDS', '1', 'f3');
    await new Promise((r) => setTimeout(r, 5000)); // every short field TTL (at most 4.5 s) has run out
    const resumed = await cli(home, ['resume', runIdOf(killed), '--yes']);
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, /partial resync, no full sync/);
    assert.match(resumed.out, /comparison: \d+ keys compared, 0 differ/);

    const want = await fieldsOf(s);
    const got = await fieldsOf(target!);
    for (const [k, fields] of want) {
      assert.ok(fields.size > 0, `${k} has fields on the source`);
      assert.deepEqual(Object.fromEntries(got.get(k)!), Object.fromEntries(fields), `fields and TTLs of ${k}`);
    }
    // The changes really happened: TTLs on fields that had none, TTLs removed, fields gone.
    assert.match(want.get(small(0))!.get('e')!, / @ \d{13}$/);
    assert.match(want.get(small(0))!.get('b')!, / @ -1$/);
    assert.equal(want.get(small(0))!.get('d'), undefined);
    assert.equal(want.get(big(0))!.get('field-1'), undefined);
    assert.equal(want.get('hfe:late')!.get('f3'), undefined);
    assert.match(want.get('hfe:late')!.get('f1')!, / @ \d{13}$/);
    for (let i = 0; i < SMALL; i += 7) assert.ok((await target!.pttl(small(i))) > 7_000_000, `key TTL of ${small(i)}`);
  },
);
