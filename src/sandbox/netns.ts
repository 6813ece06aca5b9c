import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { failedError, preconditionError } from '../errors.js';
import type { SandboxHost, SandboxNetwork } from './metadata.js';
import { sleep } from './wait.js';

/**
 * The network of a `--hosts N` sandbox: one Linux network namespace per
 * simulated host, each joined by a veth pair to a bridge in the root
 * namespace. The bridge holds the runner's address; nothing routes out of
 * the subnet (no default route in the namespaces, no forwarding or NAT), so
 * the hosts talk only to each other and to this machine.
 */
export const HOST_SSH_PORT = 22;
/** Hosts get .11, .12, ...; the runner (the bridge) .1. */
const FIRST_HOST_OCTET = 11;

/** Short, stable names: interface names are limited to 15 characters. */
export function networkNames(sandboxDir: string): {
  id: string;
  bridge: string;
  netns: (i: number) => string;
  vethRoot: (i: number) => string;
} {
  const id = createHash('sha256').update(sandboxDir).digest('hex').slice(0, 6);
  return {
    id,
    bridge: `rr${id}br`,
    netns: (i) => `rr-${id}-host${i + 1}`,
    vethRoot: (i) => `rr${id}h${i + 1}`,
  };
}

/** Without CAP_NET_ADMIN nothing of this can be made: say so before anything is created. */
export async function checkNetworkPrivileges(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw preconditionError(
      'E_SANDBOX_NOT_ROOT',
      `sandbox up --hosts needs root: it creates network namespaces, veth links and a bridge (running as uid ${process.getuid?.() ?? '?'})`,
      'run it as root (e.g. `sudo redis-runbook sandbox up --hosts 3 ...`), or drop --hosts for the single loopback host',
    );
  }
  const r = await execa('ip', ['-V'], { reject: false });
  if (r.exitCode !== 0)
    throw preconditionError(
      'E_SANDBOX_NO_IP',
      'the `ip` command (iproute2) is not available',
      'install iproute2 (`apt-get install iproute2`)',
    );
}

const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

/** Every IPv4 prefix this machine already routes or holds an address in. */
async function usedPrefixes(): Promise<Array<{ net: number; len: number }>> {
  const out: Array<{ net: number; len: number }> = [];
  const routes = await execa('ip', ['-4', '-o', 'route', 'show', 'table', 'all'], { reject: false });
  const addrs = await execa('ip', ['-4', '-o', 'addr', 'show'], { reject: false });
  for (const m of `${routes.stdout}\n${addrs.stdout}`.matchAll(/(?:^|\s)(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?(?=\s)/gm)) {
    if (m[1] === '0.0.0.0') continue;
    out.push({ net: ipToInt(m[1]!), len: m[2] === undefined ? 32 : Number(m[2]) });
  }
  return out;
}

function overlaps(a: { net: number; len: number }, b: { net: number; len: number }): boolean {
  const len = Math.min(a.len, b.len);
  if (len === 0) return false; // the default route is not a collision
  const shift = 2 ** (32 - len);
  return Math.floor(a.net / shift) === Math.floor(b.net / shift);
}

/**
 * A /24 in 10.200.0.0-10.249.255.0, starting from a hash of the sandbox
 * directory (so a sandbox tends to get the same one each time) and skipping
 * any prefix already routed here (another sandbox, a VPN, docker...).
 */
export async function chooseSubnet(sandboxDir: string): Promise<string> {
  const used = await usedPrefixes();
  const start = parseInt(createHash('sha256').update(`subnet\0${sandboxDir}`).digest('hex').slice(0, 8), 16);
  const space = 50 * 256;
  for (let k = 0; k < space; k++) {
    const i = (start + k) % space;
    const subnet = `10.${200 + Math.floor(i / 256)}.${i % 256}.0`;
    if (!used.some((u) => overlaps(u, { net: ipToInt(subnet), len: 24 }))) return subnet;
  }
  throw failedError(
    'E_SANDBOX_NETWORK',
    'no free /24 left in 10.200.0.0/16..10.249.0.0/16',
    'remove stale sandboxes (`ip link show | grep rr`) or routes in that range',
  );
}

/** What the sandbox will create, written to sandbox.json before anything is. */
export function planNetwork(sandboxDir: string, subnet: string, nodesByHost: number[][]): SandboxNetwork {
  const names = networkNames(sandboxDir);
  const base = subnet.replace(/\.0$/, '');
  const hosts: SandboxHost[] = nodesByHost.map((nodes, i) => ({
    name: `host${i + 1}`,
    netns: names.netns(i),
    address: `${base}.${FIRST_HOST_OCTET + i}`,
    vethRoot: names.vethRoot(i),
    vethNs: 'eth0',
    sshPort: HOST_SSH_PORT,
    sshdPidFile: join(sandboxDir, 'hosts', `host${i + 1}`, 'ssh', 'sshd.pid'),
    nodes,
  }));
  return { subnet: `${subnet}/24`, prefix: 24, bridge: names.bridge, runnerAddress: `${base}.1`, hosts };
}

async function ip(args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) {
    throw failedError(
      'E_SANDBOX_NETWORK',
      `\`ip ${args.join(' ')}\` failed: ${String(r.stderr || r.stdout).trim()}`,
      'a leftover of an earlier sandbox may be in the way: `ip netns list`, `ip link show`',
    );
  }
}

/** Create the bridge, then each host's namespace and veth pair, with loopback and the host's address up. */
export async function createNetwork(n: SandboxNetwork): Promise<void> {
  await ip(['link', 'add', n.bridge, 'type', 'bridge']);
  await ip(['addr', 'add', `${n.runnerAddress}/${n.prefix}`, 'dev', n.bridge]);
  await ip(['link', 'set', n.bridge, 'up']);
  for (const h of n.hosts) {
    await ip(['netns', 'add', h.netns]);
    await ip(['link', 'add', h.vethRoot, 'type', 'veth', 'peer', 'name', h.vethNs, 'netns', h.netns]);
    await ip(['link', 'set', h.vethRoot, 'master', n.bridge, 'up']);
    await ip(['-n', h.netns, 'addr', 'add', `${h.address}/${n.prefix}`, 'dev', h.vethNs]);
    await ip(['-n', h.netns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', h.netns, 'link', 'set', h.vethNs, 'up']);
  }
}

/** Pids of the processes whose network namespace is this one (every one of them was started by the sandbox). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await execa('ip', ['netns', 'pids', netns], { reject: false });
  return r.exitCode === 0
    ? String(r.stdout)
        .split('\n')
        .map(Number)
        .filter((p) => Number.isInteger(p) && p > 1)
    : [];
}

export async function netnsExists(netns: string): Promise<boolean> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  return String(r.stdout)
    .split('\n')
    .some((l) => l.split(' ')[0] === netns);
}

/**
 * Remove whatever exists of the network: every process left in a host's
 * namespace (TERM, then KILL), the namespaces (which takes their veth ends
 * and nft tables with them), the root-side veths and the bridge. Missing
 * pieces are skipped: this is also the cleanup of a half-made sandbox.
 */
export async function destroyNetwork(n: SandboxNetwork): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = (await Promise.all(n.hosts.map((h) => netnsPids(h.netns)))).flat();
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        /* gone already */
      }
    }
    for (let i = 0; i < 30 && (await Promise.all(n.hosts.map((h) => netnsPids(h.netns)))).flat().length > 0; i++)
      await sleep(100);
  }
  const left: string[] = [];
  for (const h of n.hosts) {
    if (await netnsExists(h.netns)) {
      const r = await execa('ip', ['netns', 'del', h.netns], { reject: false });
      if (r.exitCode !== 0) left.push(`namespace ${h.netns}: ${String(r.stderr).trim()}`);
    }
    await execa('ip', ['link', 'del', h.vethRoot], { reject: false });
  }
  await execa('ip', ['link', 'del', n.bridge], { reject: false });
  const still = await execa('ip', ['-o', 'link', 'show'], { reject: false });
  for (const dev of [n.bridge, ...n.hosts.map((h) => h.vethRoot)])
    if (new RegExp(`^\\d+: ${dev}[@:]`, 'm').test(String(still.stdout))) left.push(`link ${dev}`);
  if (left.length > 0) {
    throw failedError(
      'E_SANDBOX_NETWORK',
      `could not remove ${left.join(', ')}`,
      `remove them by hand (\`ip netns del NAME\`, \`ip link del DEV\`), then run sandbox down again`,
    );
  }
}
