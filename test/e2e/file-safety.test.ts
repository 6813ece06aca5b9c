import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { roles, withNode } from '../support/cluster.js';
import { sandboxPair, type SandboxPair } from '../support/pair.js';

// Source 9200-9205 with its sshd on 9299, target 9250-9255: one port range, two clusters
// of one inventory on one host, every host command over real SSH on loopback.
const home = tempStateDir();
let pair: SandboxPair;

before(async () => {
  pair = await sandboxPair(home, 9200, 9250, { ssh: true });
});
after(async () => {
  await pair.down();
});

const portOf = (address: string) => Number(address.split(':')[1]);
const nodeDir = (s: { dir: string }, port: number) => join(s.dir, 'nodes', String(port));
interface AuditRow {
  stepId?: string;
  command: string;
  args: string[];
  target: string;
}

test('a node whose dbfilename is `..`: the decommission plan with deleteFiles=true is refused (exit 3), nothing is deleted', async () => {
  const { replicaOfIt } = await roles(pair.source.base, pair.source.password, 0);
  const p = portOf(replicaOfIt);
  await withNode(p, pair.source.password, (r) => r.call('CONFIG', 'SET', 'dbfilename', '..'));
  try {
    const before = readdirSync(nodeDir(pair.source, p)).sort();
    const r = await cli(home, [
      'plan',
      'decommission-node',
      '--inventory',
      pair.inventory,
      '--param',
      `node=${replicaOfIt}`,
      '--param',
      'deleteFiles=true',
    ]);
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /E_UNSAFE_PATH/);
    assert.match(r.out, /dbfilename is `\.\.`/);
    const run = await cli(home, [
      'run',
      'decommission-node',
      '--inventory',
      pair.inventory,
      '--param',
      `node=${replicaOfIt}`,
      '--param',
      'deleteFiles=true',
      '--yes',
      '--allow-destructive',
    ]);
    assert.equal(run.code, 3, run.out);
    assert.deepEqual(readdirSync(nodeDir(pair.source, p)).sort(), before);
    assert.equal(await withNode(p, pair.source.password, (r) => r.ping()), 'PONG', 'the node was not touched');
  } finally {
    await withNode(p, pair.source.password, (r) => r.call('CONFIG', 'SET', 'dbfilename', 'dump.rdb'));
  }
});

test("two clusters of the inventory sharing a data directory: deleting one node's files is refused (exit 3), nothing is deleted", async () => {
  const { replicaOfIt } = await roles(pair.source.base, pair.source.password, 0);
  const p = portOf(replicaOfIt);
  const shared = nodeDir(pair.source, p);
  // A target node (another cluster, same host) is pointed at the source replica's directory.
  const other = pair.target.base + 4;
  const was = ((await withNode(other, pair.target.password, (r) => r.call('CONFIG', 'GET', 'dir'))) as string[])[1]!;
  await withNode(other, pair.target.password, (r) => r.call('CONFIG', 'SET', 'dir', shared));
  writeFileSync(join(shared, 'dump.rdb'), 'not really an rdb');
  try {
    const r = await cli(home, [
      'plan',
      'decommission-node',
      '--inventory',
      pair.inventory,
      '--param',
      `node=${replicaOfIt}`,
      '--param',
      'deleteFiles=true',
    ]);
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, new RegExp(`127\\.0\\.0\\.1:${other} uses ${shared}/dump\\.rdb`));
    const run = await cli(home, [
      'run',
      'decommission-node',
      '--inventory',
      pair.inventory,
      '--param',
      `node=${replicaOfIt}`,
      '--param',
      'deleteFiles=true',
      '--yes',
      '--allow-destructive',
    ]);
    assert.equal(run.code, 3, run.out);
    assert.ok(existsSync(join(shared, 'dump.rdb')) && existsSync(join(shared, 'nodes.conf')), 'nothing deleted');
    assert.equal(await withNode(p, pair.source.password, (r) => r.ping()), 'PONG', 'the node was not stopped');
  } finally {
    await withNode(other, pair.target.password, (r) => r.call('CONFIG', 'SET', 'dir', was));
  }
});

test('the plan shows the exact host command lines the run journals: decommission with deleteFiles=true over ssh', async () => {
  const { replicaOfIt } = await roles(pair.source.base, pair.source.password, 0);
  const p = portOf(replicaOfIt);
  const plan = await cli(home, [
    'plan',
    'decommission-node',
    '--inventory',
    pair.inventory,
    '--param',
    `node=${replicaOfIt}`,
    '--param',
    'deleteFiles=true',
    '--json',
  ]);
  assert.equal(plan.code, 0, plan.out);
  const steps = JSON.parse(plan.stdout).plan.steps as Array<{
    id: string;
    commands: Array<{ target: string; command: string }>;
  }>;
  const shown = (id: string) => steps.find((s) => s.id === id)!.commands[0]!;
  assert.match(shown('shutdown').command, new RegExp(`^kill \\$\\(cat .*/${p}/redis\\.pid\\)$`));
  assert.match(shown('delete-files').command, /rm -rf -- '.*\/dump\.rdb' '.*\/nodes\.conf'$/);
  const r = await cli(home, [
    'run',
    'decommission-node',
    '--inventory',
    pair.inventory,
    '--param',
    `node=${replicaOfIt}`,
    '--param',
    'deleteFiles=true',
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  const show = JSON.parse((await cli(home, ['show', runIdOf(r), '--json'])).stdout) as { audit: AuditRow[] };
  const hostCommands = (id: string) =>
    show.audit
      .filter((a) => a.stepId === id && a.command === 'HOST')
      .map((a) => ({ target: a.target, command: a.args[0] }));
  const planned = (id: string) => ({ target: shown(id).target, command: shown(id).command });
  assert.deepEqual(hostCommands('shutdown'), [planned('shutdown')]);
  assert.deepEqual(hostCommands('delete-files')[0], planned('delete-files'));
  assert.equal(existsSync(join(nodeDir(pair.source, p), 'nodes.conf')), false, 'nodes.conf deleted');
  assert.equal(existsSync(join(nodeDir(pair.source, p), 'redis.conf')), true, 'only the data files are deleted');
});

test('an inventory whose ssh.user is an ssh option is refused at load (exit 2), naming the path in the file', async () => {
  const bad = pair.variant('evil-user', (doc) => {
    doc.hosts.localhost.ssh.user = '-oProxyCommand=touch /tmp/pwned';
  });
  const r = await cli(home, ['plan', 'decommission-node', '--inventory', bad, '--param', 'node=127.0.0.1:9203']);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /E_INVENTORY_INVALID/);
  assert.match(r.out, /hosts\.localhost\.ssh\.user/);
});

test('start-nodes killed right after a start command holding a password was sent: the resume does not send it again', async () => {
  // The start template carries the target's password (a real template might pass it to a
  // wrapper); the node comes up 3 s after the command returns, so the resume finds it down.
  const inv = pair.variant('slow-start', (doc) => {
    doc.hosts.localhost.service.start = `sh -c 'sleep 3; exec redis-server ${home}/pair-nodes/{port}/redis.conf' </dev/null >/dev/null 2>&1 & : ${pair.target.password}`;
  });
  // Planned and saved first: the plan's commands are compared with the journal below.
  const planFile = join(home, 'copy-plan.json');
  const plan = await cli(home, ['plan', 'migrate-copy-files', '--inventory', inv, '--out', planFile, '--json']);
  assert.equal(plan.code, 0, plan.out);
  const planned = JSON.parse(plan.stdout).plan.steps as Array<{
    id: string;
    commands: Array<{ target: string; command: string }>;
  }>;
  const first = await cli(home, ['run', '--plan', planFile, '--yes', '--allow-destructive'], {
    REDIS_RUNBOOK_FAILPOINT: `start-target:start-sent:127.0.0.1:${pair.target.base}`,
  });
  assert.equal(first.code, 137, first.out);
  const id = runIdOf(first);
  const resumed = await cli(home, ['resume', id, '--yes', '--allow-destructive']);
  assert.equal(resumed.code, 0, resumed.out);
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as { audit: AuditRow[] };
  const starts = show.audit.filter(
    (a) =>
      a.stepId === 'start-target' && a.command === 'HOST' && a.args[0]!.includes(`/${pair.target.base}/redis.conf`),
  );
  assert.equal(starts.length, 1, JSON.stringify(starts));
  assert.ok(!starts[0]!.args[0]!.includes(pair.target.password), 'the journal holds the command redacted');
  // What the plan showed is what ran: the start commands and the rsync command lines of the copy.
  const plannedOf = (id: string) => planned.find((st) => st.id === id)!.commands.map((c) => c.command);
  assert.ok(
    plannedOf('start-target').includes(starts[0]!.args[0]!),
    `${starts[0]!.args[0]} in ${plannedOf('start-target').join(' | ')}`,
  );
  assert.ok(
    !plannedOf('start-target').some((c) => c.includes(pair.target.password)),
    'the plan shows the command redacted',
  );
  const rsyncs = show.audit.filter((a) => a.stepId === 'copy' && a.command === 'COPY').flatMap((a) => a.args.slice(3));
  assert.equal(rsyncs.length, 6, 'two hops for each of 3 shards (both ends are reached over ssh)');
  assert.deepEqual([...rsyncs].sort(), [...plannedOf('copy')].sort());
  assert.match(rsyncs[0]!, /^rsync -a .* -- /);
});

const notifyOf = async (p: number) =>
  ((await withNode(p, pair.source.password, (c) => c.call('CONFIG', 'GET', 'notify-keyspace-events'))) as string[])[1];

test('scan sync with notify=true killed mid-sync, then aborted: notify-keyspace-events is back to its old value on every source master', async () => {
  const masters = [0, 1, 2].map((i) => pair.source.base + i);
  for (const p of masters)
    await withNode(p, pair.source.password, (c) => c.call('CONFIG', 'SET', 'notify-keyspace-events', 'Ex'));
  const before = await Promise.all(masters.map(notifyOf));
  const first = await cli(
    home,
    [
      'run',
      'migrate-sync',
      '--inventory',
      pair.inventory,
      '--yes',
      '--allow-destructive',
      '--param',
      'mode=scan',
      '--param',
      'notify=true',
    ],
    { REDIS_RUNBOOK_FAILPOINT: 'catch-up:caught-up' },
  );
  assert.equal(first.code, 137, first.out);
  const during = await Promise.all(masters.map(notifyOf));
  assert.notDeepEqual(during, before, 'the sync turned keyspace events on');
  const aborted = await cli(home, ['abort', runIdOf(first)]);
  assert.equal(aborted.code, 0, aborted.out);
  assert.deepEqual(await Promise.all(masters.map(notifyOf)), before);
  assert.match(
    aborted.out,
    /set notify-keyspace-events back to "xE" on 127\.0\.0\.1:9200 .*\(sent to Redis, journaled\)/,
  );
});

const standin = fileURLToPath(new URL('../../../test/fixtures/redis-shake-standin.sh', import.meta.url));

test('a RedisShake run killed mid-sync, then aborted: its config directory (it holds the passwords) is gone', async () => {
  const record = join(home, 'standin-record');
  const first = await cli(
    home,
    [
      'run',
      'migrate-sync',
      '--inventory',
      pair.inventory,
      '--yes',
      '--allow-destructive',
      '--param',
      'engine=redis-shake',
      '--param',
      `shakeBinary=${standin}`,
    ],
    { REDIS_RUNBOOK_FAILPOINT: 'catch-up:caught-up', STANDIN_RECORD: record },
  );
  assert.equal(first.code, 137, first.out);
  const [pid, conf] = readFileSync(record, 'utf8').trim().split(' ');
  const running = () => {
    try {
      process.kill(Number(pid), 0);
      return true;
    } catch {
      return false;
    }
  };
  // The killed run could not stop the stand-in it started: it still runs, its config beside it.
  assert.ok(running(), 'the killed run left RedisShake running');
  assert.ok(existsSync(conf!), 'the killed run left its config behind');
  const aborted = await cli(home, ['abort', runIdOf(first)]);
  try {
    assert.equal(aborted.code, 0, aborted.out);
    assert.match(aborted.out, new RegExp(`stopped RedisShake \\(pid ${pid}\\)`));
    for (let i = 0; i < 50 && running(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(running(), false, 'abort stopped the RedisShake the killed run left');
    assert.equal(existsSync(dirname(conf!)), false, 'the config directory is removed by abort');
  } finally {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
  }
});

test('a remote-to-remote copy killed between its two hops, then aborted: no staging directory and no partial directory is left', async () => {
  const root = join(tmpdir(), `redis-runbook-stage-${process.getuid!()}`);
  const stages = () =>
    new Set(existsSync(root) ? readdirSync(root).filter((f) => f.startsWith('redis-runbook-copy-')) : []);
  const had = stages();
  const first = await cli(
    home,
    ['run', 'migrate-copy-files', '--inventory', pair.inventory, '--yes', '--allow-destructive'],
    { REDIS_RUNBOOK_FAILPOINT: 'copy:staged' },
  );
  assert.equal(first.code, 137, first.out);
  const left = [...stages()].filter((f) => !had.has(f));
  assert.ok(left.length >= 1, 'the killed copy left a staging directory holding an RDB');
  const aborted = await cli(home, ['abort', runIdOf(first)]);
  assert.equal(aborted.code, 0, aborted.out);
  assert.deepEqual(
    left.filter((f) => existsSync(join(root, f))),
    [],
  );
  assert.match(aborted.out, /removed copy staging directory/);
  for (let i = 0; i < 3; i++)
    assert.equal(existsSync(join(nodeDir(pair.target, pair.target.base + i), '.redis-runbook-partial')), false);
});
