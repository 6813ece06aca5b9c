import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { failedError, preconditionError } from '../errors.js';
import type { SandboxHost } from './metadata.js';
import { isListening } from './ports.js';
import { readLog, renderSshdConfig, sessionHome, sshdFiles } from './sshd.js';
import { sleep } from './wait.js';

export interface HostsSsh {
  user: string;
  identity: string;
  knownHosts: string;
}

const SSHD = '/usr/sbin/sshd';

/**
 * One sshd per simulated host, started inside the host's namespace and
 * listening on its address, so a command it runs (a service start, an rsync)
 * runs on that host. All hosts accept the same client key and share one
 * known_hosts file: they share this machine's filesystem, so one key under
 * the sandbox's ssh/ directory serves the runner and, for direct copies,
 * every host logging in to another.
 */
export async function startHostSshds(sandboxDir: string, hosts: SandboxHost[]): Promise<HostsSsh> {
  if (!existsSync(SSHD))
    throw preconditionError(
      'E_SSHD_MISSING',
      `${SSHD} is not installed`,
      'install openssh-server (`apt-get install openssh-server`)',
    );
  const shared = sshdFiles(sandboxDir);
  mkdirSync(shared.dir, { recursive: true, mode: 0o700 });
  if (!existsSync(shared.clientKey)) await keygen(shared.clientKey);
  writeFileSync(shared.authorizedKeys, readFileSync(`${shared.clientKey}.pub`), { mode: 0o600 });
  const user = userInfo().username;
  const known: string[] = [];
  mkdirSync('/run/sshd', { recursive: true });
  for (const h of hosts) {
    const dir = join(sandboxDir, 'hosts', h.name, 'ssh');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const hostKey = join(dir, 'host_ed25519');
    if (!existsSync(hostKey)) await keygen(hostKey);
    chmodSync(hostKey, 0o600);
    const [type, key] = readFileSync(`${hostKey}.pub`, 'utf8').split(' ');
    known.push(`${h.address} ${type} ${key}`);
    const config = join(dir, 'sshd_config');
    const log = join(dir, 'sshd.log');
    writeFileSync(
      config,
      renderSshdConfig({
        port: h.sshPort,
        listen: h.address,
        hostKey,
        authorizedKeys: shared.authorizedKeys,
        pid: h.sshdPidFile,
        user,
        home: sessionHome(dir),
      }),
    );
    const r = await execa('ip', ['netns', 'exec', h.netns, SSHD, '-f', config, '-E', log], {
      reject: false,
      stdin: 'ignore',
    });
    const where = `${h.name} (${h.address}:${h.sshPort})`;
    if (r.exitCode !== 0)
      throw failedError(
        'E_SSHD_START',
        `sshd on ${where} did not start: ${String(r.stderr || r.stdout || readLog(log)).trim()}`,
        `read ${log}`,
      );
    for (let i = 0; i < 100 && !(await isListening(h.sshPort, 200, h.address)); i++) await sleep(50);
    if (!(await isListening(h.sshPort, 200, h.address)))
      throw failedError('E_SSHD_START', `sshd on ${where} is not listening`, `read ${log}`);
  }
  writeFileSync(shared.knownHosts, known.join('\n') + '\n');
  return { user, identity: shared.clientKey, knownHosts: shared.knownHosts };
}

async function keygen(path: string): Promise<void> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'redis-runbook-sandbox', '-f', path]);
}
