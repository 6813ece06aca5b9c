import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, structure } from '../support/cluster.js';

// A cluster is what its nodes are: two inventory names for the same nodes are one cluster.

const BASE = 9040;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const home = tempStateDir();
let inventory = '';
let twoNames = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE));
  // The sandbox's one cluster under two names, `a` and `b` (one with fewer seeds, as a second copy of an inventory might have).
  const doc = parse(readFileSync(inventory, 'utf8')) as {
    clusters: Record<string, { seeds: string[]; auth: { password: { file: string } } }>;
  };
  const source = doc.clusters.source!;
  // Outside the sandbox's directory (`sandbox down` deletes only what it made): the password file by its absolute path.
  source.auth.password.file = join(dirname(inventory), source.auth.password.file);
  doc.clusters = { a: source, b: { ...source, seeds: [source.seeds[1]!] } };
  twoNames = join(home, 'two-names.yaml');
  writeFileSync(twoNames, stringify(doc));
});
after(async () => {
  await sandboxDown(home);
});

async function noRuns(): Promise<void> {
  assert.deepEqual(JSON.parse((await cli(home, ['runs', '--json'])).stdout), [], 'no run was recorded');
}

const SHARED = new RegExp(
  `share 6 node\\(s\\): ${PORTS.map(() => '127\\.0\\.0\\.1:\\d+ \\([0-9a-f]{8}\\)').join(', ')}`,
);

test('migrate-sync with source and target naming the same nodes is refused at plan and run time (E_SAME_CLUSTER); nothing sent', async () => {
  const before = await structure(PORTS, password);
  const plan = await cli(home, [
    'plan',
    'migrate-sync',
    '--inventory',
    twoNames,
    '--param',
    'source=a',
    '--param',
    'target=b',
  ]);
  assert.equal(plan.code, 3, plan.out);
  assert.match(plan.stderr, /E_SAME_CLUSTER: source and target are the same cluster \(`a` and `b` in the inventory\)/);
  assert.match(plan.stderr, SHARED);
  const run = await cli(home, [
    'run',
    'migrate-sync',
    '--inventory',
    twoNames,
    '--param',
    'source=a',
    '--param',
    'target=b',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(run.code, 3, run.out);
  assert.match(run.stderr, /E_SAME_CLUSTER/);
  assert.equal(await structure(PORTS, password), before);
  await noRuns();
});

test('migrate-copy-files with source and target naming the same nodes is refused (E_SAME_CLUSTER); one name given twice too', async () => {
  const before = await structure(PORTS, password);
  const r = await cli(home, [
    'plan',
    'migrate-copy-files',
    '--inventory',
    twoNames,
    '--param',
    'source=a',
    '--param',
    'target=b',
  ]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, /E_SAME_CLUSTER: source and target are the same cluster/);
  assert.match(r.stderr, SHARED);
  const same = await cli(home, [
    'plan',
    'migrate-copy-files',
    '--inventory',
    twoNames,
    '--param',
    'source=a',
    '--param',
    'target=a',
  ]);
  assert.equal(same.code, 2, same.out);
  assert.match(
    same.stderr,
    /E_SAME_CLUSTER: source and target are both `a`: a runbook with a source and a target needs two different clusters/,
  );
  const run = await cli(home, [
    'run',
    'migrate-copy-files',
    '--inventory',
    twoNames,
    '--param',
    'source=a',
    '--param',
    'target=b',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(run.code, 3, run.out);
  assert.equal(await structure(PORTS, password), before);
  await noRuns();
});

test('verify --source a --target b over the same nodes is refused (E_SAME_CLUSTER), nothing compared', async () => {
  const r = await cli(home, ['verify', '--inventory', twoNames, '--source', 'a', '--target', 'b']);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, /E_SAME_CLUSTER: source and target are the same cluster/);
  assert.doesNotMatch(r.stdout, /keys compared/);
  await noRuns();
});

test('a run through one name holds the cluster: a second run through the other name is refused until the first is given up', async () => {
  const { masterOfSlot0 } = await roles(BASE, password);
  const first = await cli(
    home,
    [
      'run',
      'manual-failover',
      '--inventory',
      twoNames,
      '--param',
      'cluster=a',
      '--param',
      `node=${masterOfSlot0}`,
      '--yes',
    ],
    { REDIS_RUNBOOK_FAILPOINT: 'replica-in-sync.check' },
  );
  assert.equal(first.code, 137, 'killed with SIGKILL while holding the cluster');
  const holder = runIdOf(first);
  const before = await structure(PORTS, password);
  const second = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    twoNames,
    '--param',
    'cluster=b',
    '--param',
    `node=${masterOfSlot0}`,
    '--yes',
  ]);
  assert.equal(second.code, 3, second.out);
  assert.match(
    second.stderr,
    new RegExp(
      `E_CLUSTER_LOCKED: cluster b is held by run ${holder}, which has not finished: its nodes 127\\.0\\.0\\.1:\\d+(, 127\\.0\\.0\\.1:\\d+){5} are the ones that run locked as cluster \`a\``,
    ),
  );
  // Through the sandbox's own inventory name too.
  const third = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${masterOfSlot0}`,
    '--yes',
  ]);
  assert.equal(third.code, 3, third.out);
  assert.match(third.stderr, new RegExp(`E_CLUSTER_LOCKED: cluster source is held by run ${holder}`));
  assert.equal(await structure(PORTS, password), before, 'the refused runs sent nothing');
  assert.equal((await cli(home, ['abort', holder])).code, 0);
  const fourth = await cli(home, [
    'run',
    'manual-failover',
    '--inventory',
    twoNames,
    '--param',
    'cluster=b',
    '--param',
    `node=${masterOfSlot0}`,
    '--yes',
  ]);
  assert.equal(fourth.code, 0, fourth.out);
});
