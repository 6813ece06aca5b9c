import { scrubText } from '../scrub.js';
import type { Store } from './store.js';
import type { LogRow } from './node-log-lines.js';

/**
 * The `node_logs` table (schema migration 5): what a node's own log wrote
 * during a step. One row per line: `node` is the node's address as the tool
 * names nodes (HOST:PORT), `source` the log file's path on its host, or
 * 'stdout' / 'syslog' when the node writes no file (then the one row says
 * where to look), `at` the line's own time in ms (null for a line without
 * one, and for the collector's own notes, which start with `[redis-runbook]`).
 * Every line is scrubbed of known secrets before it is written.
 */
export interface NodeLogRow extends LogRow {
  stepId: string;
  node: string;
  source: string;
}

export class NodeLogStore {
  constructor(private readonly store: Store) {}

  /** One node's lines of one step, in one transaction. `extraSecrets`: values to scrub besides the registered ones. */
  add(
    runId: string,
    stepId: string,
    node: string,
    source: string,
    rows: LogRow[],
    extraSecrets: readonly string[] = [],
  ): void {
    if (!rows.length) return;
    const db = this.store.db;
    this.store.write('node logs', () =>
      db.transaction(() => {
        const insert = db.prepare(
          'INSERT INTO node_logs (run_id, step_id, node, source, at, line) VALUES (?, ?, ?, ?, ?, ?)',
        );
        for (const r of rows)
          insert.run(runId, stepId, node, scrubText(source, extraSecrets), r.at, scrubText(r.line, extraSecrets));
      })(),
    );
  }

  /** A run's rows (of one step), in the order they were written: per step, per node, the log's own order. */
  list(runId: string, stepId?: string): NodeLogRow[] {
    const rows = (
      stepId === undefined
        ? this.store.db.prepare('SELECT * FROM node_logs WHERE run_id = ? ORDER BY id').all(runId)
        : this.store.db
            .prepare('SELECT * FROM node_logs WHERE run_id = ? AND step_id = ? ORDER BY id')
            .all(runId, stepId)
    ) as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      stepId: r.step_id as string,
      node: r.node as string,
      source: r.source as string,
      at: (r.at as number | null) ?? null,
      line: r.line as string,
    }));
  }
}
