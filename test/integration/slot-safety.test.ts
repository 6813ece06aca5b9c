import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';
import { isTransientRefusal, moveSlots } from '../../src/redis/slot-move.js';
import { keySlot } from '../../src/redis/slots.js';

// 3 masters, no replicas, on 9470-9472, cluster-node-timeout 1000 ms.
const BASE = 9470;
const home = tempStateDir('rr-transient-');
let password = '';
let pool: ClusterPool;
let nodesDir = '';
const ADDR = [0, 1, 2].map((i) => `127.0.0.1:${BASE + i}`);
let ids: string[] = [];

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'tr',
    '--base-port',
    String(BASE),
    '--replicas',
    '0',
    '--keys',
    '2000',
    '--node-timeout',
    '1000',
  ]);
  if (r.code !== 0) throw new Error(r.out);
  const inventory = r.stdout.trim().split('\n').pop()!;
  nodesDir = join(dirname(inventory), 'nodes');
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
  pool = new ClusterPool(
    { name: 'source', seeds: [ADDR[0]!], auth: { password: { file: join(dirname(inventory), 'password') } } },
    { access: 'read-write' },
  );
  const view = parseClusterNodes(await pool.node(ADDR[0]!).text('CLUSTER', 'NODES'));
  ids = ADDR.map((a) => view.find((l) => l.address === a)!.id);
});
after(async () => {
  try {
    process.kill(pidOf(BASE + 2), 'SIGCONT');
  } catch {
    /* already running or gone */
  }
  await pool.close();
  await cli(home, ['sandbox', 'down', '--name', 'tr']);
});

const pidOf = (port: number) => Number(readFileSync(join(nodesDir, String(port), 'redis.pid'), 'utf8').trim());
const state = async (port: number) =>
  /cluster_state:(\w+)/.exec((await withNode(port, password, (c) => c.call('CLUSTER', 'INFO'))) as string)![1];

test('CLUSTERDOWN and TRYAGAIN are transient refusals; other errors are not', () => {
  assert.ok(isTransientRefusal(new Error('ERR Target instance replied with error: CLUSTERDOWN The cluster is down')));
  assert.ok(isTransientRefusal(new Error('TRYAGAIN Multiple keys request during rehashing of slot')));
  assert.ok(!isTransientRefusal(new Error('OOM command not allowed when used memory > maxmemory')));
  assert.ok(!isTransientRefusal(new Error('ERR Target instance replied with error: BUSYKEY')));
});

test('a slot move that meets CLUSTERDOWN (a master flagged fail, then back) is retried with backoff, says so, and completes', async () => {
  const key = Buffer.from('transient:key');
  const slot = keySlot(key);
  await withNode(BASE, password, (c) => c.call('SET', key, 'v'));
  const owner = parseClusterNodes(await pool.node(ADDR[0]!).text('CLUSTER', 'NODES')).find(
    (l) => l.flags.includes('master') && l.slots.some(([a, b]) => a <= slot && slot <= b),
  )!;
  const from = ADDR.indexOf(owner.address);
  const to = (from + 1) % 3;
  const frozen = [0, 1, 2].find((i) => i !== from && i !== to)!;
  // Freeze the third master: after the node timeout the others flag it fail, their
  // cluster_state turns fail, and the receiving master answers MIGRATE's RESTORE with CLUSTERDOWN.
  process.kill(pidOf(BASE + frozen), 'SIGSTOP');
  for (let i = 0; i < 100 && (await state(BASE + to)) !== 'fail'; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await state(BASE + to), 'fail');
  setTimeout(() => process.kill(pidOf(BASE + frozen), 'SIGCONT'), 1500);
  const retries: string[] = [];
  const r = await moveSlots(
    pool,
    [{ slot, from: { id: ids[from]!, address: ADDR[from]! }, to: { id: ids[to]!, address: ADDR[to]! } }],
    {
      batch: 100,
      migrateTimeoutMs: 5000,
      masters: ADDR,
      concurrency: 1,
      onRetry: (_g, attempt, delayMs, reason) => retries.push(`${attempt} ${delayMs} ${reason}`),
    },
  );
  assert.equal(r.slots, 1);
  assert.ok(retries.length >= 1, 'the move was retried');
  assert.match(retries[0]!, /CLUSTERDOWN/);
  assert.equal(await withNode(BASE + to, password, (c) => c.call('GET', key)), 'v');
});

test('rebalance refuses a slot someone else left open instead of closing it, and leaves it open', async () => {
  const inventory = join(dirname(nodesDir), 'inventory.yaml');
  // Make it uneven between the first two masters, so rebalance has moves to make.
  const view = parseClusterNodes(await pool.node(ADDR[0]!).text('CLUSTER', 'NODES'));
  const own = (i: number) =>
    view
      .find((l) => l.address === ADDR[i])!
      .slots.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k));
  await moveSlots(
    pool,
    own(0)
      .slice(0, 1500)
      .map((slot) => ({ slot, from: { id: ids[0]!, address: ADDR[0]! }, to: { id: ids[1]!, address: ADDR[1]! } })),
    { batch: 100, migrateTimeoutMs: 5000, masters: ADDR, concurrency: 4 },
  );
  // Someone else's reshard in flight: a slot of the third master, which keeps its share, MIGRATING.
  const foreign = own(2)[10]!;
  await withNode(BASE + 2, password, (c) => c.call('CLUSTER', 'SETSLOT', String(foreign), 'MIGRATING', ids[0]!));
  const r = await cli(home, ['run', 'rebalance', '--inventory', inventory, '--yes']);
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`no other slot open: open slots on 127\\.0\\.0\\.1:${BASE + 2}: ${foreign}`));
  const me = parseClusterNodes((await withNode(BASE + 2, password, (c) => c.call('CLUSTER', 'NODES'))) as string).find(
    (l) => l.flags.includes('myself'),
  )!;
  assert.deepEqual(
    me.migrating.map((m) => m.slot),
    [foreign],
    'the slot is still open',
  );
  await withNode(BASE + 2, password, (c) => c.call('CLUSTER', 'SETSLOT', String(foreign), 'STABLE'));
});

test('a saved rebalance plan still runs after the cluster took writes (keys and memory in its args changed; its signature holds)', async () => {
  const inventory = join(dirname(nodesDir), 'inventory.yaml');
  const planFile = join(home, 'rebalance-plan.json');
  const p = await cli(home, ['plan', 'rebalance', '--inventory', inventory, '--out', planFile]);
  assert.equal(p.code, 0, p.out);
  for (let i = 0; i < 300; i++)
    await withNode(BASE + (i % 3), password, (c) =>
      c.call('SET', `{${i % 3 === 0 ? 'a' : 'b'}}:later:${i}`, 'x'.repeat(100)),
    ).catch(() => undefined);
  const r = await cli(home, ['run', '--plan', planFile, '--yes']);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /E_PLAN_TAMPERED/);
});
