import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import {
  journaledTwice,
  partition,
  rateLimit,
  record,
  sandboxHosts,
  slotDifferences,
  sleep,
  startCli,
  type AuditRow,
  type ChaosHost,
  isNodeStart,
} from '../support/faults.js';
import { startWriter } from '../support/writer.js';
import { test } from '../support/reliability.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// Network faults between the runner and one host of a multi-host sandbox (3 network
// namespaces behind a bridge, each with its own sshd): a host cut off from the runner in
// both directions or in one, random packet loss, a bandwidth limit. Source 15100-15105,
// target 15200-15205.
const BASE = 15100;
const home = tempStateDir('rr-chaos-');
let inventory = '';
let password = '';
let dir = '';
let runner = '';
let hosts: ChaosHost[] = [];
const heals: Array<() => void> = [];

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'part',
    '--hosts',
    '3',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '3',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  dir = dirname(inventory);
  password = readFileSync(join(dir, 'password'), 'utf8').trim();
  ({ runner, hosts } = sandboxHosts(dir));
});
after(async () => {
  // Whatever a failed case left in place is lifted before the sandbox goes.
  for (const h of heals.splice(0)) h();
  await cli(home, ['sandbox', 'down', '--name', 'part']);
});

const hostOfPort = (port: number) => hosts.find((h) => h.nodes.includes(port))!;
const addr = (port: number) => `${hostOfPort(port).address}:${port}`;
const show = async (id: string) =>
  JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as {
    run: { status: string; error: string | null };
    audit: AuditRow[];
    steps: Array<{ stepId: string; status: string; output: any }>;
  };
const onceOnly = (a: AuditRow) =>
  a.ok !== false &&
  (a.command === 'BGSAVE' ||
    (a.command === 'CLUSTER' && a.args[0] === 'FAILOVER') ||
    (a.command === 'HOST' && (/^(kill|mv) /.test(a.args[0] ?? '') || isNodeStart(a.args[0] ?? ''))) ||
    a.command === 'FLUSHALL');

async function masterOf(seedPort: number, slot: number): Promise<{ address: string; port: number; replica: string }> {
  const { Redis } = await import('ioredis');
  const r = new Redis({
    host: hostOfPort(seedPort).address,
    port: seedPort,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  await r.connect();
  try {
    const nodes = parseClusterNodes((await r.call('CLUSTER', 'NODES')) as string);
    const m = nodes.find((n) => n.flags.includes('master') && n.slots.some(([a, b]) => a <= slot && slot <= b))!;
    const rep = nodes.find((n) => n.masterId === m.id)!;
    return { address: m.address, port: Number(m.address.split(':')[1]), replica: rep.address };
  } finally {
    r.disconnect();
  }
}

interface Case {
  name: string;
  args: string[];
  /** The run's output line at which the fault goes in. */
  at: RegExp;
  /** Which host, and how. */
  fault: () => () => void;
  holdMs: number;
  /** Keep the fault until the run ends (a slow link for the whole copy). */
  holdToEnd?: boolean;
  /** Source and target seeds for the per-slot comparison (none for a runbook on one cluster). */
  compare?: [number, number];
  /** What happens once the fault is lifted, while the run goes on. */
  during?: () => Promise<void>;
}

/**
 * Start the run, put the fault in once its output reaches `at`, hold it, lift it. The run
 * either finished, or stopped in a resumable state with a named error; resumed (at most
 * twice) it finishes, nothing destructive ran twice, and the clusters agree slot by slot.
 */
async function faultCase(c: Case): Promise<Record<string, unknown>> {
  const run = startCli(home, c.args);
  await run.waitFor(c.at);
  const heal = c.fault();
  heals.push(heal);
  await (c.holdToEnd ? run.done : sleep(c.holdMs));
  heal();
  heals.splice(heals.indexOf(heal), 1);
  await c.during?.();
  const first = await run.done;
  const id = runIdOf(first);
  let resumes = 0;
  if (first.code !== 0) {
    assert.match(first.out, /E_[A-Z_]+|failed/, first.out);
    const mid = await show(id);
    assert.ok(['failed', 'waiting'].includes(mid.run.status), `a resumable state, got ${mid.run.status}`);
  }
  for (let s = await show(id); s.run.status !== 'succeeded'; s = await show(id)) {
    assert.ok(resumes < 2, `not done after ${resumes} resumes: ${s.run.error}`);
    await cli(home, ['resume', id, '--yes', '--allow-destructive']);
    resumes++;
  }
  const s = await show(id);
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  const out: Record<string, unknown> = { firstCode: first.code, resumes };
  if (c.compare) {
    const d = await slotDifferences(addr(c.compare[0]), addr(c.compare[1]), password);
    assert.equal(
      d.differ.length,
      0,
      `slots differ: ${d.differ.slice(0, 10).join(' ')} (source ${d.sourceKeys}, target ${d.targetKeys})`,
    );
    out.slotDiffs = d.differ.length;
  }
  record(c.name, out);
  return out;
}

test("file copy: the target master's host cut off from the runner (both directions) for 8 s mid-copy", async () => {
  const t = await masterOf(BASE + 100, 0);
  await faultCase({
    name: 'partition (both directions) during file copy',
    args: ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'],
    at: /copying \S+ -> /,
    fault: () => partition(hostOfPort(t.port), runner, 'runner'),
    holdMs: 8000,
    compare: [BASE, BASE + 100],
  });
});

test('file copy through a 2 Mbit/s link to the target host: finishes, 0 differences', async () => {
  const t = await masterOf(BASE + 100, 5461);
  await faultCase({
    name: 'rate limit 2mbit on target host during file copy',
    args: ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive'],
    at: /\[\d+\/\d+\] copy /,
    fault: () => rateLimit(hostOfPort(t.port), '2mbit'),
    holdMs: 0,
    holdToEnd: true,
    compare: [BASE, BASE + 100],
  });
});

test("manual failover: the replica's host drops what the runner sends (one direction) for 8 s as the failover step begins; one CLUSTER FAILOVER in the end", async () => {
  const m = await masterOf(BASE, 5461);
  const replicaPort = Number(m.replica.split(':')[1]);
  await faultCase({
    name: 'partition (runner -> host) during manual failover',
    args: ['run', 'manual-failover', '--inventory', inventory, '--param', `node=${m.address}`, '--yes'],
    at: /\[3\/\d+\] failover/,
    fault: () => partition(hostOfPort(replicaPort), runner, 'in'),
    holdMs: 8000,
  });
  const after = await masterOf(BASE, 5461);
  assert.equal(after.address, m.replica, 'the replica is master');
});

test("slot move (rebalance): the receiving master's host drops what it sends to the runner (one direction) for 8 s mid-move; every slot keeps its keys", async () => {
  // Skew the target first: one master gives 2000 slots to another, by the runbook itself
  // being asked to even out an uneven layout is what moves them back.
  const m0 = await masterOf(BASE + 100, 0);
  const m2 = await masterOf(BASE + 100, 16383);
  const { spawnSync } = await import('node:child_process');
  const ids = parseClusterNodes(
    String(
      spawnSync(
        'redis-cli',
        [
          '-h',
          m0.address.split(':')[0]!,
          '-p',
          String(m0.port),
          '-a',
          password,
          '--no-auth-warning',
          'CLUSTER',
          'NODES',
        ],
        { encoding: 'utf8' },
      ).stdout,
    ),
  );
  const id = (a: string) => ids.find((n) => n.address === a)!.id;
  const rs = spawnSync(
    'redis-cli',
    [
      '-a',
      password,
      '--no-auth-warning',
      '--cluster',
      'reshard',
      m0.address,
      '--cluster-from',
      id(m2.address),
      '--cluster-to',
      id(m0.address),
      '--cluster-slots',
      '2000',
      '--cluster-yes',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(rs.status, 0, rs.stderr);
  const { slotCounts } = await import('../support/faults.js');
  const before = await slotCounts(addr(BASE + 100), password);
  await faultCase({
    name: 'partition (host -> runner) during slot move',
    args: ['run', 'rebalance', '--inventory', inventory, '--param', 'cluster=target', '--yes', '--allow-destructive'],
    at: /\[2\/\d+\] rebalance/,
    fault: () => partition(hostOfPort(m2.port), runner, 'out'),
    holdMs: 8000,
  });
  const afterCounts = await slotCounts(addr(BASE + 100), password);
  assert.deepEqual(
    before.map((n, i) => (n !== afterCounts[i] ? i : -1)).filter((i) => i >= 0),
    [],
    'every slot holds the keys it held before',
  );
});

test("incremental sync under writes: a source master's host cut off from the runner (both directions) for 8 s; then 30% packet loss on it for 5 s; verify and per-slot counts find 0 differences", async () => {
  const m = await masterOf(BASE, 0);
  const writer = startWriter(addr(BASE), password, 'pt');
  let stopped = false;
  try {
    await faultCase({
      name: 'partition (both directions) then 30% loss during incremental sync',
      args: ['run', 'migrate-sync', '--inventory', inventory, '--yes', '--allow-destructive', '--param', 'max-lag=1mb'],
      at: /\[\d+\/\d+\] catch-up/,
      fault: () => partition(hostOfPort(m.port), runner, 'runner'),
      holdMs: 8000,
      // The writes stop when the cut ends, before the catch-up can finish (it wants 3 s of
      // small lag): the cut-over then has every write behind it. Then the link loses packets.
      during: async () => {
        await writer.stop();
        stopped = true;
        const heal = partition(hostOfPort(m.port), runner, { loss: 30 });
        heals.push(heal);
        await sleep(5000);
        heal();
        heals.splice(heals.indexOf(heal), 1);
      },
      compare: [BASE, BASE + 100],
    });
  } finally {
    if (!stopped) await writer.stop();
  }
});
