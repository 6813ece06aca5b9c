import type Database from 'better-sqlite3';
import { latestProgress, type ProgressSample } from './progress-store.js';

/**
 * What a run is doing now, read from the state database alone (no Redis, no inventory, no
 * lock): `status` reads it through a read-only connection, the metrics endpoint through the
 * running process's own. Plain SQL on purpose: a read-only connection has no Store.
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
  const rows = db.prepare('SELECT * FROM steps WHERE run_id = ? ORDER BY idx').all(runId) as Record<string, unknown>[];
  const active = rows.find((s) => !['pending', 'done', 'skipped'].includes(s.status as string));
  const lastStarted = [...rows]
    .filter((s) => s.started_at !== null)
    .sort((a, b) => (b.started_at as number) - (a.started_at as number))[0];
  const s = active ?? lastStarted;
  const view: RunView = {
    run: {
      id: r.id as string,
      runbook: r.runbook as string,
      status: r.status as string,
      createdAt: r.created_at as number,
      updatedAt: r.updated_at as number,
      error: (r.error as string | null) ?? null,
      pid: (r.pid as number | null) ?? null,
      host: (r.host as string | null) ?? null,
    },
    steps: rows.length,
  };
  if (!s) return view;
  view.step = {
    id: s.step_id as string,
    index: s.idx as number,
    kind: s.kind as string,
    title: s.title as string,
    status: s.status as string,
    attempts: s.attempts as number,
    startedAt: (s.started_at as number | null) ?? null,
    finishedAt: (s.finished_at as number | null) ?? null,
  };
  view.sample = latestProgress(db, runId, view.step.id);
  return view;
}
