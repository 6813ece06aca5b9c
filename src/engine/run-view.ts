import type Database from 'better-sqlite3';
import { latestProgress, type ProgressSample } from './progress-store.js';
import { readSteps, toRun } from './store.js';

/**
 * What a run is doing now, read from the state database alone (no Redis, no inventory, no
 * lock): `status` reads it through a read-only connection, the metrics endpoint through the
 * running process's own. A read-only connection has no Store: the rows are read with the
 * store's own readers (readSteps, toRun), which take any connection.
 */
export interface RunView {
  run: {
    id: string;
    runbook: string;
    status: string;
    createdAt: number;
    updatedAt: number;
    error: string | null;
    pid: number | null;
    host: string | null;
  };
  steps: number;
  /** The step in progress (or, once none is, the last one that started). */
  step?: {
    id: string;
    index: number;
    kind: string;
    title: string;
    status: string;
    attempts: number;
    startedAt: number | null;
    finishedAt: number | null;
  };
  /** The newest progress sample of that step. */
  sample?: ProgressSample;
}

/** A run that is over: nothing more will happen without an operator (resume or abort). */
export const ENDED = new Set(['succeeded', 'failed', 'stopped', 'aborted', 'refused']);
const FINISHED = new Set(['succeeded', 'aborted', 'refused']);

/** The run to show when none is named: the newest unfinished one, else the newest. */
export function defaultRunId(db: Database.Database): string | undefined {
  const rows = db.prepare('SELECT id, status FROM runs ORDER BY created_at DESC').all() as Array<{
    id: string;
    status: string;
  }>;
  return (rows.find((r) => !FINISHED.has(r.status)) ?? rows[0])?.id;
}

export function runView(db: Database.Database, runId: string): RunView | undefined {
  const r = db.prepare('SELECT * FROM runs WHERE id = ?').get(runId) as Record<string, unknown> | undefined;
  if (!r) return undefined;
  const run = toRun(r);
  const rows = readSteps(db, runId);
  const active = rows.find((s) => !['pending', 'done', 'skipped'].includes(s.status));
  const lastStarted = rows
    .filter((s) => s.startedAt !== null)
    .sort((a, b) => (b.startedAt as number) - (a.startedAt as number))[0];
  const s = active ?? lastStarted;
  const { id, runbook, status, createdAt, updatedAt, error, pid, host } = run;
  const view: RunView = {
    run: { id, runbook, status, createdAt, updatedAt, error, pid, host: host ?? null },
    steps: rows.length,
  };
  if (!s) return view;
  const { stepId, idx: index, kind, title, attempts, startedAt, finishedAt } = s;
  view.step = { id: stepId, index, kind, title, status: s.status, attempts, startedAt, finishedAt };
  view.sample = latestProgress(db, runId, view.step.id);
  return view;
}
