import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, RunbookError, usageError } from '../errors.js';
import { assertKnownVersion } from '../engine/schema.js';
import { defaultRunId, ENDED, runView, type RunView } from '../engine/run-view.js';
import { barOf, duration, otherFigures, plainLine } from './progress-bar.js';
import { bold, dim, green, red } from './style.js';

export interface StatusFlags {
  watch?: boolean;
  interval?: string;
  json?: boolean;
}

/**
 * Read the state database without writing anything: `status` takes no lock and needs no write
 * access, so it works from another terminal, or from another machine that mounts the state
 * directory read-only. SQLite's WAL mode wants its -shm index next to the database: while a
 * run is going it exists and a reader only maps it; with no writer (the last one removed it on
 * close) SQLite must create it, which a read-only directory refuses (SQLITE_READONLY_DIRECTORY
 * or SQLITE_CANTOPEN). Then the database (and its -wal, if any) is copied to a private
 * temporary directory and read there: a snapshot, taken again at each refresh of --watch.
 * (This better-sqlite3 build has no URI filenames, so `immutable=1` is not an option.)
 */
export function withStateDb<T>(stateDir: string, fn: (db: Database.Database) => T): T {
  const file = join(stateDir, 'state.db');
  if (!existsSync(file))
    throw usageError(
      'E_NO_STATE',
      `no state database in ${stateDir} (no run was recorded there)`,
      'pass --state-dir (or REDIS_RUNBOOK_HOME) the directory the run uses',
    );
  try {
    return readWith(file, fn);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (!/^SQLITE_(READONLY|CANTOPEN)/.test(code)) throw err instanceof RunbookError ? err : openError(file, err);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'redis-runbook-status-'));
  try {
    copyFileSync(file, join(tmp, 'state.db'));
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, join(tmp, 'state.db-wal'));
    return readWith(join(tmp, 'state.db'), fn);
  } catch (err) {
    throw err instanceof RunbookError ? err : openError(file, err);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function readWith<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 2000');
    assertKnownVersion(db, file);
    return fn(db);
  } finally {
    db.close();
  }
}

function openError(file: string, err: unknown) {
  return usageError(
    'E_STATE_DB',
    `cannot read the state database ${file} (${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message})`,
    'check that you can read the state directory and its files (state.db, state.db-wal, state.db-shm)',
  );
}

/** `status [RUN_ID] [--watch] [--interval S] [--json]`. Returns the exit code. */
export async function statusCommand(stateDir: string, runId: string | undefined, o: StatusFlags): Promise<number> {
  const interval = Number(o.interval ?? '2');
  if (!Number.isFinite(interval) || interval < 0.2 || interval > 3600)
    throw usageError('E_USAGE', `--interval ${o.interval}: not a number of seconds`, 'pass e.g. --interval 2');
  const id = runId ?? withStateDb(stateDir, defaultRunId);
  if (!id) throw usageError('E_NO_RUN', `no run recorded in ${stateDir}`, 'start one with `redis-runbook run`');
  // Opened for each read and closed at once: a watch holds nothing open between refreshes.
  const read = () => {
    const v = withStateDb(stateDir, (db) => runView(db, id));
    if (!v) throw usageError('E_NO_RUN', `no run ${id} in ${stateDir}`, 'see `redis-runbook runs`');
    return v;
  };
  if (!o.watch) {
    const v = read();
    console.log(o.json ? JSON.stringify(jsonOf(v), null, 2) : render(v).join('\n'));
    return EXIT.ok;
  }
  return await watch(read, interval * 1000, !!o.json);
}

/** Redraw (terminal) or print a block per change (log), until the run ends. */
async function watch(read: () => RunView, everyMs: number, json: boolean): Promise<number> {
  const tty = !!process.stdout.isTTY && !json;
  let last = '';
  for (;;) {
    const v = read();
    const gone = ownerGone(v);
    if (tty) process.stdout.write(`\x1b[H\x1b[2J${render(v).join('\n')}\n`);
    else {
      // A change is a new sample or a new state, not the age of the same sample.
      const key = JSON.stringify([v.run.status, v.step?.id, v.step?.status, v.step?.attempts, v.sample?.at]);
      if (key !== last) {
        last = key;
        console.log(json ? JSON.stringify(jsonOf(v)) : `${render(v).map(plainLine).join('\n')}\n`);
      }
    }
    if (ENDED.has(v.run.status) || gone) {
      if (gone) console.error(`the process that ran ${v.run.id} (pid ${v.run.pid}) is gone: resume it to go on`);
      return v.run.status === 'succeeded' ? EXIT.ok : EXIT.failed;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The run says it is running, on this host, and its process is gone (killed): nothing will change. */
function ownerGone(v: RunView): boolean {
  if (ENDED.has(v.run.status) || !v.run.pid || (v.run.host && v.run.host !== hostname())) return false;
  try {
    process.kill(v.run.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function jsonOf(v: RunView, now = Date.now()) {
  return {
    run: v.run,
    steps: v.steps,
    step: v.step
      ? { ...v.step, elapsedMs: v.step.startedAt ? (v.step.finishedAt ?? now) - v.step.startedAt : null }
      : null,
    progress: v.sample ? { ...v.sample, ageMs: now - v.sample.at } : null,
  };
}

const colour: Record<string, (s: string) => string> = { succeeded: green, failed: red, aborted: red };

export function render(v: RunView, now = Date.now()): string[] {
  const { run, step, sample } = v;
  const out = [
    `${bold(`run ${run.id}`)} ${run.runbook}: ${(colour[run.status] ?? ((s: string) => s))(run.status)}` +
      dim(` (started ${new Date(run.createdAt).toISOString()}, ${duration(now - run.createdAt)} ago)`),
  ];
  if (run.error && run.status !== 'running') out.push(`  ${run.error}`);
  if (!step) return [...out, '  no step started yet'];
  const elapsed = step.startedAt ? duration((step.finishedAt ?? now) - step.startedAt) : '-';
  out.push(
    `step ${step.index + 1}/${v.steps} ${bold(step.id)}: ${step.title}`,
    `  ${step.status}, attempt ${step.attempts}, ${elapsed}${step.finishedAt ? '' : ' so far'}`,
  );
  if (!sample) return [...out, dim('  no progress reported by this step')];
  const bar = barOf(sample.figures);
  const other = otherFigures(sample.figures);
  if (bar) out.push(`  ${bar}`);
  if (other) out.push(`  ${other}`);
  out.push(`  ${sample.line}`, dim(`  sample ${duration(now - sample.at)} old (${new Date(sample.at).toISOString()})`));
  return out;
}
