import Database from 'better-sqlite3';
import { assertKnownVersion, migrate } from './schema.js';
import { join } from 'node:path';
import type { AuditEvent, AuditSink } from '../redis/audit.js';
import { isReadOnly } from '../redis/connect.js';
import { failedError, preconditionError, usageError, RunbookError } from '../errors.js';
import { scrubText, scrubValue, scrubbedJson } from '../scrub.js';
import type { Intent } from './step-contract.js';
import { prepareStateDir, secureDbFiles } from './state-files.js';
import { selfIdentity, describeIdentity, type ProcessIdentity } from '../hosts/process-identity.js';

/** `refused`: preconditions failed before anything was sent; recorded so `show` can say why. */
export type RunStatus = 'running' | 'waiting' | 'stopped' | 'failed' | 'succeeded' | 'aborted' | 'refused';
export type StepStatus =
  'pending' | 'checking' | 'confirming' | 'running' | 'verifying' | 'done' | 'skipped' | 'failed';

export interface RunRow {
  id: string;
  runbook: string;
  clusters: string[];
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  pid: number | null;
  /** With pid: the owner's start time and host (null in runs recorded before they were kept). */
  pidStart?: string | null;
  host?: string | null;
  planJson: string;
  runbookHash: string;
  inventoryFile: string;
  snapshotJson: string | null;
  error: string | null;
}

export interface StepRow {
  runId: string;
  stepId: string;
  idx: number;
  kind: string;
  title: string;
  status: StepStatus;
  attempts: number;
  startedAt: number | null;
  finishedAt: number | null;
  output: unknown;
  error: string | null;
  runStartedAt: number | null;
  conditions: { phase: 'check' | 'verify'; conditions: Array<{ name: string; ok: boolean; reason: string }> } | null;
}

/** Per inventory cluster name, the nodes (id and address) it was found to have. */
export type ClusterNodes = Record<string, Array<{ id: string; address: string }>>;

/** Something a step found and the operator must see: a data difference, say. */
export interface Finding {
  key: string;
  kind: string;
  source: string;
  target: string;
}

/** `count`: how many times this same read was sent (reads are folded, see Store.record); `lastAt`: the last of them. */
export interface AuditRow extends AuditEvent {
  id: number;
  runId: string;
  write: boolean;
  count: number;
  lastAt: number;
}

/** Reads are written at most this long after they were sent (and before any other write). */
const READ_FLUSH_MS = 2000;
const READ_FLUSH_KEYS = 500;

interface PendingRead {
  runId: string;
  stepId: string | null;
  event: AuditEvent;
  count: number;
  lastAt: number;
  maxMs: number;
}

/**
 * The run journal: one SQLite file (WAL, synchronous=FULL) holding runs,
 * their persisted machine snapshots, step records, the audit log and the
 * per-cluster locks. better-sqlite3 is synchronous, so a transaction can
 * never span an await: a step writes "started", does its work, then writes
 * the result; a started step with no result is "in doubt" on resume.
 *
 * Everything written passes the scrubber (src/scrub.ts): no column holds a
 * secret, whatever text a step or a host command produced.
 *
 * Reads (polling INFO, CLUSTER NODES) are folded: the same read sent again
 * and again within a flush window is one row with a count, written in one
 * transaction with the others at most READ_FLUSH_MS later and always before
 * the next audit row (a write's intent, a note), so the journal's order holds. A crash loses at most that
 * window of reads, never a write's intent.
 *
 * A write that fails (disk full, database locked) is E_STATE_WRITE, and the
 * store refuses every write after it: a run whose journal is incomplete
 * stops instead of acting on.
 */
export class Store implements AuditSink {
  readonly db: Database.Database;
  private currentRun: string | undefined;
  /** The step whose commands are being sent, for audit events that do not name one. */
  currentStepId: string | undefined;
  readonly file: string;
  /** Things the operator should hear about (a state directory whose mode was tightened). */
  readonly notices: string[];
  /** The first failed write: every later write is refused with it. */
  writeFailure: RunbookError | undefined;
  private pending = new Map<string, PendingRead>();
  private pendingSince = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(readonly stateDir: string) {
    this.notices = prepareStateDir(stateDir);
    this.file = join(stateDir, 'state.db');
    secureDbFiles(this.file);
    try {
      this.db = new Database(this.file);
      assertKnownVersion(this.db, this.file);
      this.db.pragma('journal_mode = WAL');
      // WAL defaults to NORMAL in better-sqlite3's build; a crash journal wants FULL.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      this.createSchema();
    } catch (err) {
      (this as { db?: Database.Database }).db?.close();
      throw this.openError(err);
    }
  }

  private openError(err: unknown): RunbookError {
    if (err instanceof RunbookError) return err;
    const code = (err as { code?: string }).code ?? '';
    const msg = (err as Error).message;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      return usageError(
        'E_STATE_DB',
        `${this.file} is not a usable redis-runbook state database (${code}: ${msg})`,
        `move ${this.file} away (it may be another program's file), or pass --state-dir another directory`,
      );
    }
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return this.writeError(err, 'open');
    return usageError(
      'E_STATE_DB',
      `cannot open the state database ${this.file} (${code || 'error'}: ${msg})`,
      'check that the state directory is writable and has free space, or pass --state-dir another directory',
    );
  }

  private writeError(err: unknown, what: string): RunbookError {
    const code = (err as { code?: string }).code ?? 'error';
    const run = this.currentRun
      ? `; resume the run with \`redis-runbook resume ${this.currentRun}\` once it is fixed`
      : '';
    return failedError(
      'E_STATE_WRITE',
      `cannot write the state database ${this.file} (${what}: ${code}: ${(err as Error).message}); stopped, nothing more is sent`,
      `free disk space on its filesystem, or stop the program that holds it locked (another redis-runbook, an sqlite3 shell)${run}`,
    );
  }

  /** Every write goes through here: a SQLite failure becomes E_STATE_WRITE and refuses all later writes.
   * Public for the stores that keep their own tables in this database (progress, node logs). */
  write<T>(what: string, fn: () => T): T {
    if (this.writeFailure) throw this.writeFailure;
    // Reads sent before an audit row are written before it: the journal's order is the order things were sent.
    if (what === 'audit' || what === 'audit intent' || what === 'note') this.flushReads();
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof Database.SqliteError)) throw err;
      this.writeFailure = this.writeError(err, what);
      throw this.writeFailure;
    }
  }

  /** The schema is schema.ts's numbered migrations; this brings an older state.db up to date. */
  private createSchema(): void {
    migrate(this.db, this.file);
  }

  close(): void {
    try {
      if (!this.writeFailure) this.flushReads();
    } catch {
      // The failure is latched and was (or will be) reported by the run.
    } finally {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.db.close();
    }
  }

  /** Write the folded reads waiting in memory, in one transaction. */
  flushReads(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending.clear();
    this.write('audit reads', () =>
      this.db.transaction(() => {
        const ins = this.db.prepare(
          'INSERT INTO audit (run_id, step_id, at, target, command, args_json, duration_ms, ok, error, count, last_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
        );
        for (const r of rows) {
          const e = r.event;
          ins.run(
            r.runId,
            r.stepId,
            e.at,
            scrubText(e.target),
            scrubText(e.command),
            scrubbedJson(e.args),
            r.maxMs,
            e.ok ? 1 : 0,
            e.error === undefined ? null : scrubText(e.error),
            r.count,
            r.lastAt,
          );
        }
      })(),
    );
  }

  /** Audit events go to the run being executed. */
  attach(runId: string | undefined): void {
    this.currentRun = runId;
  }

  /**
   * A read (or a summary of bulk work). Reads are folded and written later
   * (see the class comment); this never throws: a failed flush is latched and
   * stops the run at its next write.
   */
  record(e: AuditEvent): void {
    if (!this.currentRun) return;
    const stepId = e.stepId ?? this.currentStepId ?? null;
    if (!isReadOnly(e.command, e.args)) {
      try {
        this.write('audit', () =>
          this.db
            .prepare(
              'INSERT INTO audit (run_id, step_id, at, target, command, args_json, duration_ms, ok, error) VALUES (?,?,?,?,?,?,?,?,?)',
            )
            .run(
              this.currentRun,
              stepId,
              e.at,
              scrubText(e.target),
              scrubText(e.command),
              scrubbedJson(e.args),
              e.durationMs,
              e.ok ? 1 : 0,
              e.error === undefined ? null : scrubText(e.error),
            ),
        );
      } catch {
        // latched in writeFailure
      }
      return;
    }
    const key = JSON.stringify([this.currentRun, stepId, e.target, e.command, e.args, e.ok, e.error ?? null]);
    const p = this.pending.get(key);
    if (p) {
      p.count++;
      p.lastAt = e.at;
      p.maxMs = Math.max(p.maxMs, e.durationMs);
    } else {
      if (this.pending.size === 0) this.pendingSince = Date.now();
      this.pending.set(key, { runId: this.currentRun, stepId, event: e, count: 1, lastAt: e.at, maxMs: e.durationMs });
    }
    try {
      if (Date.now() - this.pendingSince >= READ_FLUSH_MS || this.pending.size >= READ_FLUSH_KEYS) this.flushReads();
      else if (!this.flushTimer) {
        // A quiet spell (a step waiting without reading) still gets its reads written.
        this.flushTimer = setTimeout(() => {
          this.flushTimer = undefined;
          try {
            this.flushReads();
          } catch {
            /* latched */
          }
        }, READ_FLUSH_MS);
        this.flushTimer.unref();
      }
    } catch {
      // latched in writeFailure
    }
  }

  intent(e: AuditEvent): number | undefined {
    if (!this.currentRun) return undefined;
    const r = this.write('audit intent', () =>
      this.db
        .prepare(
          'INSERT INTO audit (run_id, step_id, at, target, command, args_json, duration_ms, ok, error, write) VALUES (?,?,?,?,?,?,?,?,?,1)',
        )
        .run(
          this.currentRun,
          e.stepId ?? this.currentStepId ?? null,
          e.at,
          scrubText(e.target),
          scrubText(e.command),
          scrubbedJson(e.args),
          0,
          0,
          'sent; no reply recorded',
        ),
    );
    return Number(r.lastInsertRowid);
  }

  complete(id: number, o: Pick<AuditEvent, 'ok' | 'durationMs' | 'error'>): void {
    this.write('audit', () =>
      this.db
        .prepare('UPDATE audit SET ok = ?, duration_ms = ?, error = ? WHERE id = ?')
        .run(o.ok ? 1 : 0, o.durationMs, o.error === undefined ? null : scrubText(o.error), id),
    );
  }

  /** Record an operator decision or a runner note in the audit log. */
  note(runId: string, stepId: string | undefined, command: string, args: string[] = []): void {
    this.write('note', () =>
      this.db
        .prepare(
          'INSERT INTO audit (run_id, step_id, at, target, command, args_json, duration_ms, ok, error) VALUES (?,?,?,?,?,?,?,?,?)',
        )
        .run(runId, stepId ?? null, Date.now(), 'operator', scrubText(command), scrubbedJson(args), 0, 1, null),
    );
  }

  /**
   * Create a run and take the lock on each of its clusters, atomically.
   * A cluster held by another unfinished run refuses with that run's id.
   */
  createRun(
    row: Omit<RunRow, 'updatedAt' | 'snapshotJson' | 'error'> & { error?: string },
    steps: Array<Pick<StepRow, 'stepId' | 'idx' | 'kind' | 'title'>>,
    lock = true,
    nodes: ClusterNodes = {},
  ): void {
    // The owner is this process unless the caller names another one.
    const me = selfIdentity();
    const owner =
      row.pid === me.pid && row.pidStart === undefined && row.host === undefined
        ? me
        : { pid: row.pid, startTime: row.pidStart ?? undefined, host: row.host ?? undefined };
    this.write('new run', () =>
      this.db
        .transaction(() => {
          const locked = row.status === 'refused' || !lock ? [] : row.clusters;
          const lockedNodes = Object.fromEntries(locked.filter((c) => nodes[c]).map((c) => [c, nodes[c]!]));
          this.assertFree(locked, lockedNodes);
          for (const cluster of locked)
            this.db
              .prepare('INSERT INTO locks (cluster, run_id, acquired_at) VALUES (?,?,?)')
              .run(cluster, row.id, Date.now());
          const insNode = this.db.prepare(
            'INSERT OR IGNORE INTO node_locks (node_id, run_id, cluster, address, acquired_at) VALUES (?,?,?,?,?)',
          );
          for (const [cluster, ns] of Object.entries(lockedNodes))
            for (const n of ns) insNode.run(n.id, row.id, cluster, n.address, Date.now());
          this.db
            .prepare(
              'INSERT INTO runs (id, runbook, clusters, status, created_at, updated_at, pid, pid_start, host, plan_json, runbook_hash, inventory_file, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
            )
            .run(
              row.id,
              row.runbook,
              JSON.stringify(row.clusters),
              row.status,
              row.createdAt,
              row.createdAt,
              owner.pid,
              owner.startTime ?? null,
              owner.host ?? null,
              row.planJson,
              row.runbookHash,
              row.inventoryFile,
              row.error == null ? null : scrubText(row.error),
            );
          const ins = this.db.prepare(
            'INSERT INTO steps (run_id, step_id, idx, kind, title, status) VALUES (?,?,?,?,?,?)',
          );
          for (const s of steps) ins.run(row.id, s.stepId, s.idx, s.kind, scrubText(s.title), 'pending');
        })
        .immediate(),
    );
  }

  /** Persist the machine snapshot and the step status it implies, in one transaction. */
  persist(
    runId: string,
    snapshot: unknown,
    status: RunStatus,
    steps: Array<{ stepId: string; status: StepStatus; error?: string | null }> = [],
  ): void {
    this.write('run state', () =>
      this.db
        .transaction(() => {
          // This process must still own the run: another one may have claimed it (a resume that
          // took our pid for a dead one). Checked in the same transaction as the write.
          this.assertOwner(runId);
          // A finished run stays finished (an `abort` from elsewhere is not undone by a late write).
          const r = this.db
            .prepare(
              "UPDATE runs SET snapshot_json = ?, status = ?, updated_at = ? WHERE id = ? AND status NOT IN ('succeeded', 'aborted')",
            )
            .run(JSON.stringify(snapshot), status, Date.now(), runId);
          if (r.changes === 0)
            throw preconditionError(
              'E_RUN_FINISHED',
              `run ${runId} was finished or aborted by another process`,
              'see `redis-runbook show`',
            );
          for (const step of steps)
            this.stepStatus(runId, step.stepId, step.status, step.error == null ? step.error : scrubText(step.error));
          // Release the clusters in the same transaction as the final status: no kill can leave a finished run holding them.
          if (status === 'succeeded' || status === 'aborted') this.releaseLocks(runId);
        })
        .immediate(),
    );
  }

  setStepStatus(runId: string, stepId: string, status: StepStatus, error?: string | null): void {
    this.write('step status', () => this.stepStatus(runId, stepId, status, error == null ? error : scrubText(error)));
  }

  private stepStatus(runId: string, stepId: string, status: StepStatus, error?: string | null): void {
    const now = Date.now();
    if (status === 'checking') {
      this.db
        .prepare(
          'UPDATE steps SET status = ?, attempts = attempts + 1, started_at = COALESCE(started_at, ?), error = NULL WHERE run_id = ? AND step_id = ? AND status != ?',
        )
        .run(status, now, runId, stepId, 'checking');
    } else if (status === 'failed') {
      // An unknown error (a resumed process does not have it) keeps the recorded one.
      this.db
        .prepare(
          'UPDATE steps SET status = ?, finished_at = ?, error = COALESCE(?, error) WHERE run_id = ? AND step_id = ?',
        )
        .run(status, now, error ?? null, runId, stepId);
    } else if (status === 'done' || status === 'skipped') {
      this.db
        .prepare('UPDATE steps SET status = ?, finished_at = ?, error = ? WHERE run_id = ? AND step_id = ?')
        .run(status, now, error ?? null, runId, stepId);
    } else if (status === 'running') {
      // When the run phase began: a resume that finds the step still here treats it as in doubt since then.
      this.db
        .prepare('UPDATE steps SET status = ?, run_started_at = ? WHERE run_id = ? AND step_id = ?')
        .run(status, now, runId, stepId);
    } else {
      this.db.prepare('UPDATE steps SET status = ? WHERE run_id = ? AND step_id = ?').run(status, runId, stepId);
    }
  }

  setStepOutput(runId: string, stepId: string, output: unknown): void {
    this.write('step output', () =>
      this.db
        .prepare('UPDATE steps SET output_json = ? WHERE run_id = ? AND step_id = ?')
        .run(scrubbedJson(output ?? null), runId, stepId),
    );
  }

  setStepConditions(runId: string, stepId: string, phase: 'check' | 'verify', conditions: unknown): void {
    this.write('step conditions', () =>
      this.db
        .prepare('UPDATE steps SET conditions_json = ? WHERE run_id = ? AND step_id = ?')
        .run(scrubbedJson({ phase, conditions }), runId, stepId),
    );
  }

  /**
   * Take over an unfinished run for this process, atomically: refused when
   * another process claimed it since its owner (`seen`) was read.
   */
  claim(runId: string, seen: number | null | Pick<RunRow, 'pid' | 'pidStart' | 'host'>): boolean {
    const s = typeof seen === 'object' && seen !== null ? seen : { pid: seen, pidStart: undefined, host: undefined };
    const me = selfIdentity();
    const r = this.write('claim', () =>
      s.pidStart === undefined && s.host === undefined
        ? this.db
            .prepare('UPDATE runs SET pid = ?, pid_start = ?, host = ?, updated_at = ? WHERE id = ? AND pid IS ?')
            .run(me.pid, me.startTime ?? null, me.host, Date.now(), runId, s.pid)
        : this.db
            .prepare(
              'UPDATE runs SET pid = ?, pid_start = ?, host = ?, updated_at = ? WHERE id = ? AND pid IS ? AND pid_start IS ? AND host IS ?',
            )
            .run(me.pid, me.startTime ?? null, me.host, Date.now(), runId, s.pid, s.pidStart ?? null, s.host ?? null),
    );
    return r.changes === 1;
  }

  /** The process recorded as executing a run. */
  owner(run: Pick<RunRow, 'pid' | 'pidStart' | 'host'>): ProcessIdentity | undefined {
    return run.pid === null ? undefined : { pid: run.pid, startTime: run.pidStart ?? undefined, host: run.host ?? '' };
  }

  /**
   * Refuse, naming the new owner, when another process has claimed this run:
   * the process that lost it must stop before it sends anything more.
   */
  assertOwner(runId: string): void {
    const run = this.getRun(runId);
    if (!run) return;
    const owner = this.owner(run);
    const me = selfIdentity();
    // A run recorded before start times were kept has its pid alone to go on.
    if (
      owner &&
      (owner.pid !== me.pid ||
        (owner.host && owner.host !== me.host) ||
        (owner.startTime !== undefined && owner.startTime !== me.startTime))
    ) {
      throw preconditionError(
        'E_RUN_TAKEN_OVER',
        `run ${runId} is now owned by ${describeIdentity(owner)}, not this process (${describeIdentity(me)}); this process stops here and sends nothing more`,
        `let the owner finish it; see \`redis-runbook show ${runId}\``,
      );
    }
  }

  private releaseLocks(runId: string): void {
    this.db.prepare('DELETE FROM locks WHERE run_id = ?').run(runId);
    this.db.prepare('DELETE FROM node_locks WHERE run_id = ?').run(runId);
  }

  setRunStatus(runId: string, status: RunStatus, error?: string | null): void {
    this.write('run status', () =>
      this.db
        .transaction(() => {
          // A run that succeeded in the end has no error; otherwise an unknown error keeps the recorded one.
          this.db
            .prepare(
              "UPDATE runs SET status = ?, error = CASE WHEN ? = 'succeeded' THEN NULL ELSE COALESCE(?, error) END, updated_at = ? WHERE id = ?",
            )
            .run(status, status, error == null ? null : scrubText(error), Date.now(), runId);
          // A finished run gives its clusters back; a stopped or failed one keeps them until resumed or aborted.
          if (status === 'succeeded' || status === 'aborted') this.releaseLocks(runId);
        })
        .immediate(),
    );
  }

  getRun(id: string): RunRow | undefined {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? toRun(r) : undefined;
  }

  listRuns(): RunRow[] {
    return (this.db.prepare('SELECT * FROM runs ORDER BY created_at DESC').all() as Record<string, unknown>[]).map(
      toRun,
    );
  }

  steps(runId: string): StepRow[] {
    return readSteps(this.db, runId);
  }

  audit(runId: string, stepId?: string): AuditRow[] {
    if (!this.writeFailure) this.flushReads();
    const rows = (
      stepId
        ? this.db.prepare('SELECT * FROM audit WHERE run_id = ? AND step_id = ? ORDER BY id').all(runId, stepId)
        : this.db.prepare('SELECT * FROM audit WHERE run_id = ? ORDER BY id').all(runId)
    ) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: r.id as number,
      runId: r.run_id as string,
      stepId: (r.step_id as string | null) ?? undefined,
      at: r.at as number,
      target: r.target as string,
      command: r.command as string,
      args: JSON.parse(r.args_json as string) as string[],
      durationMs: r.duration_ms as number,
      ok: r.ok === 1,
      error: (r.error as string | null) ?? undefined,
      write: r.write === 1,
      count: (r.count as number | null) ?? 1,
      lastAt: (r.last_at as number | null) ?? (r.at as number),
    }));
  }

  /**
   * A step's intent, written (and committed) before it acts: the next attempt
   * of the step, after a crash or a failure, reads it to learn what may
   * already have happened. Named by the step, so finding it needs no search
   * of the journal for command text. The detail holds no secret (scrubbed).
   */
  recordIntent(runId: string, stepId: string, name: string, detail: Record<string, unknown> = {}): void {
    this.write('intent', () =>
      this.db
        .prepare('INSERT INTO intents (run_id, step_id, at, name, detail_json) VALUES (?,?,?,?,?)')
        .run(runId, stepId, Date.now(), name, scrubbedJson(detail)),
    );
  }

  /** A step's intents, oldest first. */
  intents(runId: string, stepId: string): Intent[] {
    const rows = this.db
      .prepare('SELECT at, name, detail_json FROM intents WHERE run_id = ? AND step_id = ? ORDER BY id')
      .all(runId, stepId) as Array<{ at: number; name: string; detail_json: string }>;
    return rows.map((r) => ({ at: r.at, name: r.name, detail: JSON.parse(r.detail_json) as Record<string, unknown> }));
  }

  /**
   * State a run keeps across its steps and across resumes (a background
   * sync's replication ids and offsets), by key. Values must hold no secret.
   */
  getState<T>(runId: string, key: string): T | undefined {
    const r = this.db.prepare('SELECT value_json FROM run_state WHERE run_id = ? AND key = ?').get(runId, key) as
      { value_json: string } | undefined;
    return r ? (JSON.parse(r.value_json) as T) : undefined;
  }

  setState(runId: string, key: string, value: unknown): void {
    this.write('run state', () =>
      this.db
        .prepare(
          'INSERT INTO run_state (run_id, key, value_json, updated_at) VALUES (?,?,?,?) ON CONFLICT(run_id, key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at',
        )
        .run(runId, key, scrubbedJson(value), Date.now()),
    );
  }

  /** Replace a step's findings (e.g. data differences) with the latest ones. */
  setFindings(runId: string, stepId: string, rows: Finding[]): void {
    this.write('findings', () =>
      this.db
        .transaction(() => {
          this.db.prepare('DELETE FROM findings WHERE run_id = ? AND step_id = ?').run(runId, stepId);
          const ins = this.db.prepare(
            'INSERT INTO findings (run_id, step_id, key, kind, source, target) VALUES (?,?,?,?,?,?)',
          );
          for (const r of scrubValue(rows)) ins.run(runId, stepId, r.key, r.kind, r.source, r.target);
        })
        .immediate(),
    );
  }

  findings(runId: string): Array<Finding & { stepId: string }> {
    return (
      this.db.prepare('SELECT * FROM findings WHERE run_id = ? ORDER BY rowid').all(runId) as Record<string, string>[]
    ).map((r) => ({ stepId: r.step_id!, key: r.key!, kind: r.kind!, source: r.source!, target: r.target! }));
  }

  /**
   * Refuse when an unfinished run holds one of these clusters, naming it and
   * the way out. A cluster is held by name and, when its nodes are given, by
   * any of its node ids: the same nodes under another inventory name are the
   * same cluster.
   */
  assertFree(clusters: readonly string[], nodes: ClusterNodes = {}): void {
    for (const cluster of clusters) {
      const holder = this.lockHolder(cluster);
      if (holder) {
        throw preconditionError(
          'E_CLUSTER_LOCKED',
          `cluster ${cluster} is held by run ${holder}, which has not finished`,
          `finish it with \`redis-runbook resume ${holder}\`, or give it up with \`redis-runbook abort ${holder}\``,
        );
      }
    }
    const q = this.db.prepare('SELECT run_id, cluster, address FROM node_locks WHERE node_id = ?');
    for (const [cluster, ns] of Object.entries(nodes)) {
      const held = ns
        .map((n) => q.get(n.id) as { run_id: string; cluster: string; address: string } | undefined)
        .filter((h) => h !== undefined);
      if (held.length) {
        const holder = held[0]!.run_id;
        throw preconditionError(
          'E_CLUSTER_LOCKED',
          `cluster ${cluster} is held by run ${holder}, which has not finished: its nodes ${held
            .filter((h) => h.run_id === holder)
            .map((h) => h.address)
            .join(', ')} are the ones that run locked as cluster \`${held[0]!.cluster}\``,
          `finish it with \`redis-runbook resume ${holder}\`, or give it up with \`redis-runbook abort ${holder}\``,
        );
      }
    }
  }

  lockHolder(cluster: string): string | undefined {
    return (
      this.db.prepare('SELECT run_id FROM locks WHERE cluster = ?').get(cluster) as { run_id: string } | undefined
    )?.run_id;
  }
}

/** A run's step rows in order, from any connection to the state database (a read-only one too). */
export function readSteps(db: Database.Database, runId: string): StepRow[] {
  return (db.prepare('SELECT * FROM steps WHERE run_id = ? ORDER BY idx').all(runId) as Record<string, unknown>[]).map(
    (r) => ({
      runId: r.run_id as string,
      stepId: r.step_id as string,
      idx: r.idx as number,
      kind: r.kind as string,
      title: r.title as string,
      status: r.status as StepStatus,
      attempts: r.attempts as number,
      startedAt: r.started_at as number | null,
      finishedAt: r.finished_at as number | null,
      output: r.output_json ? JSON.parse(r.output_json as string) : null,
      error: r.error as string | null,
      runStartedAt: r.run_started_at as number | null,
      conditions: r.conditions_json ? JSON.parse(r.conditions_json as string) : null,
    }),
  );
}

/** A runs row as a RunRow, from any connection to the state database. */
export function toRun(r: Record<string, unknown>): RunRow {
  return {
    id: r.id as string,
    runbook: r.runbook as string,
    clusters: JSON.parse(r.clusters as string) as string[],
    status: r.status as RunStatus,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    pid: r.pid as number | null,
    pidStart: (r.pid_start as string | null | undefined) ?? null,
    host: (r.host as string | null | undefined) ?? null,
    planJson: r.plan_json as string,
    runbookHash: r.runbook_hash as string,
    inventoryFile: r.inventory_file as string,
    snapshotJson: r.snapshot_json as string | null,
    error: r.error as string | null,
  };
}
