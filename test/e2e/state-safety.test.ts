import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { CLI, cli, tempStateDir, type CliResult } from '../support/cli.js';

// The CLI on its own (no cluster): what it does with bad state directories,
// inventories and secret references. Each must be refused quickly, with a
// code, the fact and the fix, and exit 2.

const mode = (p: string) => statSync(p).mode & 0o777;
/** The CLI, killed if it is still running after `ms` (a refusal must be quick; a spin must not hang the suite). */
function within(ms: number, home: string, args: string[]): Promise<CliResult & { killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: ms,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? 137, stdout, stderr, out: stdout + stderr, killed: signal === 'SIGKILL' }),
    );
  });
}

test('no arguments prints the help and exits 2', async () => {
  const r = await cli(tempStateDir(), []);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /Usage: redis-runbook/);
});

test('a state directory under /proc and an inventory that is /dev/zero are refused at once', async () => {
  const home = tempStateDir();
  const proc = await within(15_000, home, ['--state-dir', '/proc/rr-no-such-dir', 'runs']);
  assert.equal(proc.killed, false, 'still running after 15 s');
  assert.equal(proc.code, 2, proc.out);
  assert.match(proc.stderr, /E_STATE_DIR: cannot create state directory \/proc\/rr-no-such-dir/);
  assert.match(proc.stderr, /fix: /);
  const zero = await within(15_000, home, ['check', '--inventory', '/dev/zero', '--cluster', 'source']);
  assert.equal(zero.killed, false, 'still running after 15 s');
  assert.equal(zero.code, 2, zero.out);
  assert.match(zero.stderr, /E_INVENTORY_UNREADABLE: inventory \/dev\/zero is not a regular file/);
  const big = join(home, 'big.yaml');
  writeFileSync(big, `# ${'x'.repeat(2 * 1024 * 1024)}\nclusters: {}\n`);
  const tooBig = await within(15_000, home, ['check', '--inventory', big, '--cluster', 'source']);
  assert.equal(tooBig.code, 2, tooBig.out);
  assert.match(
    tooBig.stderr,
    /E_INVENTORY_TOO_BIG: inventory .*big.yaml is \d+ bytes; an inventory is at most 1048576/,
  );
  // A state directory that is a file.
  const file = join(home, 'a-file');
  writeFileSync(file, 'x');
  const notDir = await within(15_000, home, ['--state-dir', file, 'runs']);
  assert.equal(notDir.code, 2, notDir.out);
  assert.match(notDir.stderr, /E_STATE_DIR: state directory .*a-file exists and is not a directory/);
});

test('a new state directory is 0700 and its database 0600; an old 0755 one of ours is tightened and the files with it, and we say so', async () => {
  const home = tempStateDir();
  const fresh = join(home, 'deep', 'state');
  const r = await cli(home, ['--state-dir', fresh, 'runs']);
  assert.equal(r.code, 0, r.out);
  assert.equal(mode(fresh), 0o700);
  assert.equal(mode(join(fresh, 'state.db')), 0o600);

  // A state directory as an earlier version left it: 0755, the database and its WAL 0644.
  const old = join(home, 'old');
  mkdirSync(old, { mode: 0o755 });
  chmodSync(old, 0o755);
  const db = new Database(join(old, 'state.db'));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1);');
  for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) chmodSync(join(old, f), 0o644);
  try {
    const r2 = await cli(home, ['--state-dir', old, 'runs']);
    assert.equal(r2.code, 0, r2.out);
    assert.match(r2.stderr, /note: state directory .*old was open to other users \(mode 0755\); changed to 0700/);
    assert.equal(mode(old), 0o700);
    for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) assert.equal(mode(join(old, f)), 0o600, f);
  } finally {
    db.close();
  }

  // A shared directory that holds other files is not ours to change: refused, left as it is.
  const shared = join(home, 'shared');
  mkdirSync(shared, { mode: 0o755 });
  chmodSync(shared, 0o755);
  writeFileSync(join(shared, 'notes.txt'), 'not ours');
  const r3 = await cli(home, ['--state-dir', shared, 'runs']);
  assert.equal(r3.code, 2, r3.out);
  assert.match(r3.stderr, /E_STATE_DIR_PERMS: state directory .*shared is open to other users \(mode 0755\)/);
  assert.equal(mode(shared), 0o755);
  assert.equal(existsSync(join(shared, 'state.db')), false);
});

test('a state.db that is not a database is refused with a code and a fix', async () => {
  const home = tempStateDir();
  writeFileSync(join(home, 'state.db'), 'this is not sqlite '.repeat(100), { mode: 0o600 });
  const r = await cli(home, ['runs']);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /E_STATE_DB: .*state.db is not a usable redis-runbook state database/);
  assert.match(r.stderr, /fix: move .*state.db away/);
});

test('an unset password variable, a missing password file and a missing TLS file are usage errors naming the reference, not an unreachable cluster', async () => {
  const home = tempStateDir();
  const inv = (name: string, text: string) => {
    const p = join(home, name);
    writeFileSync(p, text);
    return p;
  };
  // Port 9190 of this test's range: nothing listens there, and nothing must be tried.
  const envInv = inv(
    'env.yaml',
    'clusters:\n  source:\n    seeds: ["127.0.0.1:9190"]\n    auth: { password: { env: RR_SAFETY_UNSET_PW } }\n',
  );
  const env = await cli(home, ['plan', 'manual-failover', '--inventory', envInv, '--param', 'node=127.0.0.1:9190'], {
    RR_SAFETY_UNSET_PW: '',
  });
  assert.equal(env.code, 2, env.out);
  assert.match(env.stderr, /E_SECRET_MISSING: clusters\.source\.auth\.password: env RR_SAFETY_UNSET_PW is not set/);
  assert.doesNotMatch(env.out, /unreachable/i);

  const fileInv = inv(
    'file.yaml',
    'clusters:\n  source:\n    seeds: ["127.0.0.1:9190"]\n    auth: { password: { file: no-such-pw } }\n',
  );
  const file = await cli(home, ['check', '--inventory', fileInv, '--cluster', 'source']);
  assert.equal(file.code, 2, file.out);
  assert.match(
    file.stderr,
    /E_SECRET_MISSING: clusters\.source\.auth\.password: cannot read secret file .*no-such-pw \(ENOENT\)/,
  );

  const tlsInv = inv(
    'tls.yaml',
    'clusters:\n  source:\n    seeds: ["127.0.0.1:9190"]\n    tls: { ca: no-such-ca.pem }\n',
  );
  const tls = await cli(home, ['check', '--inventory', tlsInv, '--cluster', 'source']);
  assert.equal(tls.code, 2, tls.out);
  assert.match(tls.stderr, /E_TLS_FILE: clusters\.source\.tls\.ca: cannot read .*no-such-ca\.pem \(ENOENT\)/);
  assert.doesNotMatch(tls.out, /unreachable/i);

  // A two-character password is refused before anything is sent.
  writeFileSync(join(home, 'short-pw'), 'ab');
  const shortInv = inv(
    'short.yaml',
    'clusters:\n  source:\n    seeds: ["127.0.0.1:9190"]\n    auth: { password: { file: short-pw } }\n',
  );
  const short = await cli(home, ['check', '--inventory', shortInv, '--cluster', 'source']);
  assert.equal(short.code, 2, short.out);
  assert.match(short.stderr, /E_SECRET_TOO_SHORT: clusters\.source\.auth\.password/);
});
