import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';

const BASE = 7400;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, ['--keys', '100']));
});
after(async () => {
  await sandboxDown(home);
});

const write = (name: string, text: string) => {
  const p = join(home, name);
  writeFileSync(p, text);
  return p;
};

test('a bad inventory exits 2 naming the file, the path inside it and the fix', async () => {
  const p = write('bad.yaml', 'clusters:\n  source:\n    seeds: ["127.0.0.1"]\n');
  const r = await cli(home, ['check', '--inventory', p, '--cluster', 'source']);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    new RegExp(`E_INVENTORY_INVALID: ${p}: clusters.source.seeds\\[0\\]: \`127.0.0.1\` is not host:port`),
  );
  assert.match(r.stderr, /fix: /);
  const missing = await cli(home, [
    'plan',
    'manual-failover',
    '--inventory',
    join(home, 'nope.yaml'),
    '--param',
    'node=127.0.0.1:1',
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /E_INVENTORY_UNREADABLE/);
});

test('usage mistakes exit 2 with what to do', async () => {
  const unknown = await cli(home, ['plan', 'no-such-runbook', '--inventory', inventory]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no runbook named `no-such-runbook`.*\n.*manual-failover/);
  const param = await cli(home, ['plan', 'manual-failover', '--inventory', inventory, '--param', 'nod=1']);
  assert.equal(param.code, 2);
  assert.match(param.stderr, /no parameter `nod`/);
  const cluster = await cli(home, ['check', '--inventory', inventory, '--cluster', 'prod']);
  assert.equal(cluster.code, 2);
  assert.match(cluster.stderr, /cluster `prod` is not in the inventory/);
  const flag = await cli(home, ['run', '--frobnicate']);
  assert.equal(flag.code, 2);
});

test('unreachable nodes exit 3 naming the addresses', async () => {
  const p = write('down.yaml', 'clusters:\n  source:\n    seeds: ["127.0.0.1:7499", "127.0.0.1:7498"]\n');
  const r = await cli(home, ['plan', 'manual-failover', '--inventory', p, '--param', 'node=127.0.0.1:7499']);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, /E_CLUSTER_UNREACHABLE: no seed of cluster source answered \(127.0.0.1:7499: .*ECONNREFUSED/);
});

test('a wrong password exits 3, says where the password comes from and never prints it', async () => {
  const wrong = 'definitely-not-the-password-4711';
  write('wrong-pw', wrong);
  const p = write(
    'wrong.yaml',
    `clusters:\n  source:\n    seeds: ["127.0.0.1:${BASE}"]\n    auth: { password: { file: wrong-pw } }\n`,
  );
  const r = await cli(home, ['check', '--inventory', p, '--cluster', 'source']);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, /E_AUTH: authentication to 127.0.0.1:7400 failed/);
  assert.match(r.stderr, /clusters.source.auth.password \(file:/);
  assert.ok(!r.out.includes(wrong) && !r.out.includes(password));
  const noauth = write('noauth.yaml', `clusters:\n  source:\n    seeds: ["127.0.0.1:${BASE}"]\n`);
  const r2 = await cli(home, ['check', '--inventory', noauth, '--cluster', 'source']);
  assert.equal(r2.code, 3, r2.out);
  assert.match(r2.stderr, /E_AUTH/);
  const envRef = write(
    'env.yaml',
    `clusters:\n  source:\n    seeds: ["127.0.0.1:${BASE}"]\n    auth: { password: { env: RR_PW } }\n`,
  );
  const r3 = await cli(home, ['check', '--inventory', envRef, '--cluster', 'source'], { RR_PW: password });
  assert.equal(r3.code, 0, r3.out);
  assert.match(r3.stdout, /\[OK\] All 16384 slots covered/);
});

test('every command has --help', async () => {
  for (const c of [
    [],
    ['list'],
    ['check'],
    ['plan'],
    ['run'],
    ['resume'],
    ['abort'],
    ['runs'],
    ['show'],
    ['sandbox'],
    ['sandbox', 'up'],
    ['sandbox', 'down'],
    ['sandbox', 'status'],
  ]) {
    const r = await cli(home, [...c, '--help']);
    assert.equal(r.code, 0, `${c.join(' ')} --help: ${r.out}`);
    assert.match(r.stdout, /Usage: redis-runbook/);
  }
  const list = await cli(home, ['list']);
  assert.match(list.stdout, /^manual-failover\s+Planned failover/m);
});

test('check --json reports per master keys, slots and replicas', async () => {
  const r = await cli(home, ['check', '--inventory', inventory, '--cluster', 'source', '--json']);
  assert.equal(r.code, 0, r.out);
  const { check } = JSON.parse(r.stdout);
  assert.equal(check.ok, true);
  assert.equal(check.masters.length, 3);
  assert.equal(
    check.masters.reduce((n: number, m: { keys: number }) => n + m.keys, 0),
    100,
  );
  assert.equal(
    check.masters.reduce((n: number, m: { slots: number }) => n + m.slots, 0),
    16384,
  );
  assert.ok(check.masters.every((m: { replicas: number }) => m.replicas === 1));
});
