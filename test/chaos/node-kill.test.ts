import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, runIdOf, tempStateDir } from '../support/cli.js';
import { roles, withNode } from '../support/cluster.js';
import {
  journaledTwice,
  killNode,
  record,
  slotCounts,
  slotDifferences,
  startCli,
  startNode,
  until,
  type AuditRow,
  isNodeStart,
} from '../support/faults.js';
import { startWriter } from '../support/writer.js';
import { test } from '../support/reliability.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// kill -9 of a redis node in the middle of a step. Source 14500-14505, target 14600-14605
// (3 masters x 1 replica each), sshd 14599: copies go over real ssh on loopback.
const BASE = 14500;
const home = tempStateDir('rr-chaos-');
let inventory = '';
let password = '';
let dir = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'kill',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '3',
    '--seed-target',
    '--ssh',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  dir = dirname(inventory);
  password = readFileSync(join(dir, 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'kill']);
});

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
const show = async (id: string) =>
  JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as {
    run: { status: string; error: string | null };
    audit: Array<AuditRow & { ok: boolean; write: boolean }>;
    steps: Array<{ stepId: string; status: string; output: any }>;
  };

/** Commands that must never run twice for one run: saves of one master, stops, moves of files, failovers. */
const onceOnly = (a: AuditRow) =>
  a.ok !== false &&
  (a.command === 'BGSAVE' ||
    (a.command === 'CLUSTER' && a.args[0] === 'FAILOVER') ||
    (a.command === 'HOST' && (/^(kill|mv) /.test(a.args[0] ?? '') || isNodeStart(a.args[0] ?? ''))) ||
    a.command === 'FLUSHALL' ||
    a.command === 'SHUTDOWN');

/** A run that is not done: resumed until it finishes (each attempt must end cleanly). */
async function resumeToEnd(id: string, extra: string[] = []): Promise<number> {
  let attempts = 0;
  for (;;) {
    const s = await show(id);
    if (s.run.status === 'succeeded') return attempts;
    assert.ok(['failed', 'waiting', 'running'].includes(s.run.status), `resumable state, got ${s.run.status}`);
    assert.ok(attempts < 3, `still not done after ${attempts} resumes: ${s.run.error}`);
    const r = await cli(home, ['resume', id, '--yes', '--allow-destructive', ...extra]);
    attempts++;
    if (r.code !== 0) assert.match(r.out, /E_[A-Z_]+/, `a failed resume names its error:\n${r.out}`);
  }
}

/** Wait until a master has a replica that is linked to it and at its replication offset. */
async function replicaCaughtUp(master: string): Promise<void> {
  await until(
    `a replica of ${master} linked and caught up`,
    async () => {
      const info = (await withNode(master, password, (r) => r.call('INFO', 'replication'))) as string;
      const offset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
      return (
        /slave\d+:.*state=online,offset=(\d+)/.test(info) &&
        [...info.matchAll(/slave\d+:.*state=online,offset=(\d+)/g)].some((m) => offset - Number(m[1]) < 1_000_000)
      );
    },
    60_000,
  );
}

/**
 * Restart a killed node and wait until the cluster is whole again (every node answers, state
 * ok). The sandbox's nodes keep no files (save ""), so a master must not come back before its
 * replica took its slots: it would return empty and its replica would sync that emptiness.
 */
async function restart(port: number, anyPort: number): Promise<void> {
  const replaced = async () => {
    const nodes = parseClusterNodes((await withNode(anyPort, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
    return !nodes.some((n) => portOf(n.address) === port && n.flags.includes('master') && n.slots.length > 0);
  };
  try {
    await until(`no live master at ${port} owns slots`, replaced, 30_000);
  } catch {
    // Redis's own election did not happen (seen once in three runs: a replica may judge
    // its data too old to stand). The case is about what the runbook does once the
    // master is replaced, so do what an operator would: force the replica's takeover.
    const nodes = parseClusterNodes((await withNode(anyPort, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
    const dead = nodes.find((n) => portOf(n.address) === port)!;
    const replica = nodes.find((n) => n.masterId === dead.id && !n.flags.includes('fail'));
    if (!replica && (await adoptStranded(port, anyPort))) return finishRestart(port, anyPort);
    assert.ok(
      replica,
      `the killed master ${port} has no live replica to take over; the cluster as ${anyPort} sees it:\n${nodes.map((n) => `${n.address} ${n.id.slice(0, 8)} ${n.flags.join(',')} ${n.masterId?.slice(0, 8) ?? '-'}`).join('\n')}`,
    );
    console.log(`no automatic failover of ${port} in 30 s: CLUSTER FAILOVER FORCE on ${replica.address}`);
    await withNode(replica.address, password, (r) => r.call('CLUSTER', 'FAILOVER', 'FORCE'));
    await until(`no live master at ${port} owns slots`, replaced, 30_000);
  }
  await finishRestart(port, anyPort);
}

/**
 * The killed master's replica was promoted, yet the others still see slots on the dead node:
 * it died right after taking slots (SETSLOT NODE), before its replica heard of them (seen once
 * in CI, rebalance case). Redis leaves those slots down. `check` must say so and name the
 * remedy; the test then does what it says, as an operator would: the slots go to the live
 * master that holds their keys (the promoted replica). Returns false when that is not the case.
 */
async function adoptStranded(port: number, anyPort: number): Promise<boolean> {
  const view = parseClusterNodes((await withNode(anyPort, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const dead = view.find((n) => portOf(n.address) === port && n.flags.includes('fail') && n.slots.length > 0);
  if (!dead) return false;
  const slots = dead.slots.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
  const live = view.filter((n) => n.flags.includes('master') && !n.flags.includes('fail') && n.id !== dead.id);
  let heir: (typeof live)[number] | undefined;
  for (const m of live) {
    const counts = (await withNode(m.address, password, (r) =>
      Promise.all(slots.map((s) => r.call('CLUSTER', 'COUNTKEYSINSLOT', s))),
    )) as number[];
    if (counts.some((c) => Number(c) > 0)) {
      assert.equal(heir, undefined, `keys of the stranded slots on two masters: ${heir?.address}, ${m.address}`);
      heir = m;
    }
  }
  if (!heir) return false;
  const cluster = anyPort >= BASE + 100 ? 'target' : 'source';
  const r = await cli(home, ['check', '--inventory', inventory, '--cluster', cluster]);
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /flagged fail and has no live replica.*CLUSTER SETSLOT/, r.out);
  console.log(
    `${port} died with slots its replica never heard of; giving ${slots.length} slots to ${heir.address}, which holds their keys`,
  );
  await withNode(heir.address, password, async (r) => {
    for (const s of slots) await r.call('CLUSTER', 'SETSLOT', s, 'NODE', heir!.id);
  });
  await until(
    `no live master at ${port} owns slots`,
    async () => {
      const nodes = parseClusterNodes((await withNode(anyPort, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
      return !nodes.some((n) => portOf(n.address) === port && n.slots.length > 0);
    },
    30_000,
  );
  return true;
}

/** Start the killed node again and wait until the cluster is whole, with it a replica. */
async function finishRestart(port: number, anyPort: number): Promise<void> {
  await startNode(dir, port, password);
  // Whole again means agreed, too: the node came back as a replica, by its own account and in
  // the others' view. Before that, a runbook's fresh look at the cluster may still see it as the
  // master it was (a resume then meets a node that refuses SETSLOT, E_NODE_DEMOTED).
  await until(
    `cluster ok after ${port} restarted, and it a replica in every view`,
    async () => {
      const text = (await withNode(anyPort, password, (r) => r.call('CLUSTER', 'NODES'))) as string;
      const info = (await withNode(port, password, (r) => r.call('CLUSTER', 'INFO'))) as string;
      const own = parseClusterNodes((await withNode(port, password, (r) => r.call('CLUSTER', 'NODES'))) as string).find(
        (n) => n.flags.includes('myself'),
      );
      const seen = parseClusterNodes(text).find((n) => portOf(n.address) === port);
      return (
        !/fail/.test(text) &&
        /cluster_state:ok/.test(info) &&
        !!own?.flags.includes('slave') &&
        !!seen?.flags.includes('slave')
      );
    },
    60_000,
  );
}

test('migrate-copy-files: a source master killed (kill -9) during the copy; the copy comes from the frozen save, the target ends equal to the source slot by slot', async () => {
  const { masterOfSlot0: victim } = await roles(BASE, password, 0);
  const run = startCli(home, ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive']);
  await run.waitFor(/copying \S+ -> /);
  killNode(dir, portOf(victim));
  const first = await run.done;
  const id = runIdOf(first);
  if (first.code !== 0) assert.match(first.out, /E_[A-Z_]+/, first.out);
  await restart(portOf(victim), BASE + 1);
  const resumes = await resumeToEnd(id);
  const s = await show(id);
  assert.equal(s.run.status, 'succeeded');
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  assert.equal(s.audit.filter((a) => a.command === 'COPY' && a.ok !== false).length, 3, 'one copy per shard');
  const d = await slotDifferences(BASE + 1, BASE + 101, password);
  assert.equal(d.differ.length, 0, `slots differ: ${d.differ.slice(0, 10).join(' ')}`);
  assert.equal(d.targetKeys, 3000);
  assert.deepEqual(s.steps.find((x) => x.stepId === 'compare')!.output.differedPerRound.at(-1), 0);
  record('kill -9 source master during copy (migrate-copy-files)', {
    firstCode: first.code,
    resumes,
    slotDiffs: d.differ.length,
    verifyDiffs: 0,
  });
});

test('migrate-sync: a source master killed (kill -9) during the incremental sync under writes; the sync follows its promoted replica, verify and the per-slot counts find 0 differences', async () => {
  const { masterOfSlot0: victim } = await roles(BASE + 1, password, 5461);
  const writer = startWriter(BASE + 1, password, 'nk');
  const run = startCli(home, [
    'run',
    'migrate-sync',
    '--inventory',
    inventory,
    '--yes',
    '--allow-destructive',
    '--param',
    'max-lag=1mb',
  ]);
  await run.waitFor(/\[\d+\/\d+\] catch-up/);
  killNode(dir, portOf(victim));
  // The writer goes on through the failover, then stops before the cut-over: the target must
  // hold every write the source kept.
  await new Promise((r) => setTimeout(r, 1500));
  const acked = await writer.stop();
  assert.ok(acked > 0);
  const first = await run.done;
  const id = runIdOf(first);
  if (first.code !== 0) assert.match(first.out, /E_[A-Z_]+/, first.out);
  await restart(portOf(victim), BASE + 2);
  const resumes = await resumeToEnd(id);
  const s = await show(id);
  assert.equal(s.run.status, 'succeeded', s.run.error ?? '');
  assert.equal(s.steps.find((x) => x.stepId === 'report')!.output.verify.differ, 0);
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  const d = await slotDifferences(BASE + 2, BASE + 102, password);
  assert.equal(
    d.differ.length,
    0,
    `slots differ: ${d.differ.slice(0, 10).join(' ')} (source ${d.sourceKeys}, target ${d.targetKeys})`,
  );
  record('kill -9 source master during incremental sync (migrate-sync)', {
    firstCode: first.code,
    resumes,
    slotDiffs: d.differ.length,
    verifyDiffs: 0,
    writes: acked,
  });
});

test('rebalance: the receiving master killed (kill -9) in the middle of the slot moves; its replica takes over, resume finishes, every slot keeps its keys', async () => {
  // Skew the target: master 2 gives 3000 slots to master 0.
  const nodes = parseClusterNodes(
    (await withNode(BASE + 100, password, (r) => r.call('CLUSTER', 'NODES'))) as string,
  ).filter((n) => n.flags.includes('master') && n.slots.length);
  const byPort = (p: number) => nodes.find((n) => n.slots.some(([a, b]) => a <= p && p <= b))!;
  const from = byPort(10923);
  const to = byPort(0);
  const rs = spawnSync(
    'redis-cli',
    [
      '-a',
      password,
      '--no-auth-warning',
      '--cluster',
      'reshard',
      `127.0.0.1:${BASE + 100}`,
      '--cluster-from',
      from.id,
      '--cluster-to',
      to.id,
      '--cluster-slots',
      '3000',
      '--cluster-yes',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(rs.status, 0, rs.stderr);
  const before = await slotCounts(BASE + 100, password);
  // The receiver is the master left under its share (the one that gave slots away).
  const receiver = from;
  // The case is about a master whose replica takes over: wait until that replica is linked
  // and caught up (the cases before this one restarted nodes and loaded data).
  await replicaCaughtUp(receiver.address);
  const run = startCli(home, [
    'run',
    'rebalance',
    '--inventory',
    inventory,
    '--param',
    'cluster=target',
    '--yes',
    '--allow-destructive',
  ]);
  await run.waitFor(/\[\d+\/\d+\] \S+ (Move|Even|Rebalance)/i);
  await new Promise((r) => setTimeout(r, 300));
  killNode(dir, portOf(receiver.address));
  const first = await run.done;
  const id = runIdOf(first);
  // A failed move names the node that went away (its own connection closed, or the source's
  // MIGRATE to it failed), not a bare client error.
  if (first.code !== 0)
    assert.match(
      first.out,
      new RegExp(
        `E_NODE_LOST: \\S+ stopped answering in the middle of a slot move|E_MIGRATE: .* to ${receiver.address} failed`,
      ),
      first.out,
    );
  await restart(portOf(receiver.address), BASE + 100);
  const resumes = await resumeToEnd(id);
  const s = await show(id);
  assert.equal(s.run.status, 'succeeded', s.run.error ?? '');
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  const afterCounts = await slotCounts(BASE + 100, password);
  const lost = before.map((n, i) => (n !== afterCounts[i] ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(lost, [], `every slot holds the keys it held before (${lost.length} slots differ)`);
  record('kill -9 receiving master during rebalance', { firstCode: first.code, resumes, slotDiffs: lost.length });
});

test('manual-failover: the replica killed (kill -9) while replica-in-sync runs; the run stops without a failover, resume after its restart fails over once', async () => {
  const { masterOfSlot0: master, replicaOfIt: replica } = await roles(BASE, password, 10923);
  const run = startCli(home, [
    'run',
    'manual-failover',
    '--inventory',
    inventory,
    '--param',
    `node=${master}`,
    '--yes',
  ]);
  await run.waitFor(/\[2\/\d+\] replica-in-sync/);
  killNode(dir, portOf(replica));
  const first = await run.done;
  const id = runIdOf(first);
  const mid = await show(id);
  if (first.code !== 0) {
    assert.match(first.out, /E_[A-Z_]+/, first.out);
    assert.ok(['failed', 'waiting'].includes(mid.run.status), mid.run.status);
  }
  await restart(portOf(replica), BASE);
  const resumes = await resumeToEnd(id);
  const after = await roles(BASE, password, 10923);
  assert.equal(after.masterOfSlot0, replica, 'the replica is master');
  assert.equal(after.replicaOfIt, master, 'the old master is its replica');
  const s = await show(id);
  const sent = s.audit.filter((a) => a.command === 'CLUSTER' && a.args[0] === 'FAILOVER' && a.ok !== false);
  assert.equal(sent.length, 1, 'CLUSTER FAILOVER sent once');
  assert.deepEqual(journaledTwice(s.audit, onceOnly), []);
  record('kill -9 replica during replica-in-sync (manual-failover)', {
    firstCode: first.code,
    resumes,
    failovers: sent.length,
  });
});
