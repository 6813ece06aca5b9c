import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPlan } from '../../src/engine/plan.js';
import { loadRunbook, resolveParams } from '../../src/engine/runbook.js';
import { compilePlan, position } from '../../src/engine/machine.js';
import { fingerprintOf, describeDrift, type Topology, type TopologyNode } from '../../src/redis/topology.js';
import { checkCluster, strandedSlots } from '../../src/redis/check.js';
import { RunbookError } from '../../src/errors.js';
import { stepKinds } from '../../src/steps/registry.js';

function node(
  id: string,
  port: number,
  role: 'master' | 'replica',
  opts: Partial<TopologyNode> & { offset?: number } = {},
): TopologyNode {
  return {
    id,
    address: `127.0.0.1:${port}`,
    role,
    masterId: opts.masterId,
    flags: [role === 'master' ? 'master' : 'slave'],
    slots: opts.slots ?? [],
    configEpoch: 1,
    reachable: true,
    self: {
      version: '7.0.15',
      role,
      replOffset: opts.offset ?? 100,
      masterLinkUp: role === 'replica' ? true : undefined,
      replicaOffsets: {},
      keys: 10,
      usedMemory: 1,
      maxmemory: 0,
      clusterState: 'ok',
      persistence: {
        dir: `/d/${port}`,
        dbfilename: 'dump.rdb',
        appendonly: false,
        appenddirname: 'appendonlydir',
        appendfilename: 'appendonly.aof',
        clusterConfigFile: 'nodes.conf',
      },
      view: [],
    },
    ...opts,
  };
}

function topology(): Topology {
  const nodes = [
    node('m1', 7000, 'master', { slots: [[0, 5460]] }),
    node('m2', 7001, 'master', { slots: [[5461, 10922]] }),
    node('m3', 7002, 'master', { slots: [[10923, 16383]] }),
    node('r1a', 7003, 'replica', { masterId: 'm1', offset: 90 }),
    node('r1b', 7006, 'replica', { masterId: 'm1', offset: 100 }),
    node('r2', 7004, 'replica', { masterId: 'm2' }),
  ];
  return {
    cluster: 'source',
    takenAt: 'now',
    seed: '127.0.0.1:7000',
    nodeTimeoutMs: 2000,
    nodes,
    fingerprint: fingerprintOf(nodes),
  };
}

const rb = loadRunbook('manual-failover', stepKinds);

test('a master resolves to its best replica (highest offset); every step agrees on the pair', () => {
  const plan = buildPlan(rb, resolveParams(rb, ['node=127.0.0.1:7000']), '/inv.yaml', { source: topology() });
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    ['preflight', 'replica-in-sync', 'failover', 'agreement', 'verify'],
  );
  const f = plan.steps.find((s) => s.id === 'failover')!;
  assert.deepEqual((f.args as { candidate: { address: string } }).candidate.address, '127.0.0.1:7006');
  assert.ok(f.commands.some((c) => c.target === '127.0.0.1:7006' && c.command === 'CLUSTER FAILOVER'));
  assert.equal(f.destructive, undefined);
  assert.equal(plan.clusters.source!.fingerprint, topology().fingerprint);
  assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan, 'a plan is plain data');
});

test('a replica is promoted itself; force and takeover are marked destructive', () => {
  const plan = buildPlan(rb, resolveParams(rb, ['node=127.0.0.1:7004', 'mode=force']), '/inv.yaml', {
    source: topology(),
  });
  const f = plan.steps.find((s) => s.id === 'failover')!;
  assert.equal((f.args as { master: { address: string } }).master.address, '127.0.0.1:7001');
  assert.match(f.destructive ?? '', /FORCE/);
  assert.ok(f.commands.some((c) => c.command === 'CLUSTER FAILOVER FORCE'));
  const t = buildPlan(rb, resolveParams(rb, ['node=127.0.0.1:7004', 'mode=takeover']), '/inv.yaml', {
    source: topology(),
  });
  assert.match(t.steps.find((s) => s.id === 'failover')!.destructive ?? '', /TAKEOVER/);
});

test('bad parameters are usage errors that say what to pass', () => {
  const err = (args: string[], re: RegExp, kind = 'usage') => {
    assert.throws(
      () => buildPlan(rb, resolveParams(rb, args), '/inv.yaml', { source: topology() }),
      (e: unknown) => e instanceof RunbookError && e.kind === kind && re.test(e.message),
    );
  };
  err([], /needs --param node/);
  err(['node=127.0.0.1:9999'], /not a node of cluster source/);
  err(['node=nonsense'], /not HOST:PORT/);
  err(['node=127.0.0.1:7000', 'mode=yolo'], /mode=yolo is not allowed/);
  err(['node=127.0.0.1:7000', 'colour=red'], /no parameter `colour`/);
  err(['node=127.0.0.1:7000', 'cluster=nope'], /cluster `nope` is not in the inventory/);
  err(['node=127.0.0.1:7002'], /has no replica/, 'precondition');
});

test('the plan compiles to a machine with one state per step and restorable positions', () => {
  const plan = buildPlan(rb, resolveParams(rb, ['node=127.0.0.1:7000']), '/inv.yaml', { source: topology() });
  const m = compilePlan(plan);
  assert.deepEqual(Object.keys(m.config.states!), [
    'preflight',
    'replica-in-sync',
    'failover',
    'agreement',
    'verify',
    'succeeded',
    'aborted',
  ]);
  assert.deepEqual(position({ failover: 'run' }), { stepId: 'failover', phase: 'run' });
  assert.deepEqual(position('succeeded'), { final: 'succeeded' });
});

test('drift is described in words', () => {
  const a = topology();
  const b = topology();
  b.nodes[0] = { ...b.nodes[0]!, role: 'replica', masterId: 'r1b', slots: [] };
  b.nodes[4] = { ...b.nodes[4]!, role: 'master', masterId: undefined, slots: [[0, 5460]] };
  b.fingerprint = fingerprintOf(b.nodes);
  assert.notEqual(a.fingerprint, b.fingerprint);
  const d = describeDrift(a, b);
  assert.ok(d.includes('127.0.0.1:7000 was master, is now replica'), d.join('; '));
});

test('check: uncovered slots and a failed node are problems', () => {
  const t = topology();
  assert.equal(checkCluster(t).ok, true);
  t.nodes[2] = { ...t.nodes[2]!, slots: [[10923, 16000]] };
  t.nodes[5] = { ...t.nodes[5]!, reachable: false, self: undefined, error: 'ECONNREFUSED' };
  const c = checkCluster(t);
  assert.equal(c.ok, false);
  assert.deepEqual(c.uncovered, [[16001, 16383]]);
  assert.ok(c.unreachable.some((u) => u.startsWith('127.0.0.1:7004')));
});

test('check: slots of a failed master with no live replica are stranded, and the problem names the remedy', () => {
  const t = topology();
  // m3 (no replica) fails: stranded. m2 fails while its replica answers: not stranded, Redis promotes it.
  t.nodes[2] = { ...t.nodes[2]!, flags: ['master', 'fail'], reachable: false, self: undefined };
  t.nodes[1] = { ...t.nodes[1]!, flags: ['master', 'fail'], reachable: false, self: undefined };
  assert.deepEqual(
    strandedSlots(t).map((s) => [s.owner, s.ranges]),
    [['127.0.0.1:7002', [[10923, 16383]]]],
  );
  const c = checkCluster(t);
  assert.deepEqual(
    c.stranded.map((x) => x.owner),
    ['127.0.0.1:7002'],
  );
  assert.ok(
    c.problems.some((p) => /slots 10923-16383 are owned by 127\.0\.0\.1:7002.*CLUSTER SETSLOT/.test(p)),
    c.problems.join('\n'),
  );
  // Its replica failed too: m2's slots are stranded as well.
  t.nodes[5] = { ...t.nodes[5]!, flags: ['slave', 'fail'], reachable: false, self: undefined };
  assert.equal(strandedSlots(t).length, 2);
});

test('failback=true appends the reversed steps: the original master is promoted back', () => {
  const plan = buildPlan(rb, resolveParams(rb, ['node=127.0.0.1:7000', 'failback=true']), '/inv.yaml', {
    source: topology(),
  });
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    [
      'preflight',
      'replica-in-sync',
      'failover',
      'agreement',
      'verify',
      'failback-sync',
      'failback',
      'failback-agreement',
      'failback-verify',
    ],
  );
  const back = plan.steps.find((s) => s.id === 'failback')!.args as {
    candidate: { address: string };
    master: { address: string };
    reverse: boolean;
  };
  assert.equal(back.candidate.address, '127.0.0.1:7000');
  assert.equal(back.master.address, '127.0.0.1:7006');
  assert.equal(back.reverse, true);
  assert.throws(
    () =>
      buildPlan(rb, resolveParams(rb, ['node=127.0.0.1:7000', 'failback=true', 'mode=force']), '/inv.yaml', {
        source: topology(),
      }),
    /failback=true needs mode=default/,
  );
});

test('failover-drill: a master with no replica is refused; a replica is refused with its master named; restore=false swaps the verify step', () => {
  const drill = loadRunbook('failover-drill', stepKinds);
  const t = topology();
  const plan = buildPlan(drill, resolveParams(drill, ['node=127.0.0.1:7000']), '/inv.yaml', { source: t });
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    ['preflight', 'fail-master', 'restore', 'verify'],
  );
  const a = plan.steps[1]!.args as { replicas: Array<{ address: string }>; giveUpMs: number; method: string };
  assert.deepEqual(a.replicas.map((r) => r.address).sort(), ['127.0.0.1:7003', '127.0.0.1:7006']);
  assert.equal(a.method, 'shutdown');
  assert.match(plan.steps[1]!.title, /cluster-node-timeout 2000 ms/);
  assert.ok(plan.steps[1]!.destructive);
  assert.deepEqual(
    buildPlan(drill, resolveParams(drill, ['node=127.0.0.1:7000', 'restore=false']), '/inv.yaml', {
      source: t,
    }).steps.map((s) => s.id),
    ['preflight', 'fail-master', 'verify-left-down'],
  );
  assert.throws(
    () => buildPlan(drill, resolveParams(drill, ['node=127.0.0.1:7002']), '/inv.yaml', { source: t }),
    (e: RunbookError) => e.code === 'E_NO_REPLICA',
  );
  assert.throws(
    () => buildPlan(drill, resolveParams(drill, ['node=127.0.0.1:7003']), '/inv.yaml', { source: t }),
    (e: RunbookError) => /is a replica/.test(e.message) && /node=127\.0\.0\.1:7000/.test(e.remedy ?? ''),
  );
});

test("decommission-node: the steps depend on the node's shape (ifNode), a replica-less master needs moveSlots=true", () => {
  const dec = loadRunbook('decommission-node', stepKinds);
  const t = topology();
  const ids = (params: string[]) =>
    buildPlan(dec, resolveParams(dec, params), '/inv.yaml', { source: t }).steps.map((s) => s.id);
  assert.deepEqual(ids(['node=127.0.0.1:7003']), ['preflight', 'forget', 'shutdown', 'verify']);
  assert.deepEqual(ids(['node=127.0.0.1:7000']), [
    'preflight',
    'demote-sync',
    'demote',
    'demote-agreement',
    'forget',
    'shutdown',
    'verify',
  ]);
  assert.deepEqual(ids(['node=127.0.0.1:7003', 'deleteFiles=true']), [
    'preflight',
    'forget',
    'shutdown',
    'delete-files',
    'verify',
  ]);
  assert.throws(
    () => ids(['node=127.0.0.1:7002']),
    (e: RunbookError) => e.code === 'E_NO_REPLICA' && /moveSlots=true/.test(e.remedy ?? ''),
  );
  const moved = buildPlan(dec, resolveParams(dec, ['node=127.0.0.1:7002', 'moveSlots=true']), '/inv.yaml', {
    source: t,
  });
  assert.deepEqual(
    moved.steps.map((s) => s.id),
    ['preflight', 'move-slots', 'forget', 'shutdown', 'verify'],
  );
  const files = buildPlan(dec, resolveParams(dec, ['node=127.0.0.1:7003', 'deleteFiles=true']), '/inv.yaml', {
    source: t,
  }).steps.find((s) => s.id === 'delete-files')!;
  // appendonly no: the AOF directory is not this node's to delete.
  assert.deepEqual((files.args as { paths: string[] }).paths, ['/d/7003/dump.rdb', '/d/7003/nodes.conf']);
  // Two nodes of one host sharing a data directory: deleting one's files would delete the other's.
  const shared = topology();
  shared.nodes.find((n) => n.address === '127.0.0.1:7004')!.self!.persistence.dir = '/d/7003/';
  assert.throws(
    () =>
      buildPlan(dec, resolveParams(dec, ['node=127.0.0.1:7003', 'deleteFiles=true']), '/inv.yaml', { source: shared }),
    (e: RunbookError) => e.code === 'E_UNSAFE_PATH' && /127\.0\.0\.1:7004/.test(e.message),
  );
});
