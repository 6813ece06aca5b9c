import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, withNode, SHARD_SLOTS } from '../support/cluster.js';
import { describeMissing, figure, showRun, slotsOf, underLoad } from '../support/write-load.js';
import { test } from '../support/reliability.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// Failover and live slot-move runbooks on one cluster (12500-12505) while a
// writer works on it; every acknowledged write is checked afterwards.
const BASE = 12500;
const home = tempStateDir('rr-wl-');
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  await sandboxDown(home);
});

const port = (address: string) => Number(address.split(':')[1]);
const load = (args: string[], prefix: string) =>
  underLoad(home, ['run', ...args, '--inventory', inventory, '--yes'], { port: BASE, password, prefix });

test('manual failover (default mode) under write load: no acknowledged write is lost', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[0]);
  const shard = await slotsOf(BASE, password, master);
  const { r, writer } = await load(['manual-failover', '--param', `node=${master}`], 'mf');
  assert.equal(r.code, 0, r.out);
  assert.equal((await roles(BASE, password, SHARD_SLOTS[0])).masterOfSlot0, replica);
  const missing = await writer.check(BASE, password);
  figure('manual-failover', writer, missing.length, 0);
  assert.deepEqual(missing, [], describeMissing(missing));
  const s = await showRun(home, runIdOf(r));
  const failoverAt = s.audit.find((a) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER')!.at;
  // The shard really was written to on both sides of the failover.
  assert.ok(writer.ackedBetween(0, failoverAt, shard).length > 50);
  assert.ok(writer.ackedBetween(failoverAt, Infinity, shard).length > 50, 'the new master takes writes');
});

/** Drill one shard under load; the drill's report and the writer's record must tell the same story. */
async function drill(slot: number, method: 'shutdown' | 'kill', name: string) {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, slot);
  const shard = await slotsOf(BASE, password, master);
  const { r, writer } = await load(
    ['failover-drill', '--param', `node=${master}`, '--param', `method=${method}`, '--allow-destructive'],
    name,
  );
  assert.equal(r.code, 0, r.out);
  const out = (await showRun(home, runIdOf(r))).steps.find((x) => x.stepId === 'fail-master')!.output;
  assert.equal(out.newMaster, replica, r.out);
  assert.equal(out.measured, true, r.out);
  const missing = await writer.check(BASE, password);
  figure(name, writer, missing.length, 0);
  // Only the failed shard can lose writes, and only those acknowledged after the
  // last canary write the new master kept was sent: the drill's bound.
  assert.deepEqual(
    missing.filter((m) => !shard(m.slot)),
    [],
    describeMissing(missing),
  );
  // The drill's bound (keptBefore) is the last canary write the new master kept. The canary
  // writes for canaryLeadMs (1000) before the stop, so a number lies within about a second
  // before it. A replica further behind than the whole canary keeps none: then the drill
  // must say so and claim no bound (on a loaded 2-core machine a replica can lag that much).
  const said = `drill output:\n${r.out}`;
  if (out.canary.keptBefore === null) {
    assert.match(r.out, /WARNING: none of the canary's writes before the stop is kept/, said);
    assert.doesNotMatch(r.out, /only writes acknowledged after that can be lost/, said);
    console.log(`${name}: the replica kept no canary write: it was more than the whole canary behind`);
  } else {
    assert.equal(typeof out.canary.keptBefore, 'number', said);
    assert.ok(
      out.canary.keptBefore <= out.stoppedAt + 5 && out.stoppedAt - out.canary.keptBefore < 1500,
      `kept until ${out.stoppedAt - out.canary.keptBefore} ms before the stop; ${said}`,
    );
    // Write by write: a list that lost its last elements kept its earlier ones.
    const lostEarly = await writer.check(BASE, password, { ackedBefore: out.canary.keptBefore });
    assert.deepEqual(lostEarly, [], `acknowledged before the drill's bound and lost: ${describeMissing(lostEarly)}`);
  }
  // The writer saw the outage the drill measured: no acknowledgement from the shard inside the window.
  const gapStart = out.stoppedAt;
  const gapEnd = out.canary.firstOkAfterFailAt as number;
  const inWindow = writer.ackedBetween(gapStart + 200, gapEnd - 200, shard);
  assert.deepEqual(
    inWindow.map((w) => w.key),
    [],
    `the writer got acknowledgements from the shard inside the drill's outage window (${out.unavailableMs} ms); drill output:\n${r.out}`,
  );
  return { out, missing: missing.length };
}

test('drill by SHUTDOWN under write load: nothing lost, and the drill says so', async () => {
  const { out, missing } = await drill(SHARD_SLOTS[1]!, 'shutdown', 'drill-shutdown');
  assert.equal(out.writesLost, 0);
  assert.equal(missing, 0, 'SHUTDOWN waits for the replica: the writer lost nothing');
});

test('drill by kill -9 under write load: every lost write is inside the window the drill reports', async () => {
  const { out, missing } = await drill(SHARD_SLOTS[2]!, 'kill', 'drill-kill');
  if (out.writesLost > 0) assert.ok(out.canary.keptBefore < out.stoppedAt);
  console.log(`drill-kill: drill lost ${out.writesLost} of ${out.writesAcked} canary writes, writer lost ${missing}`);
});

test('rebalance under write load: slots move live, no acknowledged write is lost', async () => {
  // Make the cluster uneven first (no writer yet): 1500 slots of one master go to another.
  const view = parseClusterNodes((await withNode(BASE, password, (r) => r.call('CLUSTER', 'NODES'))) as string).filter(
    (l) => l.flags.includes('master') && l.slots.length,
  );
  execFileSync(
    'redis-cli',
    [
      '-p',
      String(BASE),
      '--no-auth-warning',
      '-a',
      password,
      '--cluster',
      'reshard',
      `127.0.0.1:${BASE}`,
      '--cluster-from',
      view[0]!.id,
      '--cluster-to',
      view[1]!.id,
      '--cluster-slots',
      '1500',
      '--cluster-yes',
    ],
    { stdio: 'ignore', timeout: 180_000 },
  );
  const { r, writer } = await load(['rebalance'], 'rb');
  assert.equal(r.code, 0, r.out);
  const counts = parseClusterNodes((await withNode(BASE, password, (c) => c.call('CLUSTER', 'NODES'))) as string)
    .filter((l) => l.flags.includes('master') && l.slots.length)
    .map((l) => l.slots.reduce((n, [a, b]) => n + b - a + 1, 0));
  assert.ok(
    counts.every((n) => Math.abs(n - 16384 / 3) <= 1),
    `slots were moved while written to: ${counts.join(', ')}`,
  );
  const missing = await writer.check(BASE, password);
  figure('rebalance', writer, missing.length, 0);
  assert.deepEqual(missing, [], describeMissing(missing));
});

test('decommission of a master with a replica under write load (demoted by planned failover): no acknowledged write is lost', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[0]);
  const { r, writer } = await load(['decommission-node', '--param', `node=${master}`, '--allow-destructive'], 'dm');
  assert.equal(r.code, 0, r.out);
  assert.equal(
    (await roles(port(replica), password, SHARD_SLOTS[0]).catch(() => ({ masterOfSlot0: 'no view' }))).masterOfSlot0 ===
      replica ||
      parseClusterNodes((await withNode(port(replica), password, (c) => c.call('CLUSTER', 'NODES'))) as string)
        .find((l) => l.flags.includes('myself'))!
        .flags.includes('master'),
    true,
    'its replica serves the slots',
  );
  const missing = await writer.check(port(replica), password);
  figure('decommission-demote', writer, missing.length, 0);
  assert.deepEqual(missing, [], describeMissing(missing));
});

test('decommission of a master with no replica (moveSlots=true) under write load: its slots move live, no acknowledged write is lost', async () => {
  const live = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
  let entry = 0;
  for (const p of live)
    if (
      await withNode(p, password, (r) => r.ping()).then(
        () => true,
        () => false,
      )
    ) {
      entry = p;
      break;
    }
  const view = parseClusterNodes((await withNode(entry, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const lone = view.find(
    (m) => m.flags.includes('master') && m.slots.length && !view.some((x) => x.masterId === m.id),
  )!;
  assert.ok(lone, 'the previous test left a master without a replica');
  const other = view.find((x) => x.address !== lone.address && !x.flags.includes('fail'))!;
  const { r, writer } = await underLoad(
    home,
    [
      'run',
      'decommission-node',
      '--param',
      `node=${lone.address}`,
      '--param',
      'moveSlots=true',
      '--inventory',
      inventory,
      '--yes',
      '--allow-destructive',
    ],
    { port: port(other.address), password, prefix: 'dn' },
  );
  assert.equal(r.code, 0, r.out);
  const missing = await writer.check(port(other.address), password);
  figure('decommission-move-slots', writer, missing.length, 0);
  assert.deepEqual(missing, [], describeMissing(missing));
});
