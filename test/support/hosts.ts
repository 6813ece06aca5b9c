import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxHost, SandboxMeta, SandboxNetwork } from '../../src/sandbox/metadata.js';

/**
 * The hosts of a `sandbox up --hosts N` sandbox, read from its sandbox.json,
 * and the plumbing to hurt them: every fault is applied to the host's own
 * veth or inside its own network namespace, so it touches nothing outside
 * the sandbox, and deleting the namespace (`sandbox down`) removes it too.
 *
 *   const net = readHosts(home, 'mh');
 *   partition(net.hosts[0], 'both');   // the host's link goes down
 *   heal(net.hosts[0]);                  // everything undone
 */
export type HostInfo = SandboxHost;
export type HostsInfo = SandboxNetwork & { dir: string };

export function readHosts(stateDir: string, name: string): HostsInfo {
  const dir = join(stateDir, 'sandbox', name);
  const meta = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as SandboxMeta;
  if (!meta.network) throw new Error(`sandbox ${name} has no hosts (it was not started with --hosts N)`);
  return { ...meta.network, dir };
}

/** The host a node (by port) runs on. */
export function hostOfNode(net: SandboxNetwork, port: number): HostInfo {
  const h = net.hosts.find((x) => x.nodes.includes(port));
  if (!h) throw new Error(`no host runs node ${port}`);
  return h;
}

/** HOST:PORT of a node, as CLUSTER NODES shows it. */
export function nodeAddress(net: SandboxNetwork, port: number): string {
  return `${hostOfNode(net, port).address}:${port}`;
}

/** Run a command inside a host's namespace (stdout returned; throws on a non-zero exit). */
export function inHost(host: HostInfo, argv: string[]): string {
  return execFileSync('ip', ['netns', 'exec', host.netns, ...argv], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Run a shell command on a host through its sshd, as the runbooks do. */
export function sshTo(
  net: HostsInfo,
  host: HostInfo,
  command: string,
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(
    'ssh',
    [
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=5',
      '-i',
      join(net.dir, 'ssh', 'client_ed25519'),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${join(net.dir, 'ssh', 'known_hosts')}`,
      '-p',
      String(host.sshPort),
      '--',
      host.address,
      command,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return { code: r.status ?? 255, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const TABLE = 'rr_fault';

function nft(host: HostInfo, script: string): void {
  execFileSync('ip', ['netns', 'exec', host.netns, 'nft', '-f', '-'], {
    input: script,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** The fault table inside the host's namespace, with an input and an output chain (made once). */
function faultTable(host: HostInfo): void {
  nft(
    host,
    [
      `table inet ${TABLE} {`,
      '  chain input { type filter hook input priority -10; policy accept; }',
      '  chain output { type filter hook output priority -10; policy accept; }',
      '}',
    ].join('\n'),
  );
}

/**
 * Cut a host off. 'both': its veth goes down (nothing in or out, as a pulled
 * cable; established TCP connections stall). 'in': packets reaching the host
 * are dropped; 'out': packets it sends are dropped (nftables in its
 * namespace). `peer` limits a one-direction cut to one address (e.g.
 * net.runnerAddress: partitioned from the runner only, not from the other hosts).
 */
export function partition(host: HostInfo, direction: 'both' | 'in' | 'out', peer?: string): void {
  if (direction === 'both' && peer === undefined) {
    execFileSync('ip', ['link', 'set', host.vethRoot, 'down']);
    return;
  }
  faultTable(host);
  const dirs = direction === 'both' ? (['in', 'out'] as const) : [direction];
  for (const d of dirs) {
    const match =
      d === 'in'
        ? `iifname != "lo"${peer ? ` ip saddr ${peer}` : ''}`
        : `oifname != "lo"${peer ? ` ip daddr ${peer}` : ''}`;
    nft(host, `add rule inet ${TABLE} ${d === 'in' ? 'input' : 'output'} ${match} counter drop\n`);
  }
}

/**
 * Drop only what the host sends from local port `sport` to `peer`: e.g. a master's
 * replication stream to one replica's host, while the cluster bus (port + 10000), the
 * runner's connections and the replica's own acknowledgements still pass. The replica's
 * link stays "up" and its offset stops: it falls behind without anyone flagging a failure.
 */
export function cutStream(host: HostInfo, sport: number, peer: string): void {
  faultTable(host);
  nft(host, `add rule inet ${TABLE} output oifname != "lo" ip daddr ${peer} tcp sport ${sport} counter drop\n`);
}

/** Drop this percentage of the packets the host sends and receives (random, each way); `peer` limits it to that address. */
export function loss(host: HostInfo, percent: number, peer?: string): void {
  if (!(percent >= 0 && percent <= 100)) throw new Error(`loss percent must be 0..100, got ${percent}`);
  faultTable(host);
  // numgen yields 0..99: `< 100` is out of its range, so 100% is a plain drop.
  const pct = Math.round(percent);
  const when = pct >= 100 ? '' : ` numgen random mod 100 < ${pct}`;
  nft(
    host,
    [
      `add rule inet ${TABLE} input iifname != "lo"${peer ? ` ip saddr ${peer}` : ''}${when} counter drop`,
      `add rule inet ${TABLE} output oifname != "lo"${peer ? ` ip daddr ${peer}` : ''}${when} counter drop`,
      '',
    ].join('\n'),
  );
}

/**
 * Packets the host's nftables faults (partition one way or with a peer, loss) have dropped
 * so far: proof that a fault met traffic. Read it before heal(), which deletes the counters.
 */
export function droppedPackets(host: HostInfo): number {
  const r = spawnSync('ip', ['netns', 'exec', host.netns, 'nft', 'list', 'table', 'inet', TABLE], { encoding: 'utf8' });
  if (r.status !== 0) return 0;
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((t, m) => t + Number(m[1]), 0);
}

/**
 * Limit the host's bandwidth each way (tc tbf; rate as tc writes it, e.g.
 * '1mbit', '512kbit'): its namespace side shapes what it sends, the root side what it receives.
 */
export function rateLimit(host: HostInfo, rate: string): void {
  if (!/^\d+(?:\.\d+)?(?:bit|kbit|mbit|gbit|bps|kbps|mbps)$/.test(rate))
    throw new Error(`rate like 1mbit or 512kbit, got ${rate}`);
  const tbf = ['root', 'tbf', 'rate', rate, 'burst', '32kbit', 'latency', '400ms'];
  execFileSync('ip', ['netns', 'exec', host.netns, 'tc', 'qdisc', 'replace', 'dev', host.vethNs, ...tbf]);
  execFileSync('tc', ['qdisc', 'replace', 'dev', host.vethRoot, ...tbf]);
}

/**
 * Limit only what the host sends from local port `sport` to `peer` (htb + a u32 filter on its
 * side of the veth): e.g. one master's replies and RDB to the runner, while its cluster bus
 * and every other flow keep full speed (a whole-host limit starves the cluster bus into a
 * failover). heal() lifts it.
 */
export function rateLimitFlow(host: HostInfo, sport: number, peer: string, rate: string): void {
  if (!/^\d+(?:\.\d+)?(?:bit|kbit|mbit|gbit)$/.test(rate)) throw new Error(`rate like 1mbit or 512kbit, got ${rate}`);
  const tc = (...a: string[]) =>
    execFileSync('ip', ['netns', 'exec', host.netns, 'tc', ...a], { stdio: ['ignore', 'pipe', 'pipe'] });
  tc('qdisc', 'replace', 'dev', host.vethNs, 'root', 'handle', '1:', 'htb', 'default', '1');
  tc('class', 'add', 'dev', host.vethNs, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit');
  tc('class', 'add', 'dev', host.vethNs, 'parent', '1:', 'classid', '1:2', 'htb', 'rate', rate, 'ceil', rate);
  tc(
    'filter',
    'add',
    'dev',
    host.vethNs,
    'parent',
    '1:',
    'protocol',
    'ip',
    'prio',
    '1',
    'u32',
    'match',
    'ip',
    'dst',
    `${peer}/32`,
    'match',
    'ip',
    'sport',
    String(sport),
    '0xffff',
    'flowid',
    '1:2',
  );
}

/** Undo every fault above on this host: link up, fault table gone, shaping gone. Safe to call when nothing was done. */
export function heal(host: HostInfo): void {
  spawnSync('ip', ['link', 'set', host.vethRoot, 'up']);
  spawnSync('ip', ['netns', 'exec', host.netns, 'nft', 'delete', 'table', 'inet', TABLE]);
  spawnSync('ip', ['netns', 'exec', host.netns, 'tc', 'qdisc', 'del', 'dev', host.vethNs, 'root']);
  spawnSync('tc', ['qdisc', 'del', 'dev', host.vethRoot, 'root']);
}

/** heal() every host: for a test's `after`/`finally`. */
export function healAll(net: SandboxNetwork): void {
  for (const h of net.hosts) heal(h);
}

/** Stop a host's sshd (the host's sshd "crashes"); startSshd brings it back with the same config. */
export function stopSshd(host: HostInfo): void {
  const pid = Number(readFileSync(host.sshdPidFile, 'utf8').trim());
  process.kill(pid, 'SIGTERM');
}

export function startSshd(net: HostsInfo, host: HostInfo): void {
  const dir = join(net.dir, 'hosts', host.name, 'ssh');
  execFileSync('ip', [
    'netns',
    'exec',
    host.netns,
    '/usr/sbin/sshd',
    '-f',
    join(dir, 'sshd_config'),
    '-E',
    join(dir, 'sshd.log'),
  ]);
}
