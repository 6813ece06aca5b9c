import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, withNode, SHARD_SLOTS } from '../support/cluster.js';

// The nodes' own logs of failover, drill and decommission steps (src/engine/node-logs.ts),
// against a real 3x1 sandbox whose host is reached over the sandbox's loopback sshd (--ssh),
// and once through a copy of the inventory with the host local (read from this machine).
// This file's ports: 21420-21425 (sandbox), 21519 (its sshd).
const BASE = 21420;
const home = tempStateDir();
let inventory = '';
let localInventory = '';
let password = '';

/**
 * The sandbox's inventory, to write a variant of outside the sandbox's directory (which
 * `sandbox down` refuses to delete with foreign files in it): the password file by its full path.
 */
function inventoryDoc() {
  const doc = parse(readFileSync(inventory, 'utf8'));
  for (const c of Object.values(doc.clusters) as Array<{ auth: { password: { file: string } } }>)
    c.auth.password.file = join(dirname(inventory), 'password');
  return doc;
}

const port = (address: string) => Number(address.split(':')[1]);
const nodeDir = (address: string) => join(dirname(inventory), 'nodes', String(port(address)));

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, ['--ssh']));
  const doc = inventoryDoc();
  for (const h of Object.values(doc.hosts) as Array<{ transport: string; ssh?: unknown }>) {
    h.transport = 'local';
    delete h.ssh;
  }
  localInventory = join(home, 'inventory-local.yaml');
  writeFileSync(localInventory, stringify(doc));
});
after(async () => {
  await sandboxDown(home);
});

interface LogRow {
  stepId: string;
  node: string;
  source: string;
  at: number | null;
  line: string;
}
interface Show {
  steps: Array<{ stepId: string; status: string; startedAt: number; finishedAt: number }>;
  nodeLogs: LogRow[];
}

/**
 * Write a line holding the password into every node's log, every 50 ms, while `fn` runs
 * (DEBUG LOG: the sandbox allows DEBUG from loopback): a secret the collector must scrub.
 */
async function whileLoggingSecrets<T>(ports: number[], fn: () => Promise<T>): Promise<T> {
  let on = true;
  const loops = ports.map(async (p) => {
    while (on) {
      await withNode(p, password, (r) => r.call('DEBUG', 'LOG', `auth attempt with ${password}`)).catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  try {
    return await fn();
  } finally {
    on = false;
    await Promise.all(loops);
  }
}

const ALL = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);

async function runAndShow(args: string[], inv = inventory): Promise<{ id: string; show: Show; text: string }> {
  const r = await whileLoggingSecrets(ALL, () => cli(home, ['run', ...args, '--inventory', inv, '--yes']));
  assert.equal(r.code, 0, r.out);
  const id = runIdOf(r);
  const json = await cli(home, ['show', id, '--json']);
  const text = await cli(home, ['show', id]);
  return { id, show: JSON.parse(json.stdout) as Show, text: text.stdout };
}

const lines = (show: Show, stepId: string, node: string) =>
  show.nodeLogs
    .filter((r) => r.stepId === stepId && r.node === node)
    .map((r) => r.line)
    .join('\n');

/** Every stored line with a time lies in its step's window; none holds the password, and some were scrubbed. */
function assertWindowsAndScrubbed(show: Show): void {
  assert.ok(show.nodeLogs.length > 0, 'node logs were kept');
  for (const r of show.nodeLogs) {
    const s = show.steps.find((x) => x.stepId === r.stepId)!;
    if (r.at !== null)
      assert.ok(
        r.at >= s.startedAt - 2000 && r.at <= s.finishedAt + 2000,
        `${r.stepId} ${r.node}: ${r.line} is outside ${s.startedAt}-${s.finishedAt}`,
      );
  }
  const db = readFileSync(join(home, 'state.db'));
  assert.equal(JSON.stringify(show.nodeLogs).includes(password), false, 'a stored line holds the password');
  assert.equal(db.includes(Buffer.from(password)), false, 'the state database holds the password');
  assert.match(
    JSON.stringify(show.nodeLogs),
    /auth attempt with \*\*\*/,
    "the nodes' lines holding it are kept, scrubbed",
  );
}

test('manual failover with fail-back (host read locally): the election as the replica, the old master and the voters tell it', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password);
  const { show, text } = await runAndShow(
    ['manual-failover', '--param', `node=${master}`, '--param', 'failback=true'],
    localInventory,
  );
  assert.match(lines(show, 'failover', replica), /Manual failover user request accepted/);
  assert.match(lines(show, 'failover', replica), /Failover election won: I'm the new master/);
  assert.match(lines(show, 'failover', master), /Manual failover requested by replica/);
  const voters = ALL.map((p) => `127.0.0.1:${p}`).filter((n) => n !== master && n !== replica);
  assert.ok(
    voters.some((n) => /Failover auth granted to/.test(lines(show, 'failover', n))),
    'another master logged its vote',
  );
  // Each line is kept under one step: the election is the failover's, not the wait before it's.
  assert.doesNotMatch(lines(show, 'replica-in-sync', replica), /Failover election won/);
  // The fail-back: the original master asks and wins this time.
  assert.match(lines(show, 'failback', master), /Manual failover user request accepted/);
  assert.match(lines(show, 'failback', master), /Failover election won/);
  assert.equal(new Set(show.nodeLogs.filter((r) => r.at !== null).map((r) => r.source)).size, 6, 'six log files');
  assertWindowsAndScrubbed(show);
  // show: the tool's command, then what the node said, in time order.
  assert.match(text, /node logs: \d+ lines/);
  const section = text.slice(text.indexOf(`[failover] ${replica}`));
  assert.match(
    section,
    new RegExp(`tool -> ${replica}: CLUSTER FAILOVER[^]*\\+\\d+ms S # Manual failover user request accepted`),
  );
});

/** Restart a node with `logfile ""` (logfile cannot be changed at run time); it logs to stdout, /dev/null here. */
async function restartLoggingToStdout(address: string): Promise<void> {
  const conf = join(nodeDir(address), 'redis.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^logfile .*$/m, 'logfile ""'));
  await withNode(port(address), password, (r) => r.call('SHUTDOWN', 'NOSAVE')).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  const server = readFileSync(join(nodeDir(address), 'server'), 'utf8').trim();
  await execa(server, [conf]);
  for (let i = 0; i < 200; i++) {
    const info = (await withNode(port(address), password, (r) => r.call('INFO', 'replication')).catch(
      () => '',
    )) as string;
    if (/master_link_status:up/.test(info)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${address} did not come back in sync`);
}

test('failover drill (host over ssh): the stopped master’s last words, the FAIL flag, the election; a node logging to stdout is a note', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password);
  const quiet = (await roles(BASE, password, SHARD_SLOTS[1])).replicaOfIt;
  await restartLoggingToStdout(quiet);
  const { show, text } = await runAndShow(['failover-drill', '--param', `node=${master}`, '--allow-destructive']);
  // The master was down when the logs were read: its file was known from the step's check.
  assert.match(lines(show, 'fail-master', master), /User requested shutdown|ready to exit/);
  assert.match(lines(show, 'fail-master', replica), /Starting a failover election|Failover election won/);
  const others = ALL.map((p) => `127.0.0.1:${p}`).filter((n) => n !== master && n !== replica && n !== quiet);
  assert.ok(
    others.some((n) =>
      /Marking node \S+ as failing \(quorum reached\)|FAIL message received/.test(lines(show, 'fail-master', n)),
    ),
    'the FAIL flag is in the other nodes’ logs',
  );
  // The restore: the old master starts again and syncs from the new one.
  assert.match(lines(show, 'restore', master), /MASTER <-> REPLICA sync/);
  const stdout = show.nodeLogs.filter((r) => r.stepId === 'fail-master' && r.node === quiet);
  assert.equal(stdout.length, 1, JSON.stringify(stdout));
  assert.equal(stdout[0]!.source, 'stdout');
  assert.equal(stdout[0]!.at, null);
  assert.match(stdout[0]!.line, /^\[redis-runbook\] .*logfile "": it logs to standard output/);
  assertWindowsAndScrubbed(show);
  assert.match(text, new RegExp(`tool -> ${master}: SHUTDOWN`));
  assert.match(text, /logs to standard output/);
});

test('a failed attempt keeps its lines too, and the retry keeps only its own', async () => {
  const { masterOfSlot0: master } = await roles(BASE, password);
  // The restore's start command fails: the step fails once the master is down.
  const doc = inventoryDoc();
  doc.hosts.localhost.service.start = 'echo "cannot start {port}" >&2; exit 1';
  const failing = join(home, 'inventory-failing-start.yaml');
  writeFileSync(failing, stringify(doc));
  const r = await whileLoggingSecrets(ALL, () =>
    cli(home, [
      'run',
      'failover-drill',
      '--inventory',
      failing,
      '--param',
      `node=${master}`,
      '--yes',
      '--allow-destructive',
    ]),
  );
  assert.equal(r.code, 1, r.out);
  const id = runIdOf(r);
  const failed = JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as Show;
  assert.equal(failed.steps.find((s) => s.stepId === 'restore')!.status, 'failed');
  const firstRestore = failed.nodeLogs.filter((x) => x.stepId === 'restore');
  assert.ok(firstRestore.length > 0, 'the failed attempt kept lines');
  assertWindowsAndScrubbed(failed);
  // Started by hand; the retry finds it up and waits for its sync.
  const server = readFileSync(join(nodeDir(master), 'server'), 'utf8').trim();
  await execa(server, [join(nodeDir(master), 'redis.conf')]);
  const resumed = await whileLoggingSecrets(ALL, () => cli(home, ['resume', id, '--yes', '--allow-destructive']));
  assert.equal(resumed.code, 0, resumed.out);
  const done = JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as Show;
  const restore = done.nodeLogs.filter((x) => x.stepId === 'restore');
  assert.match(lines(done, 'restore', master), /MASTER <-> REPLICA sync/);
  // The second attempt's window starts where the first one's ended: no line is kept twice.
  const key = (x: LogRow) => `${x.node} ${x.at} ${x.line}`;
  const timed = restore.filter((x) => x.at !== null && !x.line.includes('auth attempt'));
  assert.equal(new Set(timed.map(key)).size, timed.length, 'a line kept by both attempts');
  assert.ok(restore.length > firstRestore.length);
  assertWindowsAndScrubbed(done);
});

test('decommission of a master (host over ssh): its demotion, the others forgetting it, its shutdown', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, SHARD_SLOTS[2]);
  const { show } = await runAndShow(['decommission-node', '--param', `node=${master}`, '--allow-destructive']);
  assert.match(lines(show, 'demote', replica), /Manual failover user request accepted/);
  assert.match(lines(show, 'shutdown', master), /SIGTERM|ready to exit/);
  assert.ok(
    show.nodeLogs.some((r) => r.stepId === 'forget'),
    'the forget step kept lines',
  );
  assertWindowsAndScrubbed(show);
});
