import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { usageError } from '../errors.js';

// What a state directory holds: a directory with only these (or nothing) is ours to tighten.
const OURS = new Set(['state.db', 'state.db-wal', 'state.db-shm', 'sandbox']);

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * Make sure the state directory exists, is a real directory, and is closed to
 * other users (0700): the journal names clusters, hosts and commands.
 *
 * Created here with 0700, one level at a time: a recursive mkdir under a
 * pseudo-filesystem (`/proc/x`) never returns. A directory that exists and
 * is open to others is tightened to 0700 when we own it and it holds nothing
 * but our own files (or nothing), and the returned notice says so; any other
 * (a shared directory such as /tmp, or one owned by someone else) is refused,
 * so a mistyped --state-dir never changes the mode of a directory that is
 * not ours.
 */
export function prepareStateDir(dir: string): string[] {
  const st = stat(dir);
  if (!st) {
    createDirs(dir);
    return [];
  }
  if (!st.isDirectory())
    throw usageError(
      'E_STATE_DIR',
      `state directory ${dir} exists and is not a directory`,
      'pass --state-dir (or REDIS_RUNBOOK_HOME) a directory; it is created if missing',
    );
  if ((st.mode & 0o077) === 0) return [];
  const entries = readdirSync(dir);
  const mine = process.getuid === undefined || st.uid === process.getuid();
  if (mine && entries.every((e) => OURS.has(e))) {
    try {
      chmodSync(dir, 0o700);
    } catch (err) {
      throw usageError(
        'E_STATE_DIR_PERMS',
        `state directory ${dir} is open to other users (mode ${octal(st.mode)}) and cannot be changed (${code(err)})`,
        `run \`chmod 700 ${dir}\`, or pass --state-dir a directory of your own`,
      );
    }
    return [`state directory ${dir} was open to other users (mode ${octal(st.mode)}); changed to 0700`];
  }
  throw usageError(
    'E_STATE_DIR_PERMS',
    `state directory ${dir} is open to other users (mode ${octal(st.mode)})${mine ? " and holds files that are not redis-runbook's" : ', and another user owns it'}`,
    `pass --state-dir a directory of your own (it is created with mode 0700), or run \`chmod 700 ${dir}\` if it is meant for redis-runbook`,
  );
}

function createDirs(dir: string): void {
  const missing: string[] = [];
  let p = dir;
  for (;;) {
    const st = stat(p);
    if (st) {
      if (!st.isDirectory())
        throw usageError(
          'E_STATE_DIR',
          `cannot create state directory ${dir}: ${p} is not a directory`,
          'pass --state-dir (or REDIS_RUNBOOK_HOME) a path under a directory',
        );
      break;
    }
    missing.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && stat(d)?.isDirectory()) continue;
      throw usageError(
        'E_STATE_DIR',
        `cannot create state directory ${dir} (${code(err)} at ${d})`,
        'pass --state-dir (or REDIS_RUNBOOK_HOME) a directory you can write, e.g. under your home',
      );
    }
  }
  // The mode given to mkdir is filtered by the umask; 0700 survives any usual one, but be sure.
  chmodSync(dir, 0o700);
}

/** The journal and its WAL and shared-memory files: readable by us only. */
export function secureDbFiles(file: string): void {
  const st = stat(file);
  if (st && !st.isFile())
    throw usageError(
      'E_STATE_DB',
      `${file} is not a regular file`,
      'move it away, or pass --state-dir another directory',
    );
  if (!st) {
    // Created empty with 0600 before SQLite opens it: SQLite gives the -wal and -shm files
    // the database file's mode, so they are 0600 too.
    try {
      closeSync(openSync(file, 'a', 0o600));
    } catch (err) {
      throw usageError(
        'E_STATE_DIR',
        `cannot create ${file} (${code(err)})`,
        'pass --state-dir a directory you can write',
      );
    }
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    const s = stat(f);
    if (s && (s.mode & 0o077) !== 0) {
      try {
        chmodSync(f, 0o600);
      } catch (err) {
        throw usageError(
          'E_STATE_DIR_PERMS',
          `${f} is open to other users (mode ${octal(s.mode)}) and cannot be changed (${code(err)})`,
          `run \`chmod 600 ${f}\` as its owner`,
        );
      }
    }
  }
}

function stat(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code;
    if (c === 'ENOENT') return undefined;
    if (c === 'ENOTDIR')
      throw usageError(
        'E_STATE_DIR',
        `${p}: a part of the path is not a directory`,
        'pass --state-dir (or REDIS_RUNBOOK_HOME) a path under a directory',
      );
    throw usageError(
      'E_STATE_DIR',
      `cannot read ${p} (${c ?? err})`,
      'pass --state-dir a directory you can read and write',
    );
  }
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
