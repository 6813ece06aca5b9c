import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { parse, stringify } from 'yaml';
import { CLI, cli, runIdOf, sandbox, sandboxDown, tempStateDir, type CliResult } from '../support/cli.js';
import { roles, withNode, SHARD_SLOTS } from '../support/cluster.js';

// This file's ports: 9100-9105 (sandbox), 9199 is kept for a sandbox sshd.
const BASE = 9100;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, ['--keys', '500']));
});
after(async () => {
  await sandboxDown(home);
});

const port = (address: string) => Number(address.split(':')[1]);

/** The sandbox inventory with host service templates replaced (outside the sandbox's directory, which `down` wants as it made it). */
function inventoryWith(name: string, service: Record<string, string>): string {
  const doc = parse(readFileSync(inventory, 'utf8')) as {
    clusters: Record<string, { auth: { password: { file: string } } }>;
    hosts: { localhost: { service: Record<string, string> } };
  };
  Object.assign(doc.hosts.localhost.service, service);
  for (const c of Object.values(doc.clusters)) c.auth.password.file = join(dirname(inventory), 'password');
  const p = join(home, name);
  writeFileSync(p, stringify(doc, { lineWidth: 0 }));
  return p;
}

/** Every byte of the state database's files, as they are on disk. */
function stateFiles(): Buffer {
  return Buffer.concat(
    readdirSync(home)
      .filter((f) => f.startsWith('state.db'))
      .map((f) => readFileSync(join(home, f))),
  );
}

function assertNoPassword(what: string, r: CliResult | string): void {
  const text = typeof r === 'string' ? r : r.out;
  assert.ok(!text.includes(password), `${what} holds the password:\n${text}`);
}

// A service command that fails and echoes the password, in the forms a real
// wrapper script might: after -a, after a colon, quoted, twice on one line.
const leaky = (what: string) =>
  `sh -c 'echo "redis-cli -a ${password} ${what} failed; auth:${password} \\"${password}\\"" >&2; exit 1'`;

test('a failing stop command that echoes the password: the run fails, and neither the database files nor any output hold the password', async () => {
  const inv = inventoryWith('leaky-stop.yaml', { stop: leaky('shutdown') });
  const { replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[2]);
  const r = await cli(home, [
    'run',
    'decommission-node',
    '--inventory',
    inv,
    '--param',
    `node=${replica}`,
    '--yes',
    '--allow-destructive',
  ]);
  const id = runIdOf(r);
  try {
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /E_STOP_FAILED/);
    assert.match(
      r.out,
      /redis-cli -a \*\*\* shutdown failed; auth:\*\*\* "\*\*\*"/,
      'the message is kept, only the password is replaced',
    );
    assertNoPassword('the run output', r);
    const show = await cli(home, ['show', id, '--json']);
    const stored = JSON.parse(show.stdout);
    assert.match(stored.run.error, /E_STOP_FAILED.*\*\*\*/);
    assert.match(stored.steps.find((s: { stepId: string }) => s.stepId === 'shutdown').error, /\*\*\*/);
    for (const out of [
      show,
      await cli(home, ['show', id]),
      await cli(home, ['show', id, '--reads']),
      await cli(home, ['runs', '--json']),
    ])
      assertNoPassword('show/runs', out);
    assert.ok(!stateFiles().includes(Buffer.from(password)), 'the password is in the state database files');
  } finally {
    await cli(home, ['abort', id]);
    // The forgotten replica is still running (its stop failed): stop it for good.
    await withNode(port(replica), password, (c) => c.call('SHUTDOWN', 'NOSAVE')).catch(() => undefined);
  }
});

test('a failing start command that echoes the password (a drill restoring the old master): the same', async () => {
  const inv = inventoryWith('leaky-start.yaml', { start: leaky('start') });
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[1]);
  const r = await cli(home, [
    'run',
    'failover-drill',
    '--inventory',
    inv,
    '--param',
    `node=${master}`,
    '--param',
    'restore=true',
    '--yes',
    '--allow-destructive',
  ]);
  const id = runIdOf(r);
  try {
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /E_START_FAILED/);
    assertNoPassword('the run output', r);
    for (const out of [await cli(home, ['show', id, '--json']), await cli(home, ['show', id, '--reads'])])
      assertNoPassword('show', out);
    assert.ok(!stateFiles().includes(Buffer.from(password)), 'the password is in the state database files');
  } finally {
    await cli(home, ['abort', id]);
    // Put the old master back (through the sandbox's own start command) for the tests that follow.
    const start = (
      parse(readFileSync(inventory, 'utf8')) as { hosts: { localhost: { service: { start: string } } } }
    ).hosts.localhost.service.start.replaceAll('{port}', String(port(master)));
    await new Promise<void>((resolve) => spawn('sh', ['-c', start], { stdio: 'ignore' }).on('close', () => resolve()));
  }
});

/** The polling commands (CLUSTER NODES, INFO, PING) the nodes have served so far, from their own counters. */
async function servedPolls(): Promise<number> {
  let sum = 0;
  for (const p of PORTS) {
    const text = (await withNode(p, password, (c) => c.call('INFO', 'commandstats')).catch(() => '')) as string;
    for (const m of text.matchAll(/^cmdstat_(?:cluster\|nodes|info|ping):calls=(\d+)/gm)) sum += Number(m[1]);
  }
  return sum;
}

test('polling reads are folded: far fewer journal rows than reads the nodes served, and show --reads still lists them with their counts', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[0]);
  const before = await servedPolls();
  const r = await cli(home, ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`, '--yes']);
  assert.equal(r.code, 0, r.out);
  const served = (await servedPolls()) - before;
  const id = runIdOf(r);
  const db = new Database(join(home, 'state.db'), { readonly: true });
  try {
    // The polling reads (CLUSTER NODES, INFO replication, PING) of the run: one row per read before, folded now.
    const polls =
      "run_id = ? AND write = 0 AND ((command = 'CLUSTER' AND args_json = '[\"NODES\"]') OR (command = 'INFO' AND args_json = '[\"replication\"]') OR command = 'PING')";
    const rows = (db.prepare(`SELECT COUNT(*) AS n FROM audit WHERE ${polls}`).get(id) as { n: number }).n;
    // One row per read (as before) would be most of what the nodes served: the plan's own reads are the rest.
    assert.ok(rows * 3 < served, `${rows} journal rows of polling reads for ${served} such reads the nodes served`);
    const sent = (db.prepare(`SELECT SUM(count) AS n FROM audit WHERE ${polls}`).get(id) as { n: number }).n;
    // Folded, not dropped: the counts add up to more than the rows, and to no more than the nodes served.
    assert.ok(
      sent > rows && sent <= served,
      `${sent} polling reads journaled in ${rows} rows; the nodes served ${served}`,
    );
  } finally {
    db.close();
  }
  const show = await cli(home, ['show', id, '--reads']);
  assert.match(show.stdout, /CLUSTER NODES x\d+ until/);
  const hidden = await cli(home, ['show', id]);
  assert.match(hidden.stdout, /\(\d+ reads hidden; --reads lists them\)/);
});

test('the state database locked by another program mid-run: E_STATE_WRITE with its path, no stack trace, nothing taken for a cluster fault; the run resumes once it is free', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[0]);
  const file = join(home, 'state.db');
  const child = spawn(
    process.execPath,
    [CLI, 'run', 'manual-failover', '--inventory', inventory, '--param', `node=${master}`, '--yes'],
    { env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let locker: Database.Database | undefined;
  const modes: Record<string, number> = {};
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => {
    stdout += d;
    // Once the run is under way (its second step began), another program takes the database.
    if (!locker && /\[2\/\d+\]/.test(stdout)) {
      locker = new Database(file);
      locker.pragma('busy_timeout = 10000');
      locker.exec('BEGIN EXCLUSIVE');
      for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) modes[f] = statSync(join(home, f)).mode & 0o777;
    }
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  locker?.exec('ROLLBACK');
  locker?.close();
  assert.ok(locker, `the run never reached its second step:\n${stdout}${stderr}`);
  assert.equal(code, 1, stdout + stderr);
  assert.match(
    stderr,
    new RegExp(
      `E_STATE_WRITE: cannot write the state database ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(.*SQLITE_BUSY`,
    ),
  );
  assert.match(stderr, /fix: .*stop the program that holds it locked/);
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(stdout + stderr, /unreachable|E_NODE|E_CLUSTER/i);
  // The journal and its WAL, created by the run: readable by us only.
  assert.deepEqual(modes, { 'state.db': 0o600, 'state.db-wal': 0o600, 'state.db-shm': 0o600 });
  assert.equal(statSync(home).mode & 0o777, 0o700);

  // Stopped safely: the run is unfinished in the journal, and a resume finishes it.
  const id = runIdOf({ stdout, stderr, out: stdout + stderr, code });
  const resumed = await cli(home, ['resume', id, '--yes']);
  assert.equal(resumed.code, 0, resumed.out);
  const after = await roles(BASE, password, SHARD_SLOTS[0]);
  assert.notEqual(after.masterOfSlot0, master, 'the failover happened, once');
});

test('plan --out into a directory that does not exist: E_PLAN_WRITE, exit 2', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password, SHARD_SLOTS[0]);
  const r = await cli(home, [
    'plan',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--out',
    join(home, 'no-such-dir', 'plan.json'),
  ]);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /E_PLAN_WRITE: cannot write the plan to .*no-such-dir\/plan.json \(ENOENT\)/);
});
