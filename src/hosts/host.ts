import { lstatSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HostConfig, Inventory } from '../inventory/types.js';
import { hostOf, portOf } from '../address.js';

// Where address helpers used to live; their home is src/address.ts.
export { HOST_NAME, hostOf, validNodeAddress } from '../address.js';

export interface HostResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** The inventory host a node runs on: the one whose `addresses` list its IP or name. */
export function hostFor(inventory: Inventory, address: string): HostConfig | undefined {
  const h = hostOf(address);
  return Object.values(inventory.hosts).find((x) => x.addresses.includes(h));
}

/** Single-quoted for sh unless made only of characters no shell reads as syntax. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_.:@%+=,\/-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Fill a service template for one node: `{port}`, `{host}` and `{address}`.
 * The values come from CLUSTER NODES, which a node's own configuration
 * shapes: each is shell-quoted unless plainly safe.
 */
export function expandTemplate(template: string, address: string): string {
  const port = portOf(address);
  return template
    .replaceAll('{port}', shellWord(port))
    .replaceAll('{host}', shellWord(hostOf(address)))
    .replaceAll('{address}', shellWord(address));
}

/**
 * How a shell command line runs on a host: locally through `sh -c`, or
 * through ssh in batch mode (no password prompt can hang a run; the host key
 * must already be known, never accepted blindly).
 */
export function hostInvocation(host: HostConfig, target: string, command: string): { file: string; args: string[] } {
  if (host.transport === 'local') return { file: 'sh', args: ['-c', command] };
  // `--`: whatever the destination looks like, ssh reads no option after it.
  return { file: 'ssh', args: [...sshOptions(host), '--', sshDestination(host, target), command] };
}

/**
 * Bounds on an ssh connection: the connect (and key exchange), and a peer
 * that stops answering (ssh asks every ServerAliveInterval seconds and gives
 * up after ServerAliveCountMax unanswered asks: 60 s), so a host that
 * vanishes fails a command instead of leaving it waiting for TCP to notice.
 */
export const SSH_LIMITS = { connectTimeoutS: 10, serverAliveIntervalS: 15, serverAliveCountMax: 4 };

/** The ssh options of a host (batch mode, timeouts, port, key, jump, known_hosts): shared by ssh and rsync -e. */
export function sshOptions(host: HostConfig): string[] {
  const s = host.ssh ?? {};
  const args = [
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${SSH_LIMITS.connectTimeoutS}`,
    '-o',
    `ServerAliveInterval=${SSH_LIMITS.serverAliveIntervalS}`,
    '-o',
    `ServerAliveCountMax=${SSH_LIMITS.serverAliveCountMax}`,
  ];
  if (s.port) args.push('-p', String(s.port));
  if (s.identity) args.push('-i', s.identity, '-o', 'IdentitiesOnly=yes');
  if (s.jump) args.push('-J', s.jump);
  if (s.knownHosts) args.push('-o', `UserKnownHostsFile=${s.knownHosts}`);
  // One TCP+auth handshake per host and run, not per command: a migration sends dozens
  // (digests, copies, service commands). The socket lives in a private directory.
  args.push('-o', 'ControlMaster=auto', '-o', `ControlPath=${controlDir()}/%C`, '-o', 'ControlPersist=30');
  return args;
}

let control: string | undefined;
function controlDir(): string {
  if (!control) {
    const dir = join(tmpdir(), `redis-runbook-ssh-${process.getuid?.() ?? 'u'}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // /tmp is shared: a directory someone else made first could hold a planted socket that
    // would see our copies. It must be ours and private, or ssh goes without sharing.
    const st = lstatSync(dir);
    if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
      throw new Error(
        `${dir} is not a private directory of this user: remove it (ssh connection sharing keeps its sockets there)`,
      );
    }
    control = dir;
  }
  return control;
}

export function sshDestination(host: HostConfig, target: string): string {
  return host.ssh?.user ? `${host.ssh.user}@${target}` : target;
}

export async function runOnHost(
  host: HostConfig,
  target: string,
  command: string,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<HostResult> {
  const { file, args } = hostInvocation(host, target, command);
  const r = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs,
    stdin: 'ignore',
    cancelSignal: opts.signal,
    all: false,
  });
  return {
    exitCode: r.exitCode ?? (r.failed ? 255 : 0),
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? '') || (r.failed && r.exitCode === undefined ? String(r.shortMessage ?? '') : ''),
    timedOut: r.timedOut,
  };
}
