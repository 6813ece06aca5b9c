import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, structure, withNode, SHARD_SLOTS } from '../support/cluster.js';

const BASE = 7500;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  await sandboxDown(home);
});

const port = (address: string) => Number(address.split(':')[1]);

async function up(p: number): Promise<boolean> {
  return withNode(p, password, (r) => r.ping()).then(
    () => true,
    () => false,
  );
}

/** Keys in the whole cluster, summed over the masters that answer. */
async function totalKeys(ports: number[]): Promise<number> {
  let sum = 0;
  for (const p of ports) {
    if (!(await up(p))) continue;
    const info = (await withNode(p, password, (r) => r.call('INFO', 'replication'))) as string;
    if (/role:master/.test(info)) sum += Number(await withNode(p, password, (r) => r.call('DBSIZE')));
  }
  return sum;
}

/** Which live nodes still list this address in their CLUSTER NODES. */
async function listedBy(address: string, ports: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of ports) {
    if (!(await up(p))) continue;
    const text = (await withNode(p, password, (r) => r.call('CLUSTER', 'NODES'))) as string;
    if (text.includes(` ${address}@`)) out.push(p);
  }
  return out;
}

const ALL = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
let keysAtStart = 0;

test('decommission a replica with deleteFiles=true: forgotten everywhere, stopped, files gone', async () => {
  keysAtStart = await totalKeys(ALL);
  const { replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[0]);
  const r = await cli(home, [
    'run',
    'decommission-node',
    '--inventory',
    inventory,
    '--param',
    `node=${replica}`,
    '--param',
    'deleteFiles=true',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.equal(await up(port(replica)), false, 'the node is stopped');
  assert.deepEqual(await listedBy(replica, ALL), []);
  const nodeDir = join(dirname(inventory), 'nodes', String(port(replica)));
  assert.equal(existsSync(join(nodeDir, 'nodes.conf')), false, 'nodes.conf deleted');
  assert.equal(existsSync(join(nodeDir, 'redis.conf')), true, 'only the data files are deleted');
  assert.equal(await totalKeys(ALL), keysAtStart);
});

test('a master left without a replica: the drill and a decommission without moveSlots are refused in the plan, nothing changes', async () => {
  const m = await masterOf(SHARD_SLOTS[0]!);
  const live = await liveNodes();
  const before = await structure(live, password);
  const drill = await cli(home, ['plan', 'failover-drill', '--inventory', inventory, '--param', `node=${m}`]);
  assert.equal(drill.code, 3, drill.out);
  assert.match(drill.stderr, /E_NO_REPLICA/);
  const dec = await cli(home, [
    'run',
    'decommission-node',
    '--inventory',
    inventory,
    '--param',
    `node=${m}`,
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(dec.code, 3, dec.out);
  assert.match(dec.stderr, /has no replica.*moveSlots=true/s);
  assert.equal(await structure(live, password), before);
});

async function liveNodes(): Promise<number[]> {
  const out: number[] = [];
  for (const p of ALL) if (await up(p)) out.push(p);
  return out;
}

/** The master owning `slot`, from a live node's view (works when the shard has no replica). */
async function masterOf(slot: number): Promise<string> {
  for (const p of ALL) {
    if (!(await up(p))) continue;
    const text = (await withNode(p, password, (r) => r.call('CLUSTER', 'NODES'))) as string;
    for (const line of text.trim().split('\n')) {
      const f = line.split(' ');
      if (!f[2]!.includes('master')) continue;
      for (const s of f.slice(8)) {
        const [a, b] = s.split('-').map(Number);
        if (a! <= slot && slot <= (b ?? a!)) return f[1]!.split('@')[0]!;
      }
    }
  }
  throw new Error(`no owner of slot ${slot}`);
}

test('decommission a master with a replica: demoted by planned failover, then removed; its replica serves the slots', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[1]);
  const r = await cli(home, [
    'run',
    'decommission-node',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.equal(await masterOf(SHARD_SLOTS[1]!), replica);
  assert.equal(await up(port(master)), false);
  assert.deepEqual(await listedBy(master, ALL), []);
  assert.equal(await totalKeys(ALL), keysAtStart);
  const s = JSON.parse((await cli(home, ['show', runIdOf(r), '--json'])).stdout);
  assert.deepEqual(
    s.steps.map((x: { stepId: string }) => x.stepId),
    ['preflight', 'demote-sync', 'demote', 'demote-agreement', 'forget', 'shutdown', 'verify'],
  );
  assert.equal(
    existsSync(join(dirname(inventory), 'nodes', String(port(master)), 'nodes.conf')),
    true,
    'data files stay unless asked',
  );
});

test('decommission a master with no replica and moveSlots=true: its slots and keys move to the other masters', async () => {
  const master = await masterOf(SHARD_SLOTS[0]!);
  const r = await cli(home, [
    'run',
    'decommission-node',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--param',
    'moveSlots=true',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.notEqual(await masterOf(SHARD_SLOTS[0]!), master);
  assert.equal(await up(port(master)), false);
  assert.deepEqual(await listedBy(master, ALL), []);
  assert.equal(await totalKeys(ALL), keysAtStart, 'no key lost');
  // Every slot is served and the keys are readable where the cluster says they are.
  for (const p of await liveNodes()) {
    const info = (await withNode(p, password, (c) => c.call('CLUSTER', 'INFO'))) as string;
    assert.match(info, /cluster_state:ok/);
    assert.match(info, /cluster_slots_assigned:16384/);
  }
});
