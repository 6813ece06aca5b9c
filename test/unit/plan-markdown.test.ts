import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan, PlanReport, StepInstance } from '../../src/engine/plan.js';
import { renderPlanMarkdown } from '../../src/report/plan-markdown.js';
import { predictAfter } from '../../src/report/plan-after.js';
import { ROLLBACK_KINDS } from '../../src/report/rollback.js';
import { cell, code } from '../../src/report/md.js';
import { stepKinds } from '../../src/steps/registry.js';
import type { ClusterBefore } from '../../src/report/plan-before.js';

// A plan as `plan` builds it, written out by hand: three masters with a replica each, no server.
const A = { id: 'a'.repeat(40), address: '10.0.0.1:6379' };
const B = { id: 'b'.repeat(40), address: '10.0.0.2:6379' };
const C = { id: 'c'.repeat(40), address: '10.0.0.3:6379' };
const RA = { id: 'd'.repeat(40), address: '10.0.0.4:6379' };
const RB = { id: 'e'.repeat(40), address: '10.0.0.5:6379' };
const RC = { id: 'f'.repeat(40), address: '10.0.0.6:6379' };

const structure = [
  { ...A, role: 'master' as const, slots: [[0, 5460] as const] },
  { ...B, role: 'master' as const, slots: [[5461, 10922] as const] },
  { ...C, role: 'master' as const, slots: [[10923, 16383] as const] },
  { ...RA, role: 'replica' as const, masterId: A.id, slots: [] },
  { ...RB, role: 'replica' as const, masterId: B.id, slots: [] },
  { ...RC, role: 'replica' as const, masterId: C.id, slots: [] },
];

function planOf(runbook: string, steps: StepInstance[]): Plan {
  return {
    version: 1,
    id: 'p1a2b3c4d5e6',
    toolVersion: '0.1.0',
    runbook,
    runbookHash: '0123456789abcdef0123',
    params: { cluster: 'source' },
    inventoryFile: '/etc/rr/inventory.yaml',
    clusters: { source: { fingerprint: 'f00dfeedf00dfeed', takenAt: '2026-01-01T00:00:00.000Z', structure } },
    createdAt: '2026-01-01T00:00:01.000Z',
    steps,
    omitted: [],
    inventoryDigest: 'ab'.repeat(32),
    seal: { keyId: '1122334455667788', mac: 'cd'.repeat(32) },
  };
}

const before: Record<string, ClusterBefore> = {
  source: {
    cluster: 'source',
    takenAt: '2026-01-01T00:00:00.000Z',
    fingerprint: 'f00dfeedf00dfeed',
    nodes: structure.map((n) => ({
      ...n,
      slots: n.slots.map(([a, b]) => [a, b] as [number, number]),
      reachable: true,
      keys: n.role === 'master' ? 5461 : undefined,
      usedMemory: 1_000_000,
      linkUp: n.role === 'replica' ? true : undefined,
      lagBytes: n.role === 'replica' ? 0 : undefined,
    })),
  },
};

const failoverSteps: StepInstance[] = [
  {
    id: 'preflight',
    kind: 'check-cluster',
    title: 'Check cluster source is healthy',
    args: { cluster: 'source' },
    commands: [{ target: A.address, command: 'CLUSTER NODES; CLUSTER INFO; INFO all' }],
  },
  {
    id: 'failover',
    kind: 'cluster-failover',
    title: `Promote ${RA.address} in place of ${A.address} (CLUSTER FAILOVER)`,
    args: { cluster: 'source', reverse: false, candidate: RA, master: A, mode: 'force' },
    commands: [{ target: RA.address, command: 'CLUSTER FAILOVER FORCE', when: 'unless it is already master' }],
    destructive: 'FORCE: writes the master took and the replica had not received are lost',
  },
];

function report(plan: Plan, fail = false): PlanReport {
  return {
    plan,
    preconditions: {
      preflight: [{ name: 'cluster_state ok', ok: true, reason: 'cluster_state:ok on every reachable node' }],
      failover: [
        { name: 'master unreachable', ok: !fail, reason: fail ? 'a|b answers' : `${A.address} does not answer` },
      ],
    },
  };
}

test('every step is there with its commands, destructive marked, preconditions as PASS/FAIL, pipes escaped', () => {
  const md = renderPlanMarkdown({ report: report(planOf('manual-failover', failoverSteps), true), before });
  assert.match(md, /^# Plan: manual-failover/);
  assert.match(md, /### 1\. `preflight`: Check cluster source is healthy/);
  assert.match(md, /### 2\. `failover`: Promote 10\.0\.0\.4:6379 in place of 10\.0\.0\.1:6379/);
  assert.match(md, /> \*\*DESTRUCTIVE\*\*: FORCE: writes the master took/);
  assert.match(md, /\| 10\.0\.0\.4:6379 \| `CLUSTER FAILOVER FORCE` \| unless it is already master \|/);
  assert.match(md, /\| cluster_state ok \| PASS \| cluster_state:ok on every reachable node \|/);
  // The reason's `|` is escaped: the row keeps its three cells.
  assert.match(md, /\| master unreachable \| \*\*FAIL\*\* \| a\\\|b answers \|/);
  assert.match(md, /\*\*1 of 2 preconditions FAIL\*\* \(`failover`: master unreachable\): a run would be refused/);
  // The seal and the plan id tie the document to the file `run --plan` executes.
  assert.match(md, /\| Plan id \| `p1a2b3c4d5e6` \|/);
  assert.match(md, new RegExp(`HMAC-SHA256 \`${'cd'.repeat(32)}\``));
  assert.match(md, /Rollback: Fail back with a second planned failover/);
  assert.match(md, /A FORCE failover cannot be undone for writes/);
  // Before: masters with their slots, counts and keys; replicas with their link.
  assert.match(md, /\| `10\.0\.0\.2:6379` \| `bbbbbbbb` \| 5461-10922 \| 5462 \| 5,461 \| 1\.0 MB \| 1 \|/);
  assert.match(md, /\| `10\.0\.0\.4:6379` \| `dddddddd` \| `10\.0\.0\.1:6379` \| up \| 0 \|/);
  // Every table row has as many cells as its header.
  for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
    const lines = block.split('\n');
    const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
    for (const l of lines) assert.equal(cells(l), cells(lines[0]!), `${l}\nin\n${block}`);
  }
});

test("after a failover the promoted replica owns the old master's slots; the old master is its replica", () => {
  const p = predictAfter(planOf('manual-failover', failoverSteps), before);
  const c = p.clusters[0]!;
  assert.equal(c.predicted, true);
  const first = c.masters[0]!;
  assert.equal(first.address, RA.address);
  assert.deepEqual(first.ranges, [[0, 5460]]);
  assert.deepEqual(first.replicas, [A.address]);
  assert.match(first.change, /was a replica; takes the slots of 10\.0\.0\.1:6379/);
  assert.equal(first.keys, 5461);
  assert.equal(c.masters[1]!.change, '');
  assert.equal(c.masters[0]!.change, `was a replica; takes the slots of ${A.address}`);
  const md = renderPlanMarkdown({ report: report(planOf('manual-failover', failoverSteps)), before });
  assert.match(md, /## After \(predicted\)[\s\S]*\| `10\.0\.0\.4:6379` \| `dddddddd` \| 0-5460 \| 5461 \| ~5,461 \|/);
  assert.match(md, /\*\*All 2 preconditions PASS\.\*\*/);
});

test('after slot moves each master has the slots the move steps give it, with an estimate of keys and time', () => {
  const moves = [...Array(100).keys()].map((slot) => ({ slot, from: A, to: B }));
  const steps: StepInstance[] = [
    {
      id: 'rebalance',
      kind: 'move-slot-plan',
      title: 'Rebalance source',
      args: { cluster: 'source', mode: 'rebalance', moves, masters: [A.address, B.address, C.address] },
      commands: [{ target: 'source and target of each slot', command: 'SETSLOT ...; MIGRATE ... REPLACE' }],
    },
  ];
  const p = predictAfter(planOf('rebalance', steps), before);
  const [a, b] = p.clusters[0]!.masters.filter((m) => m.address !== C.address).sort((x, y) => x.slots - y.slots);
  assert.equal(a!.address, A.address);
  assert.deepEqual(a!.ranges, [[100, 5460]]);
  assert.equal(a!.slots, 5361);
  assert.deepEqual(b!.ranges, [
    [0, 99],
    [5461, 10922],
  ]);
  assert.equal(b!.keys, 5461 + 100);
  assert.equal(p.effects.rebalance!.slots, 100);
  assert.equal(Math.round(p.effects.rebalance!.keys!), 100);
  const md = renderPlanMarkdown({ report: { plan: planOf('rebalance', steps), preconditions: {} }, before });
  assert.match(md, /\| `10\.0\.0\.2:6379` \| `bbbbbbbb` \| 0-99, 5461-10922 \| 5562 \| ~5,561 \|/);
  assert.match(md, /100 slots, ~100 keys, .* at 10,000 keys\/s \(default: a third of/);
  assert.match(md, /Rollback: Move the slots back .*: 0-99 to 10\.0\.0\.1:6379/);
  assert.match(md, /Total: .* \(estimate/);
});

test('a kind the report does not model leaves its cluster "cannot be predicted", not guessed', () => {
  const steps: StepInstance[] = [
    { id: 'odd', kind: 'some-new-kind', title: 'x', args: { cluster: 'source' }, commands: [] },
  ];
  const md = renderPlanMarkdown({ report: { plan: planOf('x', steps), preconditions: {} } });
  assert.match(md, /Cannot be predicted from the plan: step odd \(kind some-new-kind\) is not modelled/);
  // Without live figures the structure is still shown, the keys as unknown.
  assert.match(md, /\| `10\.0\.0\.1:6379` \| `aaaaaaaa` \| 0-5460 \| 5461 \| unknown \| unknown \| 1 \|/);
});

test('every shipped step kind has rollback advice', () => {
  const missing = [...stepKinds.keys()].filter((k) => !ROLLBACK_KINDS.includes(k));
  assert.deepEqual(missing, []);
});

test('cells and code spans', () => {
  assert.equal(cell('a|b\nc'), 'a\\|b c');
  assert.equal(code('x `y`'), '`` x `y` ``');
  assert.equal(code('plain'), '`plain`');
});
