import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { CopyTrust, HostConfig } from '../inventory/types.js';
import { hostInvocation, runOnHost, shellWord, sshDestination, sshOptions, SSH_LIMITS } from './host.js';
import type { CleanupSink } from '../leftovers.js';

/** A file or directory on a host. `target` is how ssh reaches the host (the node's IP or name). */
export interface Location {
  host: HostConfig;
  target: string;
  path: string;
}

/** Size and SHA-256 of each file: one entry '' for a file, relative paths for a directory. */
export type Digest = Map<string, { size: number; sha256: string }>;

const PARTIAL = '.redis-runbook-partial';

export const shellQuote = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;

/**
 * Shell that exits 3 when a TCP socket listens on the port, checked on the
 * host itself (ss, else netstat; neither: exit 4, nothing is assumed). Put
 * in front of a command that must not run while a node is up.
 */
export function portClosedGuard(port: number | string): string {
  const p = Number(port);
  return `if command -v ss >/dev/null 2>&1; then ss -Hltn 'sport = :${p}' | grep -q . && { echo 'port ${p} is listening' >&2; exit 3; }; elif command -v netstat >/dev/null 2>&1; then netstat -ltn | awk '{print $4}' | grep -q ':${p}$' && { echo 'port ${p} is listening' >&2; exit 3; }; else echo 'neither ss nor netstat: cannot check the port' >&2; exit 4; fi;`;
}

/**
 * Digest a file or a directory tree on its host, with the host's own
 * sha256sum and stat (the bytes are hashed where they are, not fetched).
 * undefined when the path does not exist.
 */
export async function digest(loc: Location, kind: 'file' | 'dir', signal?: AbortSignal): Promise<Digest | undefined> {
  const p = shellQuote(loc.path);
  const script =
    kind === 'file'
      ? `if [ -f ${p} ]; then stat -c '%s %n' -- ${p} && sha256sum -- ${p}; else echo MISSING; fi`
      : `if [ -d ${p} ]; then cd ${p} && find . -type f -exec stat -c '%s %n' {} + && echo -- && find . -type f -exec sha256sum {} +; else echo MISSING; fi`;
  const r = await runOnHost(loc.host, loc.target, script, { timeoutMs: 30 * 60_000, signal });
  if (r.exitCode !== 0)
    throw new Error(`cannot digest ${loc.path} on host ${loc.host.name}: ${(r.stderr || r.stdout).trim()}`);
  if (r.stdout.trim() === 'MISSING') return undefined;
  const lines = r.stdout.trim().split('\n');
  const out: Digest = new Map();
  const key = (name: string) => (kind === 'file' ? '' : name.replace(/^\.\//, ''));
  const sep = kind === 'file' ? 1 : lines.indexOf('--');
  for (const l of lines.slice(0, sep)) {
    const m = /^(\d+) (.*)$/.exec(l);
    if (m) out.set(key(m[2]!), { size: Number(m[1]), sha256: '' });
  }
  for (const l of lines.slice(kind === 'file' ? 1 : sep + 1)) {
    const m = /^([0-9a-f]{64}) {2}(.*)$/.exec(l);
    if (m && out.has(key(m[2]!))) out.get(key(m[2]!))!.sha256 = m[1]!;
  }
  return out;
}

/** Same files, same sizes, same hashes. */
export function sameDigest(a: Digest | undefined, b: Digest | undefined): boolean {
  if (!a || !b || a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.size !== v.size || w.sha256 !== v.sha256 || !v.sha256) return false;
  }
  return true;
}

function rsyncPath(loc: Location, kind: 'file' | 'dir'): string {
  const p = kind === 'dir' ? `${loc.path.replace(/\/+$/, '')}/` : loc.path;
  return loc.host.transport === 'local' ? p : `${sshDestination(loc.host, loc.target)}:${p}`;
}

/** rsync gives up when no data moves for this long (it sends keep-alives meanwhile when the link is healthy). */
export const RSYNC_IO_TIMEOUT_S = 300;

export function rsyncArgs(
  kind: 'file' | 'dir',
  remote: HostConfig | undefined,
  ssh: string[] | undefined = remote ? sshOptions(remote) : undefined,
): string[] {
  // -a keeps modes and times; --delete makes a directory an exact copy (an AOF directory
  // with stale incr files would be replayed).
  // --protect-args: paths reach the remote rsync as they are, never through its shell.
  // --partial-dir: a cut-off transfer is kept aside for the next attempt, never under the
  // real file name. --ignore-times: rsync is only called when the digests differ, so its
  // size+mtime quick check must not declare the files equal.
  // --timeout: a transfer whose other end stopped answering fails instead of waiting out the 6 h cap.
  const args = [
    '-a',
    `--partial-dir=${PARTIAL}`,
    '--ignore-times',
    '--protect-args',
    `--timeout=${RSYNC_IO_TIMEOUT_S}`,
    ...(kind === 'dir' ? ['--delete'] : []),
  ];
  if (ssh) args.push('-e', ['ssh', ...ssh].map((a) => (/[\s'"]/.test(a) ? shellQuote(a) : a)).join(' '));
  return args;
}

/** The rsync argv of one hop (`--`: a path or destination is never read as an option). */
function rsyncArgv(from: Location, to: Location, kind: 'file' | 'dir'): string[] {
  const remote = from.host.transport === 'ssh' ? from.host : to.host.transport === 'ssh' ? to.host : undefined;
  return [...rsyncArgs(kind, remote), '--', rsyncPath(from, kind), rsyncPath(to, kind)];
}

/**
 * The staging directory of a remote-to-remote copy on this machine: one per
 * source and destination, inside a private directory of this user, so that
 * the plan can name it and the run uses exactly that.
 */
export function stagingDir(from: Location, to: Location): string {
  const h = createHash('sha256')
    .update(`${from.host.name}\0${from.target}\0${from.path}\0${to.host.name}\0${to.target}\0${to.path}`)
    .digest('hex')
    .slice(0, 16);
  return join(stageRoot(), `redis-runbook-copy-${h}`);
}

export function stageRoot(): string {
  return join(tmpdir(), `redis-runbook-stage-${process.getuid?.() ?? 'u'}`);
}

/** The inventory lets the source host log in to the target host: the copy runs there, in one hop. */
export function directTrust(from: Location, to: Location): CopyTrust | undefined {
  return from.host.transport === 'ssh' && to.host.transport === 'ssh' && from.host !== to.host
    ? from.host.copyTo?.[to.host.name]
    : undefined;
}

/**
 * The ssh options the source host uses to reach the target (its own key and
 * known_hosts, from `copyTo`): the same bounds as ours, but no connection
 * sharing, whose socket directory is this machine's.
 */
function trustSshOptions(trust: CopyTrust, to: HostConfig): string[] {
  const port = trust.port ?? to.ssh?.port;
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
  if (port) args.push('-p', String(port));
  if (trust.identity) args.push('-i', trust.identity, '-o', 'IdentitiesOnly=yes');
  if (trust.knownHosts) args.push('-o', `UserKnownHostsFile=${trust.knownHosts}`);
  return args;
}

/**
 * A direct copy: ssh to the source host and run rsync there, pushing to the
 * target host over ssh. What runs locally is the ssh; the rsync line is its
 * remote command, each word quoted for the source host's shell.
 */
function directInvocation(
  from: Location,
  to: Location,
  kind: 'file' | 'dir',
  trust: CopyTrust,
): { file: string; args: string[] } {
  const user = trust.user ?? to.host.ssh?.user;
  const dest = `${user ? `${user}@` : ''}${to.target}:${kind === 'dir' ? `${to.path.replace(/\/+$/, '')}/` : to.path}`;
  const source = kind === 'dir' ? `${from.path.replace(/\/+$/, '')}/` : from.path;
  const remote = ['rsync', ...rsyncArgs(kind, undefined, trustSshOptions(trust, to.host)), '--', source, dest]
    .map(shellWord)
    .join(' ');
  return hostInvocation(from.host, from.target, remote);
}

function hops(from: Location, to: Location): Array<[Location, Location]> {
  if (from.host.transport === 'ssh' && to.host.transport === 'ssh') {
    const mid: Location = {
      host: { name: 'this machine', transport: 'local', addresses: [] },
      target: 'localhost',
      path: join(stagingDir(from, to), 'data'),
    };
    return [
      [from, mid],
      [mid, to],
    ];
  }
  return [[from, to]];
}

/** The exact rsync command lines a copy runs, in order (the plan shows them, the journal holds them). */
export function copyCommandLines(from: Location, to: Location, kind: 'file' | 'dir'): string[] {
  const trust = directTrust(from, to);
  if (trust) {
    const { file, args } = directInvocation(from, to, kind, trust);
    return [[file, ...args].map(shellWord).join(' ')];
  }
  return hops(from, to).map(([a, b]) => ['rsync', ...rsyncArgv(a, b, kind)].map(shellWord).join(' '));
}

async function rsync(from: Location, to: Location, kind: 'file' | 'dir', signal?: AbortSignal): Promise<void> {
  await makeParent(to, kind, signal);
  const trust = directTrust(from, to);
  const { file, args } = trust
    ? directInvocation(from, to, kind, trust)
    : { file: 'rsync', args: rsyncArgv(from, to, kind) };
  const r = await execa(file, args, { reject: false, stdin: 'ignore', cancelSignal: signal, timeout: 6 * 60 * 60_000 });
  if (r.exitCode !== 0) {
    const how = trust
      ? ` (run on host ${from.host.name}${r.exitCode === 255 ? '; 255: ssh to it, or from it to the target, failed' : ''})`
      : '';
    throw new Error(
      `rsync ${rsyncPath(from, kind)} -> ${rsyncPath(to, kind)}${how} exited ${r.exitCode}: ${String(r.stderr ?? '')
        .trim()
        .split('\n')
        .slice(-3)
        .join(' | ')}`,
    );
  }
}

async function makeParent(to: Location, kind: 'file' | 'dir', signal?: AbortSignal): Promise<void> {
  if (kind === 'dir' || to.host.transport === 'local') {
    // The parent must exist on the receiving side; rsync creates only the last level.
    const parent = to.path.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/';
    const mk = await runOnHost(to.host, to.target, `mkdir -p ${shellQuote(parent)}`, { timeoutMs: 60_000, signal });
    if (mk.exitCode !== 0) throw new Error(`cannot create ${parent} on host ${to.host.name}: ${mk.stderr.trim()}`);
  }
}

/**
 * Copy a file or directory between two hosts with rsync. Local to local,
 * local to remote and remote to local go in one hop; so does remote to
 * remote when the inventory says the source host may ssh to the target
 * (`copyTo`): rsync then runs on the source host. Otherwise remote to remote
 * goes through a staging directory on this machine (rsync cannot join two
 * remote ends, and host-to-host trust between servers is not assumed).
 */
export async function copy(
  from: Location,
  to: Location,
  kind: 'file' | 'dir',
  signal?: AbortSignal,
  opts: CopyOptions = {},
): Promise<void> {
  const steps = directTrust(from, to) ? [[from, to] as [Location, Location]] : hops(from, to);
  if (steps.length === 2) {
    const stage = stagingDir(from, to);
    privateDir(stageRoot());
    // A full copy of the data sits here between the two hops: recorded, so that a run killed
    // in between still has it removed (abort, or the run's end). Made fresh: whatever an
    // earlier attempt left is not trusted.
    const id = `stage:${stage}`;
    opts.cleanup?.add(id, { kind: 'local-dir', path: stage, what: 'copy staging directory' });
    rmSync(stage, { recursive: true, force: true });
    mkdirSync(stage, { mode: 0o700 });
    try {
      await rsync(steps[0]![0], steps[0]![1], kind, signal);
      opts.failpoint?.('staged');
      await rsync(steps[1]![0], steps[1]![1], kind, signal);
    } finally {
      rmSync(stage, { recursive: true, force: true });
      opts.cleanup?.done(id);
    }
    return;
  }
  await rsync(from, to, kind, signal);
}

/** A directory of this user that no one else can enter (/tmp is shared: one made by someone else is refused). */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
    throw new Error(
      `${dir} is not a private directory of this user: remove it (copies between two remote hosts are staged there)`,
    );
  }
}

/** rsync keeps a cut-off transfer here, beside the destination (`--partial-dir`). */
export function partialDir(to: string, kind: 'file' | 'dir'): string {
  const p = to.replace(/\/+$/, '');
  return `${kind === 'dir' ? p : p.replace(/\/[^/]*$/, '') || ''}/${PARTIAL}`;
}

export interface CopyOptions {
  cleanup?: CleanupSink;
  /** Test hook of the calling step (a crash between the two hops of a remote-to-remote copy). */
  failpoint?: (name: string) => void;
}
