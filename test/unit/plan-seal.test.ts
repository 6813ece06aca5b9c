import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan, type Plan } from '../../src/engine/plan.js';
import { loadRunbook, resolveParams } from '../../src/engine/runbook.js';
import { fingerprintOf, type Topology, type TopologyNode } from '../../src/redis/topology.js';
import { assertSameToolVersion, canonical, planDifferences, sealPlan, sealStatus } from '../../src/engine/plan-seal.js';
import { stepKinds } from '../../src/steps/registry.js';

function node(id: string, port: number, slots: Array<[number, number]>): TopologyNode {
  return {
    id,
    address: `127.0.0.1:${port}`,
    role: 'master',
    masterId: undefined,
    flags: ['master'],
    slots,
    configEpoch: 1,
    reachable: true,
    self: {
      version: '7.0.15',
      role: 'master',
      replOffset: 100,
      masterLinkUp: undefined,
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
  };
}
function topology(name: string, base: number, takenAt: string): Topology {
  const nodes = [node(`${name}1`, base, [[0, 8191]]), node(`${name}2`, base + 1, [[8192, 16383]])];
  return { cluster: name, takenAt, seed: '', nodeTimeoutMs: 2000, nodes, fingerprint: fingerprintOf(nodes) };
}
const rb = loadRunbook('migrate-copy-files', stepKinds);
const params = resolveParams(rb, []);
const planAt = (hour: string): Plan =>
  buildPlan(
    rb,
    params,
    'inv.yaml',
    {
      source: topology('source', 7000, `2026-01-01T${hour}:00:00.000Z`),
      target: topology('target', 7100, `2026-01-01T${hour}:00:00.400Z`),
    },
    new Date(`2026-01-01T${hour}:00:01.000Z`),
  );

test("re-resolving with the saved plan's own times gives exactly its steps; another plan time changes the file names", () => {
  const saved = planAt('10');
  assert.deepEqual(planDifferences(saved, planAt('10')), []);
  const later = planDifferences(saved, planAt('11'));
  assert.ok(
    later.some((d) =>
      /^step persist: args\.masters\[0\]\.snapshot is \.\.\."[^"]*redis-runbook-20260101-100000" in the saved plan, \.\.\."[^"]*redis-runbook-20260101-110000" when resolved now$/.test(
        d,
      ),
    ),
    later.join('\n'),
  );
});

test('plan differences name the step and the field', () => {
  const saved = JSON.parse(JSON.stringify(planAt('10'))) as Plan;
  const fresh = planAt('10');
  const stop = saved.steps.find((s) => s.id === 'stop-target')!;
  assert.ok(stop.destructive);
  delete stop.destructive;
  (saved.steps.find((s) => s.id === 'compare')!.args as Record<string, unknown>).sample = 0.001;
  const d = planDifferences(saved, fresh);
  assert.equal(d.length, 2, d.join('\n'));
  assert.match(
    d[0]!,
    /^step stop-target: destructive is \(absent\) in the saved plan, "stops 127\.0\.0\.1:7100.* when resolved now$/,
  );
  assert.match(d[1]!, /^step compare: args\.sample is 0\.001 in the saved plan, 10 when resolved now$/);
  const dropped = { ...fresh, steps: fresh.steps.filter((s) => s.id !== 'backup-target') };
  assert.match(
    planDifferences(dropped, fresh)[0]!,
    /^step 6 is copy in the saved plan, backup-target when resolved now$/,
  );
});

test('canonical JSON does not depend on key order; the seal is keyed by the state dir and covers every field', () => {
  assert.equal(canonical({ b: 1, a: [{ d: 2, c: undefined, e: null }] }), canonical({ a: [{ e: null, d: 2 }], b: 1 }));
  const dir = mkdtempSync(join(tmpdir(), 'rr-seal-'));
  const inv = join(dir, 'inv.yaml');
  writeFileSync(inv, 'clusters: {}\n');
  const sealed = sealPlan(planAt('10'), dir, inv);
  assert.equal(statSync(join(dir, 'plan.key')).mode & 0o777, 0o600);
  assert.equal(sealStatus(sealed, dir), 'ok');
  assert.equal(sealStatus(JSON.parse(JSON.stringify(sealed)) as Plan, dir), 'ok', 'a JSON round trip keeps it valid');
  assert.equal(sealStatus({ ...sealed, params: { ...sealed.params, sample: '100' } }, dir), 'altered');
  assert.equal(sealStatus({ ...sealed, inventoryDigest: '0'.repeat(64) }, dir), 'altered');
  const { seal: _s, ...unsigned } = sealed;
  assert.equal(sealStatus(unsigned as Plan, dir), 'unsigned');
  const other = mkdtempSync(join(tmpdir(), 'rr-seal-'));
  assert.equal(sealStatus(sealed, other), 'foreign', 'no key there');
  sealPlan(planAt('10'), other, inv);
  assert.equal(sealStatus(sealed, other), 'foreign', 'another key there');
});

test("a plan carries the version of the tool that made it, under its seal; another version's plan is refused by name", () => {
  const version = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string })
    .version;
  const plan = planAt('10');
  assert.equal(plan.toolVersion, version);
  assert.doesNotThrow(() => assertSameToolVersion(plan));
  const dir = mkdtempSync(join(tmpdir(), 'rr-seal-'));
  const inv = join(dir, 'inv.yaml');
  writeFileSync(inv, 'clusters: {}\n');
  const sealed = sealPlan(plan, dir, inv);
  assert.equal(sealStatus({ ...sealed, toolVersion: '0.0.1' }, dir), 'altered', 'the version is signed');
  const older = sealPlan({ ...plan, toolVersion: '0.0.1' }, dir, inv);
  assert.equal(sealStatus(older, dir), 'ok');
  assert.throws(
    () => assertSameToolVersion(older),
    (e: Error & { code?: string }) =>
      e.code === 'E_PLAN_TOOL_VERSION' &&
      e.message.includes('made by redis-runbook 0.0.1') &&
      e.message.includes(`this is redis-runbook ${version}`),
  );
  const { toolVersion: _v, ...unversioned } = plan;
  assert.throws(() => assertSameToolVersion(unversioned as Plan), /did not record its version/);
});
