import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { skipUnless } from '../support/server-matrix.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { parseClusterNodes, type ClusterNodeLine } from '../../src/redis/cluster-nodes.js';
import { moveSlots, setslotLanes, SETSLOT_LANES, type SlotMove } from '../../src/redis/slot-move.js';
import { rangesToSlots } from '../../src/redis/slots.js';

// Slot moves on a Valkey 8 cluster with replicas, where every CLUSTER SETSLOT waits for the
// replicas' acknowledgement and the move spreads them over several connections per node (see
// setslotLanes in src/redis/slot-move.ts). Sandbox 3 masters x 1 replica on 20700-20705.
const BUILD = 'valkey-8.0.1';
const BASE = 20700;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const skip = skipUnless('slot moves on Valkey', BUILD);

const home = tempStateDir('rr-slots-valkey-');
let password = '';
let pool: ClusterPool;

before(async () => {
  if (skip) return;
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'vslots',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--source-server',
    BUILD,
  ]);
  if (r.code !== 0) throw new Error(r.out);
  const inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
  pool = new ClusterPool(
    {
      name: 'source',
      seeds: [`127.0.0.1:${BASE}`],
      auth: { password: { file: join(dirname(inventory), 'password') } },
    },
    { access: 'read-write' },
  );
});
after(async () => {
  if (skip) return;
  await pool.close();
  await cli(home, ['sandbox', 'down', '--name', 'vslots']);
});

const views = () =>
  Promise.all(PORTS.map(async (p) => withNode(p, password, async (r) => String(await r.call('CLUSTER', 'NODES')))));
const masters = async () =>
  parseClusterNodes((await views())[0]!)
    .filter((l) => l.flags.includes('master'))
    .sort((a, b) => a.address.localeCompare(b.address));
const ref = (l: ClusterNodeLine) => ({ id: l.id, address: l.address });
const keyCount = async () => {
  let n = 0;
  for (const m of await masters()) n += Number(await withNode(m.address, password, (r) => r.call('DBSIZE')));
  return n;
};

/** Every node, replicas too, has the same owner for every slot, all 16384 are owned, and none is open. */
async function assertSettled(): Promise<Map<number, string>> {
  const owners = (await views()).map((text) => {
    const lines = parseClusterNodes(text);
    const me = lines.find((l) => l.flags.includes('myself'))!;
    // Valkey 8 replicates MIGRATING/IMPORTING to the replicas: none may be left open anywhere.
    assert.deepEqual([...me.migrating, ...me.importing], [], `${me.address} has no open slot`);
    const owner = new Map<number, string>();
    for (const l of lines.filter((x) => x.flags.includes('master')))
      for (const s of rangesToSlots(l.slots)) owner.set(s, l.address);
    return owner;
  });
  assert.equal(owners[0]!.size, 16384, 'every slot has an owner');
  for (const o of owners.slice(1)) assert.deepEqual(o, owners[0], 'all nodes agree on the owner of every slot');
  return owners[0]!;
}

test('a Valkey 8 master with a replica takes the lanes (the Redis path keeps one connection)', { skip }, async () => {
  for (const m of await masters()) {
    const info = await withNode(m.address, password, (r) => r.info('replication'));
    assert.match(info, /connected_slaves:1/, `${m.address} has its replica, so its SETSLOTs wait for it`);
    assert.equal(await setslotLanes(pool, m.address), SETSLOT_LANES);
  }
});

test('slots move both ways on Valkey 8 with every key, every slot, and all nodes agreeing', { skip }, async () => {
  const [a, b, c] = await masters();
  const before = await keyCount();
  assert.equal(before, 3000);
  const aSlots = rangesToSlots(a!.slots).slice(0, 2000);
  const cSlots = rangesToSlots(c!.slots).slice(-700);
  const perSlot = async (addr: string, slots: number[]) =>
    withNode(addr, password, async (r) => {
      const p = r.pipeline();
      for (const s of slots) p.call('CLUSTER', 'COUNTKEYSINSLOT', s);
      return ((await p.exec()) ?? []).map(([, n]) => Number(n));
    });
  const aCounts = await perSlot(a!.address, aSlots);
  const cCounts = await perSlot(c!.address, cSlots);
  const moves: SlotMove[] = [
    ...aSlots.map((slot) => ({ slot, from: ref(a!), to: ref(b!) })),
    ...cSlots.map((slot) => ({ slot, from: ref(c!), to: ref(a!) })),
  ];
  const t0 = Date.now();
  const r = await moveSlots(pool, moves, {
    batch: 100,
    migrateTimeoutMs: 20000,
    masters: [a!.address, b!.address, c!.address],
    concurrency: 8,
  });
  console.log(`moved ${r.slots} slots (${r.keys} keys) on ${BUILD} in ${Date.now() - t0} ms`);
  assert.equal(r.slots, 2700);
  assert.equal(
    r.keys,
    [...aCounts, ...cCounts].reduce((x, y) => x + y, 0),
  );
  const owner = await assertSettled();
  for (const s of aSlots) assert.equal(owner.get(s), b!.address);
  for (const s of cSlots) assert.equal(owner.get(s), a!.address);
  assert.deepEqual(await perSlot(b!.address, aSlots), aCounts, 'every key of the moved slots is on the new owner');
  assert.deepEqual(await perSlot(a!.address, cSlots), cCounts);
  assert.ok(
    (await perSlot(a!.address, aSlots)).every((n) => n === 0),
    'none is left on the old owner',
  );
  assert.equal(await keyCount(), before);
});

test(
  'a move cut off on Valkey 8 (slots open on both sides, replicas too) is finished by moving again',
  { skip },
  async () => {
    const [a, b] = await masters();
    const slots = rangesToSlots(b!.slots).slice(0, 40);
    // Half a move, as a killed run leaves it: both marks set (and replicated to the replicas), a
    // few keys already across.
    await withNode(a!.address, password, async (r) => {
      for (const s of slots) await r.call('CLUSTER', 'SETSLOT', s, 'IMPORTING', b!.id, 'TIMEOUT', 10000);
    });
    await withNode(b!.address, password, async (r) => {
      for (const s of slots) await r.call('CLUSTER', 'SETSLOT', s, 'MIGRATING', a!.id, 'TIMEOUT', 10000);
      let sent = 0;
      for (const s of slots) {
        const keys = (await r.call('CLUSTER', 'GETKEYSINSLOT', s, 2)) as string[];
        if (!keys.length) continue;
        await r.call(
          'MIGRATE',
          '127.0.0.1',
          a!.address.split(':')[1]!,
          '',
          '0',
          '5000',
          'AUTH',
          password,
          'KEYS',
          ...keys,
        );
        if ((sent += keys.length) >= 4) break;
      }
      assert.ok(sent > 0, 'some keys went across before the cut');
    });
    const before = await keyCount();
    await moveSlots(
      pool,
      slots.map((slot) => ({ slot, from: ref(b!), to: ref(a!) })),
      { batch: 100, migrateTimeoutMs: 20000, masters: (await masters()).map((m) => m.address), concurrency: 4 },
    );
    const owner = await assertSettled();
    for (const s of slots) assert.equal(owner.get(s), a!.address);
    assert.equal(await keyCount(), before);
  },
);

/** The process id of the replica of `master`, which the test pauses (SIGSTOP) to hold its acknowledgements. */
async function replicaPid(master: ClusterNodeLine): Promise<number> {
  const replica = parseClusterNodes((await views())[0]!).find((l) => l.masterId === master.id)!;
  const info = await withNode(replica.address, password, (r) => r.info('server'));
  return Number(/process_id:(\d+)/.exec(info)![1]);
}

test(
  "a replica slower than Valkey's own 2 s SETSLOT wait holds the move without failing it; one that never answers stops it with E_SETSLOT_REPLICAS, and moving again finishes",
  { skip },
  async () => {
    const [a, b] = await masters();
    const pid = await replicaPid(b!);
    const before = await keyCount();
    const all = (await masters()).map((m) => m.address);
    // Paused 3 s: every SETSLOT b receives waits for its replica longer than Valkey's default
    // TIMEOUT (2 s), after which b would answer NOREPLICAS and not apply it.
    const first = rangesToSlots(a!.slots).slice(0, 64);
    process.kill(pid, 'SIGSTOP');
    const resume = setTimeout(() => process.kill(pid, 'SIGCONT'), 3000);
    const t0 = Date.now();
    try {
      await moveSlots(
        pool,
        first.map((slot) => ({ slot, from: ref(a!), to: ref(b!) })),
        { batch: 100, migrateTimeoutMs: 20000, masters: all, concurrency: 4 },
      );
    } finally {
      clearTimeout(resume);
      process.kill(pid, 'SIGCONT');
    }
    assert.ok(Date.now() - t0 >= 2500, `the move waited for the paused replica (${Date.now() - t0} ms)`);
    let owner = await assertSettled();
    for (const s of first) assert.equal(owner.get(s), b!.address);

    // Paused past every wait (a short TIMEOUT, each attempt refused): the move stops, naming b.
    const second = rangesToSlots(a!.slots).slice(64, 96);
    const moves = second.map((slot) => ({ slot, from: ref(a!), to: ref(b!) }));
    process.kill(pid, 'SIGSTOP');
    try {
      await assert.rejects(
        moveSlots(pool, moves, {
          batch: 100,
          migrateTimeoutMs: 20000,
          masters: all,
          concurrency: 4,
          setslotTimeoutMs: 300,
        }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_SETSLOT_REPLICAS', err.message);
          assert.match(err.message, new RegExp(`${b!.address} did not apply CLUSTER SETSLOT`));
          return true;
        },
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The replica is back: the same move finishes from where it stopped.
    await moveSlots(pool, moves, { batch: 100, migrateTimeoutMs: 20000, masters: all, concurrency: 4 });
    owner = await assertSettled();
    for (const s of second) assert.equal(owner.get(s), b!.address);
    assert.equal(await keyCount(), before);
  },
);
