import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { cli, tempStateDir } from '../support/cli.js';
import { hostOfNode, readHosts, type HostsInfo } from '../support/hosts.js';

// 3 hosts (network namespaces with their own sshd); source 11200-11205 and target
// 11300-11305, target master i one host further than the source master with its slots:
// every RDB copy goes from one host to another.
const BASE = 11200;
const home = tempStateDir('rr-multihost-copy-');
let net: HostsInfo;
let inventory = '';
let password = '';

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'mc',
    '--hosts',
    '3',
    '--direct-copy',
    '--base-port',
    String(BASE),
    '--keys',
    '3000',
    '--target-masters',
    '3',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inventory = r.stdout.trim().split('\n').pop()!;
  net = readHosts(home, 'mc');
  password = readFileSync(join(net.dir, 'password'), 'utf8').trim();
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'mc']);
});

const TARGET_MASTERS = [0, 1, 2].map((i) => BASE + 100 + i);

async function dbsize(port: number): Promise<number> {
  const r = new Redis({
    host: hostOfNode(net, port).address,
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    commandTimeout: 10_000,
  });
  r.on('error', () => {});
  await r.connect();
  try {
    return Number(await r.call('DBSIZE'));
  } finally {
    r.disconnect();
  }
}
const targetKeys = async () => (await Promise.all(TARGET_MASTERS.map(dbsize))).reduce((a, b) => a + b, 0);

interface Audit {
  command: string;
  args: string[];
}
async function shown(id: string) {
  return JSON.parse((await cli(home, ['show', id, '--json'])).stdout) as {
    run: { status: string };
    audit: Audit[];
    steps: Array<{ stepId: string; output: { differedPerRound?: number[]; compared?: number } }>;
  };
}
const runId = (out: string) => /^run (\S+):/m.exec(out)![1]!;

test('direct copy: rsync runs on each source host and pushes to the target host in one hop; the target holds every key', async () => {
  const r = await cli(home, ['run', 'migrate-copy-files', '--inventory', inventory, '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);
  const show = await shown(runId(r.stdout));
  assert.equal(show.run.status, 'succeeded');
  const copies = show.audit.filter((a) => a.command === 'COPY');
  assert.equal(copies.length, 3);
  for (const c of copies) {
    const [from, to, , ...lines] = c.args;
    assert.notEqual(from!.split(':')[0], to!.split(':')[0], 'each copy crosses hosts');
    assert.equal(lines.length, 1, `one hop: ${lines.join(' || ')}`);
    const src = net.hosts.find((h) => h.name === from!.split(':')[0])!;
    const dst = net.hosts.find((h) => h.name === to!.split(':')[0])!;
    // ssh to the source host, whose rsync sends to the target host's address.
    assert.match(
      lines[0]!,
      new RegExp(
        `^ssh .* -- root@${src.address.replace(/\./g, '\\.')} 'rsync .* root@${dst.address.replace(/\./g, '\\.')}:`,
      ),
    );
  }
  assert.equal(await targetKeys(), 3000);
  assert.deepEqual(show.steps.find((s) => s.stepId === 'compare')!.output.differedPerRound, [0]);
});

test('without copyTo the same migration goes through this machine (two rsync hops) and carries keys written since', async () => {
  // The inventory without host-to-host trust, the password file referred to where it is.
  const doc = parse(readFileSync(inventory, 'utf8'));
  for (const h of Object.values(doc.hosts) as Array<Record<string, unknown>>) delete h.copyTo;
  for (const c of Object.values(doc.clusters) as Array<{ auth: { password: { file: string } } }>)
    c.auth.password.file = join(net.dir, 'password');
  const viaRunner = join(home, 'via-runner.yaml');
  writeFileSync(viaRunner, stringify(doc));

  const cluster = new Cluster([{ host: hostOfNode(net, BASE).address, port: BASE }], {
    redisOptions: { password },
    enableOfflineQueue: true,
  });
  try {
    for (let i = 0; i < 200; i++) await cluster.set(`extra:${i}`, String(i));
  } finally {
    cluster.disconnect();
  }

  const r = await cli(home, ['run', 'migrate-copy-files', '--inventory', viaRunner, '--yes', '--allow-destructive']);
  assert.equal(r.code, 0, r.out);
  const show = await shown(runId(r.stdout));
  const copies = show.audit.filter((a) => a.command === 'COPY');
  assert.equal(copies.length, 3);
  for (const c of copies) {
    const lines = c.args.slice(3);
    assert.equal(lines.length, 2, 'source host -> this machine -> target host');
    assert.match(lines[0]!, /^rsync .* root@10\.[\d.]+:\S+ \S+redis-runbook-copy-/);
    assert.match(lines[1]!, /^rsync .*redis-runbook-copy-\S+ root@10\.[\d.]+:/);
  }
  assert.equal(await targetKeys(), 3200);
  assert.deepEqual(show.steps.find((s) => s.stepId === 'compare')!.output.differedPerRound, [0]);
});
