import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * A process named so that pid reuse cannot fool us: a pid alone may belong
 * to an unrelated process by the time we look again (after a crash, a
 * reboot, or simply enough forks). The kernel's start time of the process
 * (/proc/<pid>/stat field 22, clock ticks since boot) does not repeat for the
 * same pid, and the host says which kernel's pids these are (a state dir on
 * a shared disk can be used from two machines).
 */
export interface ProcessIdentity {
  pid: number;
  /** /proc/<pid>/stat starttime, as a decimal string; undefined where /proc is not available. */
  startTime?: string;
  host: string;
}

/**
 * The start time of a live process, or undefined if there is none with this
 * pid (or no /proc). A zombie (exited, not yet reaped by its parent) is not
 * live: it keeps its pid and start time but has no command line and can do
 * nothing, and a process whose parent died may stay one for a while.
 */
export function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may hold spaces or ')': the fields after it start at the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field 22 is rest[19].
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const v = rest[19];
  return v && /^\d+$/.test(v) ? v : undefined;
}

/** The command line of a live process (arguments joined by spaces), or undefined. */
export function cmdlineOf(pid: number): string | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter(Boolean).join(' ');
  } catch {
    return undefined;
  }
}

export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, startTime: startTimeOf(process.pid), host: hostname() };
}

/** The identity of another process on this host, read now (undefined if it does not exist). */
export function identityOf(pid: number): ProcessIdentity | undefined {
  const startTime = startTimeOf(pid);
  if (startTime === undefined && !pidExists(pid)) return undefined;
  return { pid, startTime, host: hostname() };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sameIdentity(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.host === b.host && (a.startTime ?? null) === (b.startTime ?? null);
}

/**
 * Is the recorded process still running? `other-host`: it ran on another
 * machine, whose processes we cannot see; the caller decides.
 * Without a recorded start time (a record from before it was kept, or no
 * /proc) the pid alone is all there is, as before.
 */
export function processState(id: ProcessIdentity): 'alive' | 'gone' | 'other-host' {
  if (id.host && id.host !== hostname()) return 'other-host';
  if (id.startTime === undefined) return pidExists(id.pid) ? 'alive' : 'gone';
  return startTimeOf(id.pid) === id.startTime ? 'alive' : 'gone';
}

/** The recorded process described for a message: `pid 123 on host h`. */
export function describeIdentity(id: ProcessIdentity): string {
  return `pid ${id.pid}${id.host ? ` on host ${id.host}` : ''}`;
}

/**
 * Send a signal only if `id` still names the same process (pid, start time,
 * host) and, when given, its command line contains `cmdMark` (e.g. its config
 * path). Read again just before the signal, so a process that exited and
 * whose pid was reused in between is left alone. Returns whether it was sent.
 * A process without a recorded start time is never signalled by start time
 * alone: the command line mark is then required.
 */
export function signalIfSame(id: ProcessIdentity, signal: NodeJS.Signals, cmdMark?: string): boolean {
  if (!isSameProcess(id, cmdMark)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function isSameProcess(id: ProcessIdentity, cmdMark?: string): boolean {
  if (id.host && id.host !== hostname()) return false;
  const start = startTimeOf(id.pid);
  if (start === undefined) return false;
  if (id.startTime !== undefined && id.startTime !== start) return false;
  if (cmdMark !== undefined && !(cmdlineOf(id.pid) ?? '').includes(cmdMark)) return false;
  if (id.startTime === undefined && cmdMark === undefined) return false;
  return true;
}
