import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { AckWriter } from '../support/ack-writer.js';
import { cutStream, heal, healAll, hostOfNode, partition, readHosts, type HostsInfo } from '../support/hosts.js';
import { sleep, startCli } from '../support/faults.js';
import { describeMissing, showRun } from '../support/write-load.js';
import { figures, test } from '../support/reliability.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// A drill that really loses writes: on separate hosts, the link between a
// master's host and its replica's host is cut while the drill's canary writes,
// then the master is killed. The replica promoted holds the stream up to the
// cut; every write acknowledged after it is lost. The drill must say how far
// back the loss can reach (keptBefore), and the writer's own record must agree.
// One cluster (3 x 1) on 3 hosts, 15800-15805.
const BASE = 15800;
const home = tempStateDir('rr-dloss-');
let inventory = '';
let password = '';
let net: HostsInfo;

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'dloss',
    '--hosts',
    '3',
    '--base-port',
    String(BASE),
    '--keys',
    '2000',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  password = readFileSync(join(dirname(inventory), 'password'), 'utf8').trim();
  net = readHosts(home, 'dloss');
});
after(async () => {
  if (net) healAll(net);
  await cli(home, ['sandbox', 'down', '--name', 'dloss']);
});

test('drill by kill -9 with the replication link cut first: writes are lost, the drill reports it, and no write acknowledged before its keptBefore is lost', async () => {
  const seed = `${net.hosts[0]!.address}:${net.hosts[0]!.nodes[0]}`;
  const view = parseClusterNodes((await withNode(seed, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const master = view.find((l) => l.flags.includes('master') && l.slots.length)!;
  const replica = view.find((l) => l.masterId === master.id)!;
  const port = (a: string) => Number(a.split(':')[1]);
  const masterHost = hostOfNode(net, port(master.address));
  const replicaHost = hostOfNode(net, port(replica.address));
  assert.notEqual(masterHost.name, replicaHost.name, 'the sandbox puts a master and its replica on different hosts');
  const inShard = (slot: number) => master.slots.some(([a, b]) => a <= slot && slot <= b);

  const writer = new AckWriter({
    host: masterHost.address,
    port: port(master.address),
    password,
    prefix: 'dl',
    rate: 300,
  }).start();
  // The cut is in place somewhere between these two moments (nft takes a few tens of ms).
  let cutAt = 0;
  let cutDone = 0;
  try {
    await sleep(1000);
    const run = startCli(home, [
      'run',
      'failover-drill',
      '--inventory',
      inventory,
      '--param',
      `node=${master.address}`,
      '--param',
      'method=kill',
      '--param',
      'canaryLeadMs=3000',
      '--yes',
      '--allow-destructive',
    ]);
    // The canary is writing and the stop is 3 s away: cut the replica off from the master's
    // host (both ways, those two hosts only; the runner still reaches both).
    await run.waitFor(/canary writes acknowledged by \S+; stopping it in \d+ ms/);
    await sleep(800);
    cutAt = Date.now();
    partition(replicaHost, 'both', masterHost.address);
    cutDone = Date.now();
    // Heal once the replica is promoted: it then no longer reads the old master's link, so the
    // dead master's kernel cannot deliver the stream it still held (an orphaned socket keeps
    // retransmitting its unsent bytes after a kill -9). The drill needs the link back for every
    // node to agree.
    await run.waitFor(/promoted \d+ ms after the stop/);
    heal(replicaHost);
    const r = await run.done;
    await sleep(1000);
    await writer.close();
    assert.equal(r.code, 0, r.out);
    const out = (await showRun(home, runIdOf(r))).steps.find((x) => x.stepId === 'fail-master')!.output;
    assert.equal(out.newMaster, replica.address);
    const missing = await writer.check(port(replica.address), password, {}, replicaHost.address);
    console.log(
      `drill-loss: cut ${out.stoppedAt - cutAt} ms before the stop; drill lost ${out.canary.lost} of ${out.canary.acked} canary writes, keptBefore ${out.stoppedAt - out.canary.keptBefore} ms before the stop; writer lost ${missing.length}`,
    );
    // The loss is real, and both the drill and the writer see it.
    assert.ok(out.canary.lost > 0, 'the drill reports lost canary writes');
    assert.ok(missing.length > 0, 'the writer lost acknowledged writes');
    assert.deepEqual(
      missing.filter((m) => !inShard(m.slot)).map((m) => m.key),
      [],
      "only the killed master's shard loses writes",
    );
    // The bound: keptBefore is near the cut, well before the stop. It should fall inside the
    // cut's install time. When the link was healed at the stop, CI once saw it 161 ms after the
    // cut began (the cut took 85 ms): the replica had received writes from after the cut, late.
    // Healing after the promotion closes that path; the assertion still allows it, and says so,
    // since what the drill promises is checked write by write below. Here it must not claim
    // more than the replica could hold: nothing from the last second before the stop.
    assert.equal(typeof out.canary.keptBefore, 'number', r.out);
    const after = out.canary.keptBefore - cutAt;
    assert.ok(
      out.canary.keptBefore > cutAt - 1000 && out.canary.keptBefore < out.stoppedAt - 1000,
      `keptBefore ${after} ms after the cut began (which took ${cutDone - cutAt} ms), ${out.stoppedAt - out.canary.keptBefore} ms before the stop`,
    );
    if (out.canary.keptBefore > cutDone)
      console.log(`drill-loss: the replica kept writes acknowledged ${after} ms after the cut began (received late)`);
    // Checked write by write (a list or a stream lost its later elements, not its earlier ones).
    const lostEarly = await writer.check(
      port(replica.address),
      password,
      { ackedBefore: out.canary.keptBefore },
      replicaHost.address,
    );
    // The table counts what the drill's promise does not cover: writes lost from before its bound.
    figures('drill kill -9, replication cut before (lost before keptBefore)', {
      ackedLost: lostEarly.length,
      differences: 0,
    });
    assert.deepEqual(
      lostEarly,
      [],
      `acknowledged before the drill's keptBefore and lost: ${describeMissing(lostEarly)}`,
    );
    assert.match(r.out, /only writes acknowledged after that can be lost/);
  } finally {
    heal(replicaHost);
    await writer.close();
  }
});

/** Wait until the replica has acknowledged everything the master sent (offsets equal). */
async function waitInSync(masterAddress: string, replicaAddress: string): Promise<void> {
  const offset = async (address: string, field: string) => {
    const info = (await withNode(address, password, (c) => c.call('INFO', 'replication'))) as string;
    return Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1);
  };
  for (let i = 0; i < 100; i++) {
    const m = await offset(masterAddress, 'master_repl_offset');
    if ((await offset(replicaAddress, 'slave_repl_offset')) >= m) return;
    await sleep(100);
  }
  throw new Error(`${replicaAddress} did not catch up with ${masterAddress} in 10 s`);
}

test("drill with a canary lead shorter than the replica's lag: no bound is given, and the drill warns instead of claiming one", async () => {
  const seed = `${net.hosts[1]!.address}:${net.hosts[1]!.nodes[0]}`;
  const view = parseClusterNodes((await withNode(seed, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  // Another shard than the first case's (its old master came back as a replica).
  const master = view.find(
    (l) =>
      l.flags.includes('master') &&
      l.slots.length &&
      !l.flags.includes('fail') &&
      view.some((x) => x.masterId === l.id && !x.flags.includes('fail')),
  )!;
  const replica = view.find((l) => l.masterId === master.id && !l.flags.includes('fail'))!;
  const port = (a: string) => Number(a.split(':')[1]);
  const masterHost = hostOfNode(net, port(master.address));
  const replicaHost = hostOfNode(net, port(replica.address));
  try {
    // Cut first, then drill: the replica is behind by more than the whole canary. Only the
    // master's replication stream to the replica's host is cut: the cluster bus still passes
    // (nobody flags the master, the majority stays) and the replica's link stays up with its
    // offset stopped. The master's offset must not move before the drill's "in sync" check:
    // its replication PING (every repl-ping-replica-period, 10 s) would put the replica
    // behind before the drill starts, and the drill would rightly refuse. A whole-host cut
    // here failed in CI both ways: behind at the check, and the majority flagged failing.
    await withNode(master.address, password, (c) => c.call('CONFIG', 'SET', 'repl-ping-replica-period', '3600'));
    await waitInSync(master.address, replica.address);
    cutStream(masterHost, port(master.address), replicaHost.address);
    const run = startCli(home, [
      'run',
      'failover-drill',
      '--inventory',
      inventory,
      '--param',
      `node=${master.address}`,
      '--param',
      'method=kill',
      '--param',
      'canaryLeadMs=200',
      '--yes',
      '--allow-destructive',
    ]);
    // Healed only once the replica is promoted: the killed master's kernel still holds the
    // stream it could not send, and would deliver it to a replica that still listens.
    await run.waitFor(/promoted \d+ ms after the stop/);
    heal(masterHost);
    const r = await run.done;
    assert.equal(r.code, 0, r.out);
    const out = (await showRun(home, runIdOf(r))).steps.find((x) => x.stepId === 'fail-master')!.output;
    assert.equal(out.newMaster, replica.address);
    assert.ok(out.canary.lost > 0, `canary writes were lost (${out.canary.lost} of ${out.canary.acked})`);
    // The cut was in place before the canary's first write: none can be kept, so the drill
    // must give no bound and say why.
    assert.equal(out.canary.keptBefore, null, r.out);
    assert.match(
      r.out,
      /WARNING: none of the canary's writes before the stop is kept by \S+: it was more than \d+ ms behind/,
    );
    assert.doesNotMatch(r.out, /only writes acknowledged after that can be lost/);
  } finally {
    heal(masterHost);
  }
});
