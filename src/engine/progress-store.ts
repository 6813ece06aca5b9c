import type Database from 'better-sqlite3';
import { scrubText } from '../scrub.js';
import type { ProgressFigures } from './step-contract.js';
import type { Store } from './store.js';

/** One progress sample of a step, as stored. */
export interface ProgressSample {
  stepId: string;
  at: number;
  line: string;
  figures: ProgressFigures;
}

/** At most one row per step this often; the last sample of a step is always written (flush). */
export const PROGRESS_EVERY_MS = 1000;
/** Rows kept per step: past it the older half is thinned (every other row dropped), so a day stays small. */
export const PROGRESS_ROWS_PER_STEP = 600;
/** The window rate and ETA are computed over when the step gives no rate. */
const RATE_WINDOW_MS = 30_000;
const MAX_STRING = 80;

interface StepState {
  lastWritten: number;
  pending: { at: number; line: string; figures: ProgressFigures } | undefined;
  rows: number | undefined;
  window: Array<{ at: number; done: number }>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Writes a run's progress samples to the `progress` table: throttled (one row per step per
 * PROGRESS_EVERY_MS, the latest sample of the interval wins and is written when it ends or
 * when the step ends) and bounded (PROGRESS_ROWS_PER_STEP per step, older samples thinned).
 *
 * A progress write never fails the run. It does not go through Store.write, whose failure
 * latches and stops the run: a sample is a view of the work, not part of the journal, and a
 * transient SQLITE_BUSY on one must not stop a migration. A failed sample is dropped; a
 * real disk problem is still caught by the next journal write, which stops the run as usual.
 */
export class ProgressRecorder {
  private readonly steps = new Map<string, StepState>();
  /** Samples that could not be written (dropped, see above). */
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly runId: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A sample from a step; returns the figures with rate and ETA filled in where they can be computed. */
  record(stepId: string, line: string, given?: ProgressFigures): ProgressFigures {
    const st = this.stateOf(stepId);
    const at = this.now();
    const figures = withRate(cleanFigures(given ?? {}), st.window, at);
    st.pending = { at, line, figures };
    if (at - st.lastWritten >= PROGRESS_EVERY_MS) this.flush(stepId);
    else if (!st.timer) {
      // The last sample of a quiet interval is still written, a little later.
      st.timer = setTimeout(() => this.flush(stepId), PROGRESS_EVERY_MS - (at - st.lastWritten));
      st.timer.unref();
    }
    return figures;
  }

  /** Write the step's pending sample now (the step ended, or its interval did). */
  flush(stepId: string): void {
    const st = this.steps.get(stepId);
    if (!st) return;
    if (st.timer) clearTimeout(st.timer);
    st.timer = undefined;
    const p = st.pending;
    if (!p) return;
    st.pending = undefined;
    st.lastWritten = p.at;
    if (this.store.writeFailure) return;
    try {
      const db = this.store.db;
      db.prepare('INSERT INTO progress (run_id, step_id, at, line, figures_json) VALUES (?, ?, ?, ?, ?)').run(
        this.runId,
        stepId,
        p.at,
        scrubText(p.line).slice(0, 1000),
        JSON.stringify(p.figures),
      );
      // Counted once per step (a resumed run finds its earlier samples), then kept in memory.
      st.rows = st.rows === undefined ? countRows(db, this.runId, stepId) : st.rows + 1;
      if (st.rows > PROGRESS_ROWS_PER_STEP) st.rows = thin(db, this.runId, stepId);
    } catch {
      this.dropped++;
    }
  }

  /** Write every pending sample (the run ends here). */
  flushAll(): void {
    for (const id of this.steps.keys()) this.flush(id);
  }

  private stateOf(stepId: string): StepState {
    let st = this.steps.get(stepId);
    if (!st) {
      st = { lastWritten: -Infinity, pending: undefined, rows: undefined, window: [], timer: undefined };
      this.steps.set(stepId, st);
    }
    return st;
  }
}

/**
 * Drop every other row of the older half of a step's samples (the first row kept): recent
 * samples stay dense, old ones get sparser each time, and the count stays under the cap.
 */
function thin(db: Database.Database, runId: string, stepId: string): number {
  const half = Math.floor(PROGRESS_ROWS_PER_STEP / 2);
  db.prepare(
    `DELETE FROM progress WHERE id IN (
       SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM progress WHERE run_id = ? AND step_id = ?)
       WHERE rn > 1 AND rn <= ? AND rn % 2 = 0)`,
  ).run(runId, stepId, half);
  return countRows(db, runId, stepId);
}

function countRows(db: Database.Database, runId: string, stepId: string): number {
  const r = db.prepare('SELECT COUNT(*) AS n FROM progress WHERE run_id = ? AND step_id = ?').get(runId, stepId);
  return (r as { n: number }).n;
}

/** Numbers (finite) and short strings only: figures_json never carries a blob or a secret-bearing text. */
export function cleanFigures(f: ProgressFigures): ProgressFigures {
  const out: ProgressFigures = {};
  for (const [k, v] of Object.entries(f)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
    else if (typeof v === 'string') out[k] = scrubText(v).slice(0, MAX_STRING);
  }
  return out;
}

/** Fill in rate (units/s) and etaMs from done over the recent window, when the step gave none. */
function withRate(f: ProgressFigures, window: Array<{ at: number; done: number }>, at: number): ProgressFigures {
  if (typeof f.done !== 'number') return f;
  // A counter that went back (a new round, a restarted copy) starts a new window.
  if (window.length && window[window.length - 1]!.done > f.done) window.length = 0;
  window.push({ at, done: f.done });
  while (window.length > 2 && at - window[0]!.at > RATE_WINDOW_MS) window.shift();
  const first = window[0]!;
  const out = { ...f };
  if (out.rate === undefined && at - first.at >= 1000) out.rate = ((f.done - first.done) * 1000) / (at - first.at);
  if (out.etaMs === undefined && typeof f.total === 'number' && out.rate && out.rate > 0)
    out.etaMs = Math.max(0, Math.round(((f.total - f.done) / out.rate) * 1000));
  return out;
}

function toSample(r: Record<string, unknown>): ProgressSample {
  return {
    stepId: r.step_id as string,
    at: r.at as number,
    line: r.line as string,
    figures: JSON.parse(r.figures_json as string) as ProgressFigures,
  };
}

/** The newest sample of a run (of one step when given): read by `status` and the metrics endpoint. */
export function latestProgress(db: Database.Database, runId: string, stepId?: string): ProgressSample | undefined {
  const r = (
    stepId
      ? db
          .prepare('SELECT * FROM progress WHERE run_id = ? AND step_id = ? ORDER BY id DESC LIMIT 1')
          .get(runId, stepId)
      : db.prepare('SELECT * FROM progress WHERE run_id = ? ORDER BY id DESC LIMIT 1').get(runId)
  ) as Record<string, unknown> | undefined;
  return r ? toSample(r) : undefined;
}

/** Every kept sample of a step, oldest first (the report draws it). */
export function progressSeries(db: Database.Database, runId: string, stepId: string): ProgressSample[] {
  return (
    db.prepare('SELECT * FROM progress WHERE run_id = ? AND step_id = ? ORDER BY id').all(runId, stepId) as Record<
      string,
      unknown
    >[]
  ).map(toSample);
}
