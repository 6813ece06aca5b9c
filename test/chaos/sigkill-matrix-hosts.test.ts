import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempStateDir } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import {
  chaseNotReached,
  killChain,
  keysPerSlot,
  repeatedActions,
  sentBeforeRun,
  slotDifferences,
  type AuditEntry,
} from '../support/failpoints.js';
import { nodeAddress, readHosts, type HostsInfo } from '../support/hosts.js';
import { failpointsOf } from '../../src/engine/failpoint.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';
import { test as plainTest } from 'node:test';
import { figures, test } from '../support/reliability.js';
import { stepKinds } from '../../src/steps/registry.js';

// The SIGKILL matrix of sigkill-matrix.test.ts (every failpoint of the plan, one
// chain of kill and resume, then runs for the points the chain did not reach),
// for the runbooks whose steps act on hosts, on a multi-host sandbox (--hosts 3:
// network namespaces, one sshd each): every stop, kill, start, file move and
// delete runs over ssh on the host the node lives on, and every file copy goes from
// one host to another, through this machine or, with --direct-copy, pushed by
// rsync on the source host straight to the target host. Each case gets a fresh
// sandbox; base ports alternate between 13000 and 13200 (a target uses base+100).

const BASES = [13000, 13200];
const KEYS = 2000;
const NAME = 'skh';

interface Env {
  home: string;
  inventory: string;
  password: string;
  base: number;
  net: HostsInfo;
}

interface Case {
  /** The runbook (a case is named after it, and after its variant when there are several). */
  runbook: string;
  sandbox: string[];
  params(e: Env): Promise<string[]>;
  /** A target must end up with the source's keys per slot. */
  target?: boolean;
  /** What the file copies of the run must look like (the audit's COPY lines), besides crossing hosts. */
  copies?: 'direct' | 'via-runner';
  /** Points of the plan this case's runs must never pass, and why (not re-armed in runs of their own). */
  absent?: Record<string, string>;
}

/** The source master owning `slot` that has a replica, as HOST:PORT (the node at `seed` answers). */
async function masterWithReplica(e: Env, seed: string, slot: number): Promise<string> {
  const nodes = parseClusterNodes((await withNode(seed, e.password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const m = nodes.find((n) => n.flags.includes('master') && n.slots.some(([a, b]) => a <= slot && slot <= b));
  assert.ok(m && nodes.some((n) => n.masterId === m.id), `a master with a replica owns slot ${slot}`);
  return m.address;
}

const CASES: Record<string, Case> = {
  // Without --direct-copy the inventory has no host-to-host trust (copyTo): copies go through this machine.
  'migrate-copy-files (through this machine)': {
    runbook: 'migrate-copy-files',
    sandbox: ['--target-masters', '3'],
    params: async () => [],
    target: true,
    copies: 'via-runner',
  },
  'migrate-copy-files (--direct-copy)': {
    runbook: 'migrate-copy-files',
    sandbox: ['--target-masters', '3', '--direct-copy'],
    params: async () => [],
    target: true,
    copies: 'direct',
    absent: {
      'copy:staged': 'a direct copy is one hop, source host to target host: nothing is staged on this machine',
    },
  },
  // Collecting master and collector named: source master 0 is on host1, target master 0 on host2,
  // so the one copy crosses hosts (left to the runbook, both might pick nodes on one host).
  'migrate-consolidate-reshard': {
    runbook: 'migrate-consolidate-reshard',
    sandbox: ['--target-masters', '4'],
    target: true,
    copies: 'via-runner',
    params: async (e) => [
      `via=${nodeAddress(e.net, e.base)}`,
      `collector=${nodeAddress(e.net, e.base + 100)}`,
      'restoreSource=true',
    ],
  },
  // A master with a replica: demoted first, then forgotten, stopped on its host and its files deleted there.
  'decommission-node': {
    runbook: 'decommission-node',
    sandbox: [],
    params: async (e) => [`node=${await masterWithReplica(e, nodeAddress(e.net, e.base), 10923)}`, 'deleteFiles=true'],
  },
  // The master killed through its host's service.kill, and started again through its service.start, both over ssh.
  'failover-drill (method=kill)': {
    runbook: 'failover-drill',
    sandbox: [],
    params: async (e) => [
      `node=${await masterWithReplica(e, nodeAddress(e.net, e.base), 5461)}`,
      'method=kill',
      'restore=true',
    ],
  },
};

const only = process.env.RR_SIGKILL_ONLY?.split(',');
const names = Object.keys(CASES).filter((n) => !only || only.includes(n) || only.includes(CASES[n]!.runbook));
const summary: Array<{
  case: string;
  points: number;
  killed: number;
  notReached: string[];
  absent: string[];
  ms: number;
  upMs: number;
}> = [];

type Plan = { runbook: string; steps: Array<{ id: string; kind: string; args: unknown }> };
type Show = {
  run: { status: string };
  steps: Array<{ stepId: string; status: string; output: any }>;
  audit: AuditEntry[];
};
const FLAGS = ['--yes', '--allow-destructive'];

/** Each COPY of the run crosses hosts, in one hop from the source host (direct) or two through this machine. */
function checkCopies(e: Env, audit: AuditEntry[], how: 'direct' | 'via-runner', where: string): number {
  const copies = audit.filter((a) => a.command === 'COPY' && a.ok);
  assert.ok(copies.length > 0, `${where}: no file copy recorded as done`);
  const addr = (h: string) => e.net.hosts.find((x) => x.name === h)!.address.replace(/\./g, '\\.');
  for (const c of copies) {
    const [from, to, , ...lines] = c.args;
    const [src, dst] = [from!.split(':')[0]!, to!.split(':')[0]!];
    assert.notEqual(src, dst, `${where}: a copy stayed on ${src}: ${c.args.slice(0, 2).join(' -> ')}`);
    if (how === 'direct') {
      assert.equal(lines.length, 1, `${where}: one hop: ${lines.join(' || ')}`);
      assert.match(lines[0]!, new RegExp(`^ssh .* -- \\S+@${addr(src)} 'rsync .* \\S+@${addr(dst)}:`), where);
    } else {
      assert.equal(lines.length, 2, `${where}: source host -> this machine -> target host: ${lines.join(' || ')}`);
      assert.match(lines[0]!, new RegExp(`^rsync .* \\S+@${addr(src)}:`), where);
      assert.match(lines[1]!, new RegExp(`^rsync .* \\S+@${addr(dst)}:`), where);
    }
  }
  return copies.length;
}

/** As sigkill-matrix.test.ts's chainPass: a fresh plan, one chain, and what every run must show. */
async function chainPass(e: Env, c: Case, params: string[], pass: number, armed?: string[]) {
  const planFile = join(e.home, `plan-${pass}.json`);
  const planned = await cli(e.home, ['plan', c.runbook, '--inventory', e.inventory, ...params, '--out', planFile]);
  assert.equal(planned.code, 0, planned.out);
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  const points = failpointsOf(plan, stepKinds);
  const chain = await killChain(
    e.home,
    ['run', '--plan', planFile, ...FLAGS],
    FLAGS,
    armed ? armed.filter((p) => points.includes(p)) : points,
    join(e.home, `hits-${pass}`),
  );
  const showOut = (await cli(e.home, ['show', chain.runId, '--json'])).stdout;
  writeFileSync(join(e.home, `show-${pass}.json`), showOut);
  const show = JSON.parse(showOut) as Show;
  const where = `${c.runbook} run ${chain.runId} (state ${e.home}), killed at ${chain.killed.length} points (${chain.killed.join(' ')})`;
  assert.equal(chain.last.code, 0, `${where}: the last resume failed:\n${chain.last.out.slice(-4000)}`);
  assert.equal(show.run.status, 'succeeded', where);
  assert.ok(
    show.steps.every((s) => s.status === 'done'),
    `${where}: every step done`,
  );
  const kindOf = (id: string) => plan.steps.find((p) => p.id === id)?.kind;
  for (const s of show.steps.filter((x) => kindOf(x.stepId) === 'verify-data')) {
    assert.equal(
      s.output.differedPerRound.at(-1),
      0,
      `${where}: ${s.stepId} found differences: ${JSON.stringify(s.output)}`,
    );
  }
  assert.deepEqual(repeatedActions(show.audit), [], `${where}: destructive or non-idempotent commands journaled twice`);
  assert.deepEqual(
    sentBeforeRun(show.audit, chain.attempts),
    [],
    `${where}: commands sent before the runner recorded entering run`,
  );
  // Host commands went to the hosts, not to this machine: a step that acts on a node's files reached its host over ssh.
  assert.ok(
    show.audit.some((a) => a.command === 'HOST' && e.net.hosts.some((h) => a.target.includes(h.name))),
    `${where}: no command ran on a host of the sandbox`,
  );
  if (c.copies) checkCopies(e, show.audit, c.copies, where);
  return { points, chain, where };
}

async function matrixCase(name: string, c: Case, base: number, t: { diagnostic(s: string): void }): Promise<void> {
  const started = Date.now();
  const home = tempStateDir('rr-sigkill-hosts-');
  const up = await cli(home, [
    'sandbox',
    'up',
    '--name',
    NAME,
    '--hosts',
    '3',
    '--base-port',
    String(base),
    '--keys',
    String(KEYS),
    ...c.sandbox,
  ]);
  assert.equal(up.code, 0, up.out);
  const upMs = Date.now() - started;
  const net = readHosts(home, NAME);
  const e: Env = {
    home,
    inventory: up.stdout.trim().split('\n').pop()!,
    password: readFileSync(join(net.dir, 'password'), 'utf8').trim(),
    base,
    net,
  };
  let passed = false;
  try {
    const source = nodeAddress(net, base);
    const target = c.target ? nodeAddress(net, base + 100) : '';
    const sourceBefore = await keysPerSlot(source, e.password);
    assert.equal(
      sourceBefore.reduce((a, b) => a + b, 0),
      KEYS,
      'the source holds the seeded keys',
    );
    const params = (await c.params(e)).flatMap((p) => ['--param', p]);
    const first = await chainPass(e, c, params, 1);
    assert.deepEqual(
      first.chain.notReached.filter((p) => !p.includes(':')),
      [],
      `${first.where}: phase boundaries never reached`,
    );
    const absent = Object.keys(c.absent ?? {});
    assert.deepEqual(
      first.chain.killed.filter((p) => absent.includes(p)),
      [],
      `${first.where}: passed points this case must not reach`,
    );
    for (const p of absent) t.diagnostic(`ABSENT ${name} ${p}: not passed, as expected: ${c.absent![p]}`);
    const { killed, notReached } = await chaseNotReached(
      name,
      { killed: first.chain.killed, notReached: first.chain.notReached.filter((p) => !absent.includes(p)) },
      (n, points) => chainPass(e, c, params, n, points),
      (line) => t.diagnostic(line),
    );
    const sourceDiff = slotDifferences(sourceBefore, await keysPerSlot(source, e.password));
    const targetDiff = c.target ? slotDifferences(sourceBefore, await keysPerSlot(target, e.password)) : [];
    figures(`${name}: SIGKILL at each of its ${first.points.length} failpoints on 3 hosts, resumed`, {
      differences: sourceDiff.length + targetDiff.length,
    });
    assert.deepEqual(sourceDiff, [], `${name}: source keys per slot changed`);
    assert.deepEqual(targetDiff, [], `${name}: target keys per slot differ from the source's`);

    const ms = Date.now() - started;
    summary.push({ case: name, points: first.points.length, killed: killed.length, notReached, absent, ms, upMs });
    t.diagnostic(
      `${name}: ${first.points.length} points, ${killed.length} killed and resumed (${first.chain.killed.length} in the first run), ${notReached.length} not reached${absent.length ? ` (${absent.length} not on its path)` : ''}, ${Math.round(ms / 1000)} s (sandbox up ${Math.round(upMs / 1000)} s)`,
    );
    passed = true;
  } finally {
    await cli(home, ['sandbox', 'down', '--name', NAME]);
    // A failed case keeps its state (plans, journal, show output) for a look; a passed one leaves nothing in /tmp.
    if (passed) rmSync(home, { recursive: true, force: true });
  }
}

names.forEach((name, i) => {
  test(`${name} on 3 hosts: killed (SIGKILL) at every failpoint of its plan and resumed each time: succeeds, same keys per slot, no action repeated`, (t) =>
    matrixCase(name, CASES[name]!, BASES[i % BASES.length]!, t));
});

plainTest('matrix summary (3 hosts)', (t) => {
  for (const s of summary)
    t.diagnostic(
      `${s.case}: ${s.points} points, ${s.killed} killed, not reached: ${s.notReached.join(' ') || 'none'}${s.absent.length ? `, not on its path: ${s.absent.join(' ')}` : ''}, ${Math.round(s.ms / 1000)} s`,
    );
  if (process.env.RR_SIGKILL_SUMMARY) writeFileSync(process.env.RR_SIGKILL_SUMMARY, JSON.stringify(summary, null, 2));
});
