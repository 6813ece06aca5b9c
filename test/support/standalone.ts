import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * A plain (non-cluster) redis-server for a test file, on a port of its own (test/support/ports.ts).
 *
 * Why one helper: each file used to start and stop its own copy, with a connect loop that gave up
 * silently (a server that never came up, say its port held by a node a crashed run left behind,
 * surfaced as some other error in the first test) and a temp dir that was never removed. Here a
 * server that does not come up fails the set-up, naming the port and quoting the server's log, and
 * stop() waits until the process is gone, so the port is free for whoever wants it next.
 */
export interface Standalone {
  port: number;
  /** The server's --dir (its dump.rdb, log and pid file); removed by stop(). */
  dir: string;
  /** A connected client that never reconnects: a server gone must fail the call, not hang it. */
  client(): Promise<Redis>;
  /** SHUTDOWN NOSAVE, a SIGKILL if the process outlives it, then the dir removed. */
  stop(): Promise<void>;
}

export interface StandaloneOptions {
  port: number;
  /** Names the temp dir, so one left behind says whose it was. */
  dirPrefix: string;
  password?: string;
  /** More redis-server options, after the common ones. */
  args?: string[];
  /** The server binary (another build's redis-server or valkey-server); redis-server from PATH by default. */
  binary?: string;
}

const READY_MS = 10_000;
const EXIT_MS = 5_000;
const sleep = (ms: number) => new Promise((s) => setTimeout(s, ms));

export async function startStandalone(o: StandaloneOptions): Promise<Standalone> {
  const dir = mkdtempSync(join(tmpdir(), o.dirPrefix));
  const pidFile = join(dir, 'pid');
  const options: RedisOptions & { port: number } = {
    port: o.port,
    host: '127.0.0.1',
    ...(o.password === undefined ? {} : { password: o.password }),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  };
  await execa(o.binary ?? 'redis-server', [
    '--port',
    String(o.port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'yes',
    '--pidfile',
    pidFile,
    '--logfile',
    join(dir, 'log'),
    ...(o.password === undefined ? [] : ['--requirepass', o.password]),
    ...(o.args ?? []),
  ]);
  // The pid file is written only once the port is bound, and the server that answers must have
  // that pid: another one holding the port (ours then exits) is never taken for ours, nor shut
  // down by our stop(). Read now: the server removes its pid file as it exits.
  const deadline = Date.now() + READY_MS;
  let pid: number | undefined;
  while ((pid = pidIn(pidFile)) === undefined || !(await answers(options, pid))) {
    if (Date.now() > deadline) {
      if (pid !== undefined) await kill(pid, o.port);
      const log = logTail(dir);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(
        `redis-server on port ${o.port} did not answer PING within ${READY_MS} ms; its log ends:\n${log}`,
      );
    }
    await sleep(100);
  }
  const serverPid = pid;
  return {
    port: o.port,
    dir,
    client: async () => {
      const r = new Redis(options);
      await r.connect();
      return r;
    },
    stop: async () => {
      await stopProcess(options, serverPid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function answers(options: RedisOptions, pid: number): Promise<boolean> {
  const r = new Redis({ ...options, connectTimeout: 1000 });
  r.on('error', () => {});
  try {
    await r.connect();
    if ((await r.ping()) !== 'PONG') return false;
    return new RegExp(`^process_id:${pid}\\r?$`, 'm').test(await r.info('server'));
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

async function stopProcess(options: RedisOptions & { port: number }, pid: number): Promise<void> {
  // Gone already: the port may be someone else's now, and SHUTDOWN is not for them.
  if (!alive(pid)) return;
  const r = new Redis({ ...options, connectTimeout: 1000 });
  r.on('error', () => {});
  await r
    .connect()
    .then(() => r.call('SHUTDOWN', 'NOSAVE'))
    .catch(() => undefined);
  r.disconnect();
  if (!(await exited(pid, EXIT_MS))) await kill(pid, options.port);
}

async function kill(pid: number, port: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  if (!(await exited(pid, EXIT_MS))) throw new Error(`redis-server ${pid} (port ${port}) outlived SIGKILL`);
}

async function exited(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

/** A daemonized server is init's child, and init here may take seconds to reap it: a zombie counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** Undefined until the server has written it whole (a pid of 0 would signal our own process group). */
function pidIn(file: string): number | undefined {
  let pid = NaN;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    // not written yet
  }
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, 'log'), 'utf8').trimEnd().split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}
