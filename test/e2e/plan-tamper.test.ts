import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, structure, SHARD_SLOTS } from '../support/cluster.js';
import { sealPlan } from '../../src/engine/plan-seal.js';
import type { Plan } from '../../src/engine/plan.js';

// A saved plan is executed only if it is exactly what `plan` made, from this inventory, in this state dir.

const BASE = 9000;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
});
after(async () => {
  await sandboxDown(home);
});

interface PlanJson {
  id: string;
  createdAt: string;
  params: Record<string, string>;
  steps: Array<{ id: string; args: Record<string, unknown>; destructive?: string }>;
}

async function savePlan(name: string, runbook: string, params: string[]): Promise<{ file: string; plan: PlanJson }> {
  const file = join(home, `${name}.json`);
  const r = await cli(home, [
    'plan',
    runbook,
    '--inventory',
    inventory,
    ...params.flatMap((p) => ['--param', p]),
    '--out',
    file,
  ]);
  assert.equal(r.code, 0, r.out);
  return { file, plan: JSON.parse(readFileSync(file, 'utf8')) as PlanJson };
}

function edit(file: string, plan: PlanJson, change: (p: PlanJson) => void): string {
  const copy = JSON.parse(JSON.stringify(plan)) as PlanJson;
  change(copy);
  const out = file.replace(/\.json$/, '-edited.json');
  writeFileSync(out, JSON.stringify(copy, null, 2));
  return out;
}

/** Nothing was recorded in this state dir: no run, so no journaled command. */
async function noRuns(stateDir = home): Promise<void> {
  const runs = await cli(stateDir, ['runs', '--json']);
  assert.deepEqual(JSON.parse(runs.stdout), [], 'no run was recorded');
}

test('a decommission plan with its destructive flags deleted is refused (E_PLAN_TAMPERED, exit 3): no CLUSTER FORGET, nothing journaled', async () => {
  const { replicaOfIt } = await roles(BASE, password);
  const { file, plan } = await savePlan('decom', 'decommission-node', [`node=${replicaOfIt}`]);
  assert.ok(plan.steps.find((s) => s.id === 'forget')?.destructive, 'the saved plan marks forget destructive');
  const edited = edit(file, plan, (p) => {
    for (const s of p.steps) delete s.destructive;
  });
  const before = await structure(PORTS, password);
  const r = await cli(home, ['run', '--plan', edited, '--yes']);
  assert.equal(r.code, 3, r.out);
  assert.match(
    r.stderr,
    /E_PLAN_TAMPERED: plan \S+ is not the plan `redis-runbook plan` made: step forget: destructive is \(absent\) in the saved plan, "removes /,
  );
  assert.match(r.stderr, /step shutdown: destructive/);
  assert.equal(await structure(PORTS, password), before, 'the cluster is unchanged: the node was not forgotten');
  await noRuns();
});

test("a manual-failover plan with one step's args edited is refused naming the step and field; no CLUSTER FAILOVER", async () => {
  const { masterOfSlot0, replicaOfIt } = await roles(BASE, password);
  const { file, plan } = await savePlan('mf-args', 'manual-failover', [`node=${masterOfSlot0}`]);
  const edited = edit(file, plan, (p) => {
    p.steps.find((s) => s.id === 'replica-in-sync')!.args.mode = 'force';
  });
  const before = await structure(PORTS, password);
  const r = await cli(home, ['run', '--plan', edited, '--yes', '--allow-destructive']);
  assert.equal(r.code, 3, r.out);
  assert.match(
    r.stderr,
    /E_PLAN_TAMPERED: .*step replica-in-sync: args\.mode is "force" in the saved plan, "default" when resolved now/,
  );
  assert.equal(await structure(PORTS, password), before);
  const after = await roles(BASE, password);
  assert.equal(after.masterOfSlot0, masterOfSlot0, 'roles unchanged');
  assert.equal(after.replicaOfIt, replicaOfIt);
  await noRuns();
});

test('a plan whose signed fields outside the steps were changed (its time), or whose signature was removed, is refused', async () => {
  const { masterOfSlot0 } = await roles(BASE, password);
  const { file, plan } = await savePlan('mf-sig', 'manual-failover', [`node=${masterOfSlot0}`]);
  // Same steps either way; only the signature can tell.
  const edited = edit(file, plan, (p) => {
    p.createdAt = new Date(Date.parse(p.createdAt) + 1000).toISOString();
  });
  const before = await structure(PORTS, password);
  const r = await cli(home, ['run', '--plan', edited, '--yes']);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, /E_PLAN_TAMPERED: .*its signature does not match its content/);
  const unsigned = edit(file, plan, (p) => {
    delete (p as { seal?: unknown }).seal;
  });
  const r2 = await cli(home, ['run', '--plan', unsigned, '--yes']);
  assert.equal(r2.code, 3, r2.out);
  assert.match(r2.stderr, /E_PLAN_TAMPERED: .*it has no signature/);
  assert.equal(await structure(PORTS, password), before);
  await noRuns();
});

test('a plan another version of the tool made (signed here) is refused by name (E_PLAN_TOOL_VERSION, exit 3); nothing runs', async () => {
  const { masterOfSlot0 } = await roles(BASE, password);
  const { file, plan } = await savePlan('mf-version', 'manual-failover', [`node=${masterOfSlot0}`]);
  const version = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string })
    .version;
  assert.equal(
    (plan as PlanJson & { toolVersion?: string }).toolVersion,
    version,
    'the saved plan says which version made it',
  );
  // As if an older redis-runbook had made and signed it with this state dir's key.
  const older = sealPlan({ ...(plan as unknown as Plan), toolVersion: '0.0.1' }, home, inventory);
  const olderFile = file.replace(/\.json$/, '-0.0.1.json');
  writeFileSync(olderFile, JSON.stringify(older, null, 2));
  const before = await structure(PORTS, password);
  const r = await cli(home, ['run', '--plan', olderFile, '--yes']);
  assert.equal(r.code, 3, r.out);
  assert.match(
    r.stderr,
    new RegExp(
      `E_PLAN_TOOL_VERSION: plan \\S+ was made by redis-runbook 0\\.0\\.1, and this is redis-runbook ${version.replace(/\./g, '\\.')}`,
    ),
  );
  assert.equal(await structure(PORTS, password), before);
  await noRuns();
  const v = await cli(home, ['--version']);
  assert.equal(v.code, 0, v.out);
  assert.equal(v.stdout.trim(), version);
});

test('a plan is refused when the inventory file changed after planning (E_PLAN_INVENTORY_CHANGED)', async () => {
  const { masterOfSlot0 } = await roles(BASE, password);
  const { file } = await savePlan('mf-inv', 'manual-failover', [`node=${masterOfSlot0}`]);
  const original = readFileSync(inventory, 'utf8');
  const before = await structure(PORTS, password);
  try {
    writeFileSync(inventory, `${original}# edited after the plan was reviewed\n`);
    const r = await cli(home, ['run', '--plan', file, '--yes']);
    assert.equal(r.code, 3, r.out);
    assert.match(
      r.stderr,
      /E_PLAN_INVENTORY_CHANGED: the inventory \S+ is not the one plan \S+ was made from \(its SHA-256 was [0-9a-f]{12}\.\.\., is now [0-9a-f]{12}\.\.\.\)/,
    );
  } finally {
    writeFileSync(inventory, original);
  }
  assert.equal(await structure(PORTS, password), before);
  await noRuns();
});

test('a plan is refused with another --state-dir (E_PLAN_FOREIGN): it was signed with the key of the state dir that made it', async () => {
  const { masterOfSlot0 } = await roles(BASE, password);
  const { file } = await savePlan('mf-foreign', 'manual-failover', [`node=${masterOfSlot0}`]);
  const other = tempStateDir('rr-other-');
  const before = await structure(PORTS, password);
  // Once with no key there at all, once with that state dir's own key.
  for (let i = 0; i < 2; i++) {
    const r = await cli(home, ['--state-dir', other, 'run', '--plan', file, '--yes']);
    assert.equal(r.code, 3, r.out);
    assert.match(r.stderr, /E_PLAN_FOREIGN: plan \S+ was not made with this state dir/);
    if (i === 0)
      assert.equal(
        (
          await cli(home, [
            '--state-dir',
            other,
            'plan',
            'manual-failover',
            '--inventory',
            inventory,
            '--param',
            `node=${masterOfSlot0}`,
            '--out',
            join(other, 'own.json'),
          ])
        ).code,
        0,
      );
  }
  assert.equal(await structure(PORTS, password), before);
  await noRuns(other);
});

test('the plan key is 0600 in the state dir and appears nowhere in the plan or the output', async () => {
  const keyFile = join(home, 'plan.key');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const key = readFileSync(keyFile, 'utf8').trim();
  assert.match(key, /^[0-9a-f]{64}$/);
  const { file } = await savePlan('mf-key', 'manual-failover', [`node=${(await roles(BASE, password)).masterOfSlot0}`]);
  assert.ok(!readFileSync(file, 'utf8').includes(key));
  const r = await cli(home, [
    'plan',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${(await roles(BASE, password)).masterOfSlot0}`,
    '--json',
  ]);
  assert.ok(!r.out.includes(key));
});

test('an untouched saved plan still runs, exactly, once', async () => {
  const slot = SHARD_SLOTS[1]!;
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, slot);
  const { file } = await savePlan('mf-ok', 'manual-failover', [`node=${master}`]);
  const r = await cli(home, ['run', '--plan', file, '--yes']);
  assert.equal(r.code, 0, r.out);
  const after = await roles(BASE, password, slot);
  assert.equal(after.masterOfSlot0, replica);
  assert.equal(after.replicaOfIt, master);
  const again = await cli(home, ['run', '--plan', file, '--yes']);
  assert.equal(again.code, 3, again.out);
  assert.match(again.stderr, new RegExp(`E_PLAN_USED: plan \\S+ was already executed by run ${runIdOf(r)}`));
});
