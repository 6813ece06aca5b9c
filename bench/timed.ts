/**
 * Runs a command under GNU time (/usr/bin/time): wall seconds, user+system CPU
 * seconds and peak RSS of that command's process, for benchmarks that compare
 * tools as the operator runs them, a process each.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Timed {
  wallS: number;
  cpuS: number;
  rssMb: number;
  stdout: string;
  stderr: string;
  status: number | null;
}

const FORMAT = '%e %U %S %M';

function readStats(file: string): Pick<Timed, 'wallS' | 'cpuS' | 'rssMb'> {
  const [wall, user, sys, rssKb] = readFileSync(file, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { wallS: wall!, cpuS: user! + sys!, rssMb: rssKb! / 1024 };
}

/** Runs a command to its end under GNU time, in `cwd` (its stats file is written there too). */
export function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Timed {
  const stats = join(cwd, 'time.txt');
  const r = spawnSync('/usr/bin/time', ['-o', stats, '-f', FORMAT, cmd, ...args], {
    cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  return { ...readStats(stats), stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** The one child of a process (GNU time's child: the command it runs), from /proc. */
function childOf(ppid: number): number | undefined {
  const direct = `/proc/${ppid}/task/${ppid}/children`;
  if (existsSync(direct)) {
    const pid = Number(readFileSync(direct, 'utf8').trim().split(' ')[0]);
    if (pid) return pid;
  }
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

export interface TimedChild {
  /** GNU time's process (the leader of a process group of its own: detached). */
  time: ChildProcess;
  /** The command's own pid (GNU time ignores SIGINT while it waits: signals go to this one). */
  pid(): Promise<number>;
  /** Resolves when GNU time exits, with the command's figures (stdout/stderr as `stdio` left them). */
  done: Promise<Timed>;
  /** SIGKILL to the whole process group, if it still runs: for every exit path. */
  kill(): void;
}

/**
 * Starts a command under GNU time without waiting for it, in its own process
 * group (detached), so the caller can watch what it does while it runs and
 * stop it by signal. `stdio` as for spawn (stdout 'pipe' to read it).
 */
export function timedSpawn(
  cmd: string,
  args: string[],
  o: { cwd: string; env?: NodeJS.ProcessEnv; stdio: Array<'ignore' | 'pipe' | 'inherit' | number> },
): TimedChild {
  const stats = join(o.cwd, `time-${process.hrtime.bigint()}.txt`);
  const time = spawn('/usr/bin/time', ['-o', stats, '-f', FORMAT, cmd, ...args], {
    cwd: o.cwd,
    env: o.env ?? process.env,
    detached: true,
    stdio: o.stdio as never,
  });
  let stdout = '';
  let stderr = '';
  time.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  time.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  let exited = false;
  const done = new Promise<Timed>((resolve, reject) => {
    time.once('error', reject);
    time.once('close', (code) => {
      exited = true;
      try {
        resolve({ ...readStats(stats), stdout, stderr, status: code });
      } catch (e) {
        reject(
          new Error(`${cmd} under /usr/bin/time left no figures (exit ${code}): ${stderr.slice(-2000)}`, { cause: e }),
        );
      }
    });
  });
  const pid = async () => {
    for (let i = 0; i < 200; i++) {
      const p = time.pid && childOf(time.pid);
      if (p) return p;
      if (exited) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no child of /usr/bin/time (pid ${time.pid}) for ${cmd}`);
  };
  const kill = () => {
    if (exited || !time.pid) return;
    try {
      process.kill(-time.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { time, pid, done, kill };
}
