import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { Store } from '../../src/engine/store.js';
import { loadRunbook } from '../../src/engine/runbook.js';
import { startTimeOf, processState, selfIdentity } from '../../src/hosts/process-identity.js';
import { stopLeftoverShake } from '../../src/data/engines/shake-session.js';
import { RunbookError } from '../../src/errors.js';
import { cli, tempStateDir } from '../support/cli.js';
import { stepKinds } from '../../src/steps/registry.js';

// No redis here: run ownership and process identity against real processes and a real SQLite file.

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function spawnSleep(args: string[] = ['60']): ChildProcess {
  const c = spawn('sleep', args, { stdio: 'ignore' });
  children.push(c);
  return c;
}
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const waitGone = async (pid: number) => {
  for (let i = 0; i < 100 && startTimeOf(pid) !== undefined; i++) await new Promise((r) => setTimeout(r, 50));
};

/** A run recorded as `running` by the given owner, in a fresh state dir. */
function recordRun(
  owner: { pid: number; pidStart: string | null; host: string },
  status: 'running' | 'waiting' = 'running',
): { home: string; id: string } {
  const home = tempStateDir('rr-owner-');
  const store = new Store(home);
  const rb = loadRunbook('manual-failover', stepKinds);
  const id = `mf-test-${Math.random().toString(16).slice(2, 6)}`;
  store.createRun(
    {
      id,
      runbook: rb.name,
      clusters: ['source'],
      status,
      createdAt: Date.now(),
      pid: owner.pid,
      pidStart: owner.pidStart,
      host: owner.host,
      planJson: JSON.stringify({ id: 'p1', steps: [] }),
      runbookHash: rb.hash,
      inventoryFile: join(home, 'no-such-inventory.yaml'),
    },
    [],
    true,
  );
  store.close();
  return { home, id };
}

test('process identity: start time from /proc, and a pid whose start time differs is not the recorded process', async () => {
  const me = selfIdentity();
  assert.match(me.startTime ?? '', /^\d+$/);
  assert.equal(processState(me), 'alive');
  const sleep = spawnSleep();
  const start = startTimeOf(sleep.pid!)!;
  assert.equal(processState({ pid: sleep.pid!, startTime: start, host: hostname() }), 'alive');
  assert.equal(processState({ pid: sleep.pid!, startTime: String(Number(start) + 1), host: hostname() }), 'gone');
  assert.equal(processState({ pid: sleep.pid!, startTime: start, host: 'elsewhere' }), 'other-host');
});

test('process identity: a zombie (exited, its parent not reaping it) is gone, not a live process that differs', async () => {
  // The shell starts a short sleep, then becomes a long one that never waits: the short
  // one exits into a zombie, as a child does whose parent died and was not yet reaped.
  const sh = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(sh);
  const pid = Number(await new Promise<string>((r) => sh.stdout!.once('data', (d: Buffer) => r(String(d).trim()))));
  const start = startTimeOf(pid);
  assert.match(start ?? '', /^\d+$/, 'the short sleep runs at first');
  for (let i = 0; i < 100 && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.match(readFileSync(`/proc/${pid}/stat`, 'utf8'), /\) Z /, 'it is a zombie now');
  assert.equal(startTimeOf(pid), undefined);
  assert.equal(processState({ pid, startTime: start, host: hostname() }), 'gone');
  assert.equal(
    await stopLeftoverShake({ pid, startTime: start, host: hostname(), conf: '/x/shake.toml' }, () => {}),
    'none',
  );
});

test('abort: a recorded owner whose pid now belongs to another process is not alive; the run is aborted', async () => {
  const sleep = spawnSleep();
  const wrongStart = String(Number(startTimeOf(sleep.pid!)) + 12345);
  const { home, id } = recordRun({ pid: sleep.pid!, pidStart: wrongStart, host: hostname() });
  const r = await cli(home, ['abort', id]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /aborted; its clusters are free/);
  assert.ok(isAlive(sleep.pid!), 'the unrelated process is untouched');
});

test('abort: the recorded owner itself (same pid and start time) still running is refused with E_RUN_ACTIVE', async () => {
  const sleep = spawnSleep();
  const { home, id } = recordRun({ pid: sleep.pid!, pidStart: startTimeOf(sleep.pid!)!, host: hostname() });
  const r = await cli(home, ['abort', id]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.stderr, new RegExp(`E_RUN_ACTIVE: run ${id} is still being executed by process ${sleep.pid}`));
});

test('resume: a recorded owner whose pid was reused does not block the resume (it gets past the ownership check)', async () => {
  const sleep = spawnSleep();
  const { home, id } = recordRun({ pid: sleep.pid!, pidStart: '1', host: hostname() });
  const r = await cli(home, ['resume', id, '--yes']);
  assert.doesNotMatch(r.stderr, /E_RUN_ACTIVE/, r.out);
  // It went on to execute the run, and stopped at the missing inventory: nothing about the owner.
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /E_INVENTORY_UNREADABLE/);
  const db = new Database(join(home, 'state.db'), { readonly: true });
  const row = db.prepare('SELECT pid, pid_start, host FROM runs WHERE id = ?').get(id) as {
    pid: number;
    pid_start: string;
    host: string;
  };
  db.close();
  assert.notEqual(row.pid, sleep.pid, 'the resume claimed the run');
  assert.equal(row.host, hostname());
  assert.match(row.pid_start, /^\d+$/);
});

test('abort and resume of a run owned by another host: refused naming the host, unless --force', async () => {
  const { home, id } = recordRun({ pid: process.pid, pidStart: '42', host: 'db-admin-7' });
  const resume = await cli(home, ['resume', id, '--yes']);
  assert.equal(resume.code, 3, resume.out);
  assert.match(
    resume.stderr,
    /E_RUN_OTHER_HOST: run \S+ is recorded as running by pid \d+ on host db-admin-7, not this host/,
  );
  assert.match(resume.stderr, /pass --force to `resume`/);
  const abort = await cli(home, ['abort', id]);
  assert.equal(abort.code, 3, abort.out);
  assert.match(abort.stderr, /E_RUN_OTHER_HOST: .*db-admin-7/);
  const forced = await cli(home, ['abort', id, '--force']);
  assert.equal(forced.code, 0, forced.out);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  assert.equal(show.run.status, 'aborted');
  assert.ok(
    show.audit.some(
      (a: { command: string; args: string[] }) =>
        a.command === 'OPERATOR-ABORT' && a.args.includes('abort command, --force'),
    ),
  );
});

test('persist: a process that lost the run to another owner is refused (E_RUN_TAKEN_OVER) and writes nothing', () => {
  const home = tempStateDir('rr-owner-');
  const store = new Store(home);
  const rb = loadRunbook('manual-failover', stepKinds);
  store.createRun(
    {
      id: 'r1',
      runbook: rb.name,
      clusters: ['source'],
      status: 'running',
      createdAt: Date.now(),
      pid: process.pid,
      planJson: '{}',
      runbookHash: rb.hash,
      inventoryFile: 'x',
    },
    [{ stepId: 's1', idx: 0, kind: 'check-cluster', title: 't' }],
    true,
  );
  store.persist('r1', { n: 1 }, 'running', [{ stepId: 's1', status: 'checking' }]);
  // Another process claims it: same pid number (reused), other start time.
  store.db.prepare('UPDATE runs SET pid_start = ? WHERE id = ?').run('999999999', 'r1');
  assert.throws(
    () => store.persist('r1', { n: 2 }, 'running', [{ stepId: 's1', status: 'running' }]),
    (err: unknown) =>
      err instanceof RunbookError &&
      err.code === 'E_RUN_TAKEN_OVER' &&
      /stops here and sends nothing more/.test(err.message),
  );
  assert.throws(() => store.assertOwner('r1'), /E_RUN_TAKEN_OVER|now owned by/);
  const run = store.getRun('r1')!;
  assert.equal(run.snapshotJson, JSON.stringify({ n: 1 }), 'the snapshot is the one written while it owned the run');
  assert.equal(store.steps('r1')[0]!.status, 'checking');
  store.close();
});

test('a state.db made before owners and node locks were kept is upgraded in place', () => {
  const home = mkdtempSync(join(tmpdir(), 'rr-old-db-'));
  const db = new Database(join(home, 'state.db'));
  db.exec(`CREATE TABLE runs (id TEXT PRIMARY KEY, runbook TEXT NOT NULL, clusters TEXT NOT NULL, status TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, pid INTEGER, plan_json TEXT NOT NULL, runbook_hash TEXT NOT NULL, inventory_file TEXT NOT NULL,
    snapshot_json TEXT, error TEXT);
    CREATE TABLE locks (cluster TEXT PRIMARY KEY, run_id TEXT NOT NULL, acquired_at INTEGER NOT NULL);
    INSERT INTO runs VALUES ('old', 'manual-failover', '["source"]', 'stopped', 1, 1, 4242, '{}', 'h', 'i', NULL, NULL);
    INSERT INTO locks VALUES ('source', 'old', 1);`);
  db.close();
  const store = new Store(home);
  const old = store.getRun('old')!;
  assert.equal(old.pid, 4242);
  assert.equal(old.pidStart, null);
  assert.throws(() => store.assertFree(['source']), /held by run old/);
  store.setRunStatus('old', 'aborted');
  assert.doesNotThrow(() => store.assertFree(['source'], { source: [{ id: 'n1', address: 'a:1' }] }));
  store.close();
  // Opening it again is a no-op.
  new Store(home).close();
});

test('RedisShake left by an interrupted run: a pid whose start time differs is not signalled', async () => {
  const sleep = spawnSleep();
  const pid = sleep.pid!;
  const lines: string[] = [];
  const r = await stopLeftoverShake(
    {
      pid,
      startTime: String(Number(startTimeOf(pid)) + 7),
      host: hostname(),
      conf: '/tmp/redis-runbook-shake-x/shake.toml',
    },
    (l) => lines.push(l),
  );
  assert.notEqual(r, 'stopped');
  await new Promise((s) => setTimeout(s, 300));
  assert.ok(isAlive(pid), 'the unrelated process is still alive after the stop logic');
  assert.ok(
    lines.some((l) => /no longer the RedisShake this run started/.test(l)),
    lines.join('\n'),
  );
  // Right start time, but its command line does not name the run's config: not signalled either.
  assert.notEqual(
    await stopLeftoverShake(
      { pid, startTime: startTimeOf(pid), host: hostname(), conf: '/tmp/redis-runbook-shake-x/shake.toml' },
      () => {},
    ),
    'stopped',
  );
  assert.ok(isAlive(pid));
  // Recorded on another host: not signalled here, and reported as such (the session refuses to start a second sync).
  assert.equal(
    await stopLeftoverShake({ pid, startTime: startTimeOf(pid), host: 'db-admin-7', conf: 'sleep' }, () => {}),
    'not-ours',
  );
  assert.ok(isAlive(pid));
});

test('RedisShake left by an interrupted run: the very process (pid, start time, command line with its config) is stopped', async () => {
  const conf = '/tmp/redis-runbook-shake-test/shake.toml';
  // A stand-in whose command line names the config, as RedisShake's does.
  const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', conf], { stdio: 'ignore' });
  children.push(c);
  for (
    let i = 0;
    i < 50 && !(await import('../../src/hosts/process-identity.js')).cmdlineOf(c.pid!)?.includes(conf);
    i++
  )
    await new Promise((s) => setTimeout(s, 20));
  const r = await stopLeftoverShake({ pid: c.pid!, startTime: startTimeOf(c.pid!), host: hostname(), conf }, () => {});
  assert.equal(r, 'stopped');
  await new Promise<void>((res) => {
    if (c.exitCode !== null || c.signalCode) res();
    else c.once('exit', () => res());
  });
  await waitGone(c.pid!);
  // SIGINT: RedisShake v4.2.0 stops on it and only logs SIGTERM; SIGKILL is the last resort.
  assert.ok(c.signalCode === 'SIGINT' || c.signalCode === 'SIGKILL', String(c.signalCode));
});
