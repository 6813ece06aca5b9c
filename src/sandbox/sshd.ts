import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { failedError, preconditionError } from '../errors.js';
import { isListening } from './ports.js';
import { sleep } from './wait.js';

/** Where a sandbox's sshd keeps its keys, config and pid. */
export interface SshdFiles {
  dir: string;
  hostKey: string;
  clientKey: string;
  authorizedKeys: string;
  knownHosts: string;
  config: string;
  pid: string;
  log: string;
}

export function sshdFiles(sandboxDir: string): SshdFiles {
  const dir = join(sandboxDir, 'ssh');
  return {
    dir,
    hostKey: join(dir, 'host_ed25519'),
    clientKey: join(dir, 'client_ed25519'),
    authorizedKeys: join(dir, 'authorized_keys'),
    knownHosts: join(dir, 'known_hosts'),
    config: join(dir, 'sshd_config'),
    pid: join(dir, 'sshd.pid'),
    log: join(dir, 'sshd.log'),
  };
}

/** The sandbox's sshd listens on base + 99: above the source's nodes, below the target's. */
export const SSHD_PORT_OFFSET = 99;

const SSHD = '/usr/sbin/sshd';

/**
 * A loopback sshd with its own host key and a client key that only it
 * accepts, so that the file-copy runbooks run over real SSH on one machine.
 * It logs in as the current user; nothing outside the sandbox trusts these keys.
 */
export async function startSshd(
  sandboxDir: string,
  port: number,
): Promise<{ user: string; port: number; identity: string; knownHosts: string }> {
  if (!existsSync(SSHD))
    throw preconditionError(
      'E_SSHD_MISSING',
      `${SSHD} is not installed`,
      'install openssh-server (`apt-get install openssh-server`), or drop --ssh',
    );
  const f = sshdFiles(sandboxDir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  for (const key of [f.hostKey, f.clientKey]) {
    if (!existsSync(key))
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'redis-runbook-sandbox', '-f', key]);
  }
  writeFileSync(f.authorizedKeys, readFileSync(`${f.clientKey}.pub`), { mode: 0o600 });
  const [type, key] = readFileSync(`${f.hostKey}.pub`, 'utf8').split(' ');
  writeFileSync(f.knownHosts, `[127.0.0.1]:${port} ${type} ${key}\n`);
  const user = userInfo().username;
  writeFileSync(
    f.config,
    renderSshdConfig({
      port,
      listen: '127.0.0.1',
      hostKey: f.hostKey,
      authorizedKeys: f.authorizedKeys,
      pid: f.pid,
      user,
      home: sessionHome(f.dir),
    }),
  );
  chmodSync(f.hostKey, 0o600);
  // sshd refuses to start as root without its privilege separation directory.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const r = await execa(SSHD, ['-f', f.config, '-E', f.log], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0)
    throw failedError(
      'E_SSHD_START',
      `sshd on 127.0.0.1:${port} did not start: ${(r.stderr || r.stdout || readLog(f.log)).trim()}`,
      `read ${f.log}`,
    );
  for (let i = 0; i < 100 && !(await isListening(port, 200)); i++) await sleep(50);
  if (!(await isListening(port, 200)))
    throw failedError('E_SSHD_START', `sshd on 127.0.0.1:${port} is not listening`, `read ${f.log}`);
  return { user, port, identity: f.clientKey, knownHosts: f.knownHosts };
}

/**
 * The HOME of a sandbox ssh session: a private empty directory, not the
 * user's own. Bash reads ~/.bashrc for every command sshd runs, and a
 * developer's rc (pyenv, nvm, conda init) can cost half a second a command;
 * a migration sends dozens. A real server's shell is its owner's business,
 * but the sandbox stands in for a plain server.
 */
export function sessionHome(sshDir: string): string {
  const home = join(sshDir, 'home');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  return home;
}

/** sshd_config of a sandbox sshd: keys only, one user, nothing read from /etc/ssh. */
export function renderSshdConfig(c: {
  port: number;
  listen: string;
  hostKey: string;
  authorizedKeys: string;
  pid: string;
  user: string;
  home: string;
}): string {
  return [
    `Port ${c.port}`,
    `ListenAddress ${c.listen}`,
    `HostKey ${c.hostKey}`,
    `AuthorizedKeysFile ${c.authorizedKeys}`,
    `PidFile ${c.pid}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The sandbox directory lives under the state dir, whose modes sshd need not police.
    'StrictModes no',
    `AllowUsers ${c.user}`,
    'PermitRootLogin prohibit-password',
    'Subsystem sftp internal-sftp',
    // SetEnv overrides the HOME sshd takes from the password database (see sessionHome).
    `SetEnv HOME=${c.home}`,
    'LogLevel ERROR',
    '',
  ].join('\n');
}

export function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Stop the sandbox's sshd, if it has one. */
export async function stopSshd(sandboxDir: string): Promise<boolean> {
  const f = sshdFiles(sandboxDir);
  if (!existsSync(f.pid)) return false;
  const pid = Number(readFileSync(f.pid, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    // Only an sshd started with our config: a stale pidfile must not kill a stranger.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(f.config)) return false;
  } catch {
    return false;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  return true;
}
