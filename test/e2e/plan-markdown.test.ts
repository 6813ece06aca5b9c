import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';
import { evenRanges } from '../../src/redis/slots.js';

// The plan as a reviewer reads it (plan --format markdown, plan.md beside plan.json), on a real
// 3 x 1 source (21010-21015), a 5 x 1 target (21110-21119) and a loopback sshd (21109).
const BASE = 21010;
const home = tempStateDir();
const out = tempStateDir('rr-plan-md-');
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, ['--target-masters', '5', '--ssh'], 'pm'));
});
after(async () => {
  await sandboxDown(home, 'pm');
});

/** Masters as the cluster itself says: address, id, slot ranges as the document writes them, keys. */
async function masters(port: number) {
  const lines = parseClusterNodes((await withNode(port, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  return Promise.all(
    lines
      .filter((l) => l.flags.includes('master') && l.slots.length)
      .map(async (l) => ({
        address: l.address,
        id: l.id,
        ranges: l.slots.map(([a, b]) => `${a}-${b}`).join(', '),
        count: l.slots.reduce((n, [a, b]) => n + b - a + 1, 0),
        keys: Number(await withNode(l.address, password, (c) => c.call('DBSIZE'))),
        replica: lines.find((r) => r.masterId === l.id)!,
      })),
  );
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const section = (md: string, head: string) => md.slice(md.indexOf(head), md.indexOf('\n## ', md.indexOf(head) + 1));

test('migrate-consolidate-reshard: before with real slots and keys, the target resharded after, estimates, rollback', async () => {
  const source = await masters(BASE);
  const target = await masters(BASE + 100);
  const file = join(out, 'mcr.json');
  const r = await cli(home, [
    'plan',
    'migrate-consolidate-reshard',
    '--inventory',
    inventory,
    '--format',
    'markdown',
    '--out',
    file,
  ]);
  assert.equal(r.code, 0, r.out);
  const md = readFileSync(join(out, 'mcr.md'), 'utf8');
  assert.equal(r.stdout.trim(), md.trim(), 'stdout is the document written beside the plan');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as { id: string; seal: { mac: string } };
  assert.match(md, new RegExp(`\\| Plan id \\| \`${plan.id}\` \\|`));
  assert.ok(md.includes(plan.seal.mac), 'the seal ties the document to the file');

  const before = section(md, '## Before');
  for (const m of [...source, ...target])
    assert.match(
      before,
      new RegExp(
        `\\| \`${esc(m.address)}\` \\| \`${m.id.slice(0, 8)}\` \\| ${m.ranges} \\| ${m.count} \\| ${m.keys.toLocaleString('en-US')} \\|`,
      ),
    );
  assert.equal(
    source.reduce((n, m) => n + m.keys, 0),
    3000,
  );

  const steps = section(md, '## Steps');
  assert.match(steps, /> \*\*DESTRUCTIVE\*\*/);
  assert.match(steps, /### \d+\. `copy`: /);
  assert.match(steps, /Rollback: Put the files back: on each node's host, move them from `redis-runbook-backup-/);
  assert.match(steps, /Rollback: Move the slots back with `redis-cli --cluster reshard`/);
  assert.match(steps, /\| PASS \|/);
  assert.doesNotMatch(steps, /\*\*FAIL\*\*/);

  // After: the target's five masters hold the even ranges (the collector the first), ~600 keys each;
  // the source keeps every slot on the master that collected them (restoreSource=false).
  const afterMd = section(md, '## After (predicted)');
  const targetAfter = afterMd.slice(afterMd.indexOf('### Cluster `target`'));
  const ranges = evenRanges(5).map(([a, b]) => `${a}-${b}`);
  let predicted = 0;
  for (const range of ranges) {
    const row = new RegExp(`\\| ${range} \\| 327[67] \\| ~([\\d,]+) \\|`).exec(targetAfter);
    assert.ok(row, `${range} in\n${targetAfter}`);
    predicted += Number(row[1]!.replace(/,/g, ''));
  }
  assert.ok(Math.abs(predicted - 3000) <= 5, `${predicted} keys predicted on the target`);
  const sourceAfter = afterMd.slice(afterMd.indexOf('### Cluster `source`'), afterMd.indexOf('### Cluster `target`'));
  assert.match(sourceAfter, /\| 0-16383 \| 16384 \| ~3,000 \|/);

  const est = section(md, '## Expected duration (estimate)');
  assert.match(est, /\| `consolidate-source` \| .* \| [\d,]+ slots, ~[\d,]+ keys/);
  assert.match(
    est,
    /\| `copy` \| .* \| ~[\d.]+ [kM]B \(used_memory, a stand-in for the file size\) at 50\.0 MB\/s \(default/,
  );
  assert.match(est, /Total: .*\(estimate/);
  assert.match(md, /\*\*All \d+ preconditions PASS\.\*\*/);
  assert.match(md, new RegExp(`run --plan ${esc(file)}`));
  assert.ok(!md.includes(password), 'the cluster password is not in the document');
});

test('manual-failover: the replica takes the slots after; the saved plan still runs with run --plan', async () => {
  const [m] = (await masters(BASE)).sort((a, b) => a.address.localeCompare(b.address));
  const file = join(out, 'mf.json');
  const args = ['plan', 'manual-failover', '--inventory', inventory, '--param', `node=${m!.address}`];
  const r = await cli(home, [...args, '--format', 'markdown', '--out', file]);
  assert.equal(r.code, 0, r.out);
  assert.ok(existsSync(join(out, 'mf.md')));
  const md = readFileSync(join(out, 'mf.md'), 'utf8');
  const afterMd = section(md, '## After (predicted)');
  assert.match(
    afterMd,
    new RegExp(
      `\\| \`${esc(m!.replica.address)}\` \\| \`${m!.replica.id.slice(0, 8)}\` \\| ${m!.ranges} \\| ${m!.count} \\| ~${m!.keys.toLocaleString('en-US')} \\| ${esc(m!.address)} \\| was a replica; takes the slots of ${esc(m!.address)} \\|`,
    ),
  );
  assert.match(
    md,
    new RegExp(
      `Rollback: Fail back with a second planned failover: \`redis-runbook run manual-failover --param cluster=source --param node=${esc(m!.address)} --inventory ${esc(inventory)}\``,
    ),
  );
  assert.match(md, /Replicas of `source`:[\s\S]*\| up \| \d+ \|/);
  assert.ok(!md.includes(password));

  // --json is still the JSON plan report; a format that is not one is a clear usage error.
  const j = await cli(home, [...args, '--json']);
  assert.equal(JSON.parse(j.stdout).plan.runbook, 'manual-failover');
  const bad = await cli(home, [...args, '--format', 'html']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--format html is not a plan format/);

  const run = await cli(home, ['run', '--plan', file, '--yes']);
  assert.equal(run.code, 0, run.out);
  const after = await masters(BASE);
  assert.ok(
    after.some((x) => x.address === m!.replica.address && x.ranges === m!.ranges),
    JSON.stringify(after),
  );
});
