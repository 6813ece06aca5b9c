import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { failedError, preconditionError, messageOf } from '../errors.js';
import { isListening } from './ports.js';
import { nodeAnswers, withNode, LOOPBACK } from './node-client.js';
import { redact } from './password.js';
import { sleep, waitUntil } from './wait.js';
import type { NodePaths } from './paths.js';
import type { ConnectionOptions } from 'node:tls';

const START_TIMEOUT_MS = 10_000;
const STOP_STEP_MS = 5_000;
const HAS_PROC = existsSync('/proc/self/status');

/** Last lines of a node's log for error messages; the log never holds the password, redact anyway. */
export function logTail(paths: NodePaths, password: string | undefined, lines = 8): string {
  try {
    const text = readFileSync(paths.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n    ');
    return text ? redact(text, password) : '(log is empty)';
  } catch {
    return '(no log file)';
  }
}

/**
 * Start one node from its redis.conf and wait until it answers PING with the
 * password. `daemonize yes` makes redis-server fork and return at once, so
 * the wait is what tells us the node really came up.
 */
/** Where a node runs: loopback in the root namespace, or a --hosts sandbox's host (its address and namespace). */
export interface NodePlace {
  host: string;
  netns?: string;
}
const LOCAL: NodePlace = { host: LOOPBACK };

export async function startNode(
  port: number,
  paths: NodePaths,
  password: string,
  tls?: ConnectionOptions,
  place: NodePlace = LOCAL,
  binary = 'redis-server',
): Promise<void> {
  const where = place.host;
  let result;
  try {
    // The password is in the conf file, never on the command line where `ps` would show it.
    // In a host's namespace the daemon it forks stays there: it binds the host's address.
    const [file, args] = place.netns
      ? (['ip', ['netns', 'exec', place.netns, binary, paths.conf]] as const)
      : ([binary, [paths.conf]] as const);
    result = await execa(file, [...args], { reject: false, timeout: START_TIMEOUT_MS, stdin: 'ignore' });
  } catch (err) {
    throw failedError(
      'E_SANDBOX_START',
      `cannot run redis-server for ${where}:${port}: ${redact(messageOf(err), password)}`,
    );
  }
  if (result.failed) {
    if ((result as { code?: string }).code === 'ENOENT') {
      throw preconditionError(
        'E_REDIS_SERVER_MISSING',
        'redis-server is not on PATH',
        'install Redis 7 (e.g. `apt-get install redis-server`) and re-run',
      );
    }
    const said = redact(`${String(result.stderr ?? '')}\n${String(result.stdout ?? '')}`.trim(), password)
      .split('\n')
      .slice(-6)
      .join('\n    ');
    throw failedError(
      'E_SANDBOX_START',
      `redis-server for ${where}:${port} exited with ${result.exitCode ?? result.signal ?? 'an error'}:\n    ${said || logTail(paths, password)}`,
      `see ${paths.log}`,
    );
  }
  try {
    await waitUntil(
      { what: `node ${where}:${port} answering PING`, code: 'E_SANDBOX_START', timeoutMs: START_TIMEOUT_MS },
      async () =>
        withNode(
          port,
          { password, tls, host: place.host, connectTimeoutMs: 500, commandTimeoutMs: 1000 },
          async (r) => {
            const pong = await r.ping();
            return pong === 'PONG' ? undefined : `PING answered ${pong}`;
          },
        ),
    );
  } catch (err) {
    throw failedError(
      'E_SANDBOX_START',
      `${messageOf(err)}\n  last lines of ${paths.log}:\n    ${logTail(paths, password)}`,
      'read the log above; a port taken by another program or a bad redis.conf are the usual causes',
    );
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH: gone. EPERM: exists but is not ours to signal, so certainly not our node.
    return false;
  }
  // A daemonized node that exited stays a zombie until the init process reaps
  // it, which in containers can take seconds or never happen: it is dead.
  // Without /proc (macOS) launchd reaps promptly and kill(0) is the answer.
  if (!HAS_PROC) return true;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false; // vanished since kill(0)
  }
}

/**
 * Is this pid the redis-server of this node? A pidfile can be stale and its
 * pid reused by an unrelated process, which must never be signalled. Redis
 * retitles itself `redis-server 127.0.0.1:<port> [cluster]`; before that the
 * command line still names our redis.conf.
 */
async function isNodeProcess(pid: number, port: number, paths: NodePaths): Promise<boolean> {
  if (!isAlive(pid)) return false;
  let cmdline: string | undefined;
  if (HAS_PROC) {
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      cmdline = undefined;
    }
  } else {
    const ps = await execa('ps', ['-p', String(pid), '-o', 'command='], { reject: false, timeout: 3000 });
    cmdline = ps.exitCode === 0 ? String(ps.stdout) : undefined;
  }
  if (!cmdline || !/(redis|valkey)-server/.test(cmdline)) return false;
  return cmdline.includes(`:${port}`) || cmdline.includes(paths.conf);
}

async function waitStopped(port: number, pid: number | undefined, timeoutMs: number, host: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const up = (await isListening(port, 500, host)) || (pid !== undefined && isAlive(pid));
    if (!up) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/**
 * Stop one node: SHUTDOWN NOSAVE first (clean, needs the password), then
 * SIGTERM and finally SIGKILL through the pidfile, but only to a process that
 * is verifiably this node. Returns whether anything was running.
 */
export async function stopNode(
  port: number,
  paths: NodePaths,
  password: string | undefined,
  tls?: ConnectionOptions,
  host = LOOPBACK,
): Promise<boolean> {
  const pidFromFile = readPid(paths.pid);
  const pid = pidFromFile !== undefined && (await isNodeProcess(pidFromFile, port, paths)) ? pidFromFile : undefined;
  const listening = await isListening(port, 1000, host);
  if (!listening && pid === undefined) return false;

  if (listening && password !== undefined && (await nodeAnswers(port, 1000, tls, host))) {
    try {
      await withNode(port, { password, tls, host, connectTimeoutMs: 1000, commandTimeoutMs: 3000 }, (r) =>
        r.call('SHUTDOWN', 'NOSAVE'),
      );
    } catch {
      // The server closes the connection as it exits, so an error here is the normal outcome.
    }
    if (await waitStopped(port, pid, STOP_STEP_MS, host)) return true;
  }
  if (pid !== undefined) {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
      if (await waitStopped(port, pid, STOP_STEP_MS, host)) return true;
    }
  }
  throw failedError(
    'E_SANDBOX_STOP',
    `node ${host}:${port} is still listening after SHUTDOWN NOSAVE${pid !== undefined ? ', SIGTERM and SIGKILL' : ' (no live redis-server found through its pidfile)'}`,
    `find what holds port ${port} (e.g. \`ss -ltnp | grep ${port}\`), stop it, then run sandbox down again`,
  );
}
