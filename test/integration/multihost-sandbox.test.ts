import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { cli, CLI } from '../support/cli.js';
import { healAll, hostOfNode, partition, heal, readHosts, sshTo, loss, type HostsInfo } from '../support/hosts.js';
import { networkNames } from '../../src/sandbox/netns.js';
import { isListening } from '../../src/sandbox/ports.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

// 3 hosts (network namespaces), source 11000-11005 and target 11100-11103 spread over them.
const BASE = 11000;
const home = mkdtempSync(join(tmpdir(), 'rr-multihost-'));
let net: HostsInfo;
let password = '';

const links = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

async function nodesView(address: string, port: number): Promise<string> {
  const r = new Redis({
    host: address,
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    commandTimeout: 5000,
  });
  r.on('error', () => {});
  await r.connect();
  try {
    return String(await r.call('CLUSTER', 'NODES'));
  } finally {
    r.disconnect();
  }
}

before(async () => {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    'mh',
    '--hosts',
    '3',
    '--base-port',
    String(BASE),
    '--keys',
    '500',
    '--target-masters',
    '2',
  ]);
  if (r.code !== 0) throw new Error(`sandbox up --hosts 3 failed:\n${r.out}`);
  net = readHosts(home, 'mh');
  password = readFileSync(join(net.dir, 'password'), 'utf8').trim();
});
after(async () => {
  if (net) healAll(net);
  await cli(home, ['sandbox', 'down', '--name', 'mh']);
});

test("each host is its own namespace with its own address; the nodes bind and announce their host's address", async () => {
  assert.equal(net.hosts.length, 3);
  assert.equal(new Set(net.hosts.map((h) => h.address)).size, 3);
  assert.match(net.subnet, /^10\.\d+\.\d+\.0\/24$/);
  for (const h of net.hosts) {
    assert.ok(h.address.startsWith(net.subnet.replace(/0\/24$/, '')), h.address);
    assert.ok(
      namespaces()
        .split('\n')
        .some((l) => l.startsWith(`${h.netns}`)),
      h.netns,
    );
    assert.ok(h.vethRoot.length <= 15 && net.bridge.length <= 15);
    // Nothing routes out of a host: only its own subnet (no default route).
    const routes = execFileSync('ip', ['-n', h.netns, '-4', 'route'], { encoding: 'utf8' });
    assert.doesNotMatch(routes, /default/);
  }
  const all = net.hosts.flatMap((h) => h.nodes).sort((a, b) => a - b);
  assert.deepEqual(all, [11000, 11001, 11002, 11003, 11004, 11005, 11100, 11101, 11102, 11103]);
  // Every node, seen from a source node: at its host's address, not loopback.
  const view = parseClusterNodes(await nodesView(hostOfNode(net, 11000).address, 11000));
  assert.equal(view.length, 6);
  for (const n of view) {
    const port = Number(n.address.slice(n.address.lastIndexOf(':') + 1));
    assert.equal(n.address, `${hostOfNode(net, port).address}:${port}`);
  }
  // A master and its replica never share a host.
  for (const n of view.filter((x) => x.masterId !== undefined)) {
    const master = view.find((m) => m.id === n.masterId)!;
    assert.notEqual(
      n.address.split(':')[0],
      master.address.split(':')[0],
      `${n.address} replicates ${master.address} on the same host`,
    );
  }
  // Nothing listens on this machine's loopback for those ports.
  assert.equal(await isListening(11000, 500), false);
  const inv = readFileSync(join(net.dir, 'inventory.yaml'), 'utf8');
  for (const h of net.hosts)
    assert.match(
      inv,
      new RegExp(`${h.name}:\\n    transport: ssh\\n    addresses:\\n      - ${h.address.replace(/\./g, '\\.')}`),
    );
  assert.doesNotMatch(inv, /copyTo/, 'no host-to-host trust unless --direct-copy');
  const st = JSON.parse((await cli(home, ['sandbox', 'status', '--json'])).stdout);
  assert.deepEqual(
    st[0].clusters.map((c: { running: number }) => c.running),
    [6, 4],
  );
});

test("ssh to each host lands in that host's namespace, where its nodes' files are", () => {
  for (const h of net.hosts) {
    const r = sshTo(net, h, 'ip netns identify $$; ip -4 -o addr show dev eth0');
    assert.equal(r.code, 0, r.stderr);
    const [ns, addr] = r.stdout.trim().split('\n');
    assert.equal(ns, h.netns);
    assert.match(addr!, new RegExp(`inet ${h.address.replace(/\./g, '\\.')}/24`));
    for (const p of h.nodes) assert.ok(existsSync(join(net.dir, 'hosts', h.name, 'nodes', String(p), 'redis.conf')));
  }
});

test('fault helpers: a host cut off (link down, or inbound dropped) is unreachable, and reachable again once healed', async () => {
  const h = net.hosts[0]!;
  const port = h.nodes[0]!;
  assert.equal(await isListening(port, 1000, h.address), true);
  partition(h, 'both');
  assert.equal(await isListening(port, 1000, h.address), false);
  heal(h);
  assert.equal(await isListening(port, 3000, h.address), true);
  partition(h, 'in', net.runnerAddress);
  assert.equal(await isListening(port, 1000, h.address), false);
  // Only the runner is cut off: the other hosts still reach it.
  const other = net.hosts[1]!;
  assert.equal(
    spawnSync('ip', ['netns', 'exec', other.netns, 'bash', '-c', `exec 3<>/dev/tcp/${h.address}/${port}`], {
      timeout: 5000,
    }).status,
    0,
  );
  heal(h);
  loss(h, 100);
  assert.equal(await isListening(port, 1000, h.address), false);
  heal(h);
  // 30% each way: some connects still succeed (tried 20 times; all failing would be 0.7^40).
  loss(h, 30);
  let ok = 0;
  for (let i = 0; i < 20; i++) if (await isListening(port, 300, h.address)) ok++;
  assert.ok(ok > 0 && ok <= 20, `${ok}/20 connects`);
  heal(h);
  assert.equal(await isListening(port, 3000, h.address), true);
});

test('usage errors: --hosts out of range, --direct-copy without --hosts; nothing is created', async () => {
  for (const [args, re] of [
    [['--hosts', '1'], /--hosts must be an integer from 2 to 8/],
    [['--hosts', '9'], /--hosts must be an integer from 2 to 8/],
    [['--direct-copy'], /--direct-copy needs --hosts/],
  ] as const) {
    const r = await cli(home, ['sandbox', 'up', '--name', 'bad', '--base-port', '11400', ...args]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.stderr, re);
    assert.ok(!existsSync(join(home, 'sandbox', 'bad')));
  }
});

test('without root: a clear error, non-zero exit, nothing created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-multihost-nobody-'));
  chmodSync(dir, 0o777);
  const userHome = join(dir, 'home');
  const r = spawnSync(
    'setpriv',
    [
      '--reuid=nobody',
      '--regid=nogroup',
      '--clear-groups',
      process.execPath,
      CLI,
      'sandbox',
      'up',
      '--name',
      'nr',
      '--hosts',
      '2',
      '--base-port',
      '11400',
    ],
    { env: { ...process.env, REDIS_RUNBOOK_HOME: userHome, NO_COLOR: '1' }, encoding: 'utf8' },
  );
  assert.notEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /needs root: it creates network namespaces/);
  assert.match(r.stderr, /run it as root .* or drop --hosts/);
  assert.ok(!existsSync(join(userHome, 'sandbox', 'nr')), 'no sandbox directory');
  assert.doesNotMatch(namespaces(), new RegExp(networkNames(join(userHome, 'sandbox', 'nr')).id));
});

test('a failed up (a link in the way) is cleaned up by down: no namespace, link or process left', async () => {
  const dir = join(home, 'sandbox', 'half');
  const names = networkNames(dir);
  // host2's root-side veth name is taken: up fails after the bridge and host1 exist.
  execFileSync('ip', ['link', 'add', names.vethRoot(1), 'type', 'bridge']);
  try {
    const r = await cli(home, [
      'sandbox',
      'up',
      '--name',
      'half',
      '--hosts',
      '2',
      '--base-port',
      '11620',
      '--keys',
      '0',
    ]);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.stderr, /sandbox down --name half/);
    assert.match(namespaces(), new RegExp(names.netns(0)));
  } finally {
    const d = await cli(home, ['sandbox', 'down', '--name', 'half']);
    assert.equal(d.code, 0, d.out);
  }
  assert.doesNotMatch(namespaces(), new RegExp(names.id));
  assert.doesNotMatch(links(), new RegExp(names.id));
  assert.ok(!existsSync(dir));
});

test('down removes every namespace, link and process of the sandbox', async () => {
  const pids = net.hosts.flatMap((h) =>
    execFileSync('ip', ['netns', 'pids', h.netns], { encoding: 'utf8' }).trim().split('\n').map(Number),
  );
  assert.ok(pids.length >= 10 + 3, `nodes and sshds run in the namespaces (${pids.length})`);
  const r = await cli(home, ['sandbox', 'down', '--name', 'mh']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /stopped 10 nodes/);
  for (const h of net.hosts) assert.doesNotMatch(namespaces(), new RegExp(h.netns));
  for (const dev of [net.bridge, ...net.hosts.map((h) => h.vethRoot)])
    assert.doesNotMatch(links(), new RegExp(`: ${dev}[@:]`));
  // Gone, or a zombie waiting for a parent that reaps (in a container, init may never).
  const alive = (pid: number) =>
    existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} is gone`);
  assert.ok(!existsSync(net.dir));
});
