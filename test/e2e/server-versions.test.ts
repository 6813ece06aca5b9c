import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempStateDir } from '../support/cli.js';
import { unbalance } from '../support/cluster.js';
import { MatrixSandbox, builds, printCoverage, record, refusal } from '../support/server-matrix.js';

// Every runbook that acts on one cluster, on every server this machine has: the default
// redis-server and each build of REDIS_BUILDS (test/support/server-matrix.ts). For each, a sandbox
// of it runs a manual failover with fail-back, the failover drill, a decommission of a master with
// a replica, a rebalance, and a live sync into a target of the same server. The migrations between servers are
// test/e2e/server-upgrades.test.ts. One sandbox at a time: source 17000-17005, target 17100-17105.
const BASE = 17000;
const box = new MatrixSandbox(tempStateDir('rr-versions-'), 'ver', BASE);

after(async () => {
  await box.down();
  printCoverage('server matrix (one server)');
});

for (const b of ['default', ...builds]) {
  test(`${b}: manual failover with fail-back, the drill, a decommission, a rebalance and migrate-sync into ${b}`, async () => {
    await box.up(b, b);
    const { source: version } = await box.versions();
    const ok = (runbook: string, detail: string) =>
      record({
        runbook,
        source: b,
        target: b,
        result: 'supported',
        detail,
        sourceVersion: version,
        targetVersion: version,
      });

    const mf = await box.run('manual-failover', [`node=127.0.0.1:${BASE}`, 'failback=true']);
    assert.equal(mf.code, 0, mf.out);
    ok('manual-failover', 'failed over and back');

    // The drill stops a master and measures the outage; the old master rejoins as a replica.
    const drill = await box.run('failover-drill', [`node=127.0.0.1:${BASE + 1}`, 'method=shutdown', 'restore=true']);
    assert.equal(drill.code, 0, drill.out);
    assert.match(drill.out, /run \S+ succeeded/);
    ok('failover-drill', 'replica took over, old master rejoined');

    // A master with a replica: demoted by a planned failover, forgotten by every node, stopped.
    const dec = await box.run('decommission-node', [`node=127.0.0.1:${BASE + 2}`]);
    assert.equal(dec.code, 0, dec.out);
    ok('decommission-node', 'master demoted, forgotten, stopped; no key lost');

    // 300 slots moved off their master by hand: rebalance evens them out again.
    await unbalance(BASE, box.password(), 300);
    const reb = await box.run('rebalance');
    assert.equal(reb.code, 0, reb.out);
    assert.match(reb.out, /run \S+ succeeded/);
    ok('rebalance', 'moved 300 slots back, keys with them');

    // The psync engine's exactly-once apply needs Redis 7 scripts on the target: before 7, the
    // plan refuses it and names mode=scan, which is then what runs.
    const before7 = /^redis 6\./.test(version);
    if (before7) {
      const line = refusal(
        await box.plan('migrate-sync'),
        /FAIL target runs Redis 7\+: the target runs 6\.\d+\.\d+: .*use mode=scan/,
      );
      record({
        runbook: 'migrate-sync',
        source: b,
        target: b,
        result: 'refused',
        detail: line,
        sourceVersion: version,
        targetVersion: version,
      });
    }
    const sync = await box.run('migrate-sync', before7 ? ['mode=scan'] : []);
    assert.equal(sync.code, 0, sync.out);
    assert.match(sync.out, /comparison: 3000 keys compared, 0 differ/);
    ok(before7 ? 'migrate-sync mode=scan' : 'migrate-sync', '0 differences in 3000 keys');
  });
}
