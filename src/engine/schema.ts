import type Database from 'better-sqlite3';
import { usageError } from '../errors.js';

/**
 * The state database's schema, as numbered migrations: migration N takes a
 * database at `PRAGMA user_version` N-1 to N. A shipped migration is never
 * edited; a change is a new one at the end. Each is written to be harmless
 * on a database that already has what it adds: databases made before the
 * schema was versioned (user_version 0) hold some of these columns already.
 */
interface Migration {
  version: number;
  what: string;
  up(db: Database.Database): void;
}

const columns = (db: Database.Database, table: string): Set<string> =>
  new Set((db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name));

const addColumn = (db: Database.Database, table: string, column: string, decl: string): void => {
  if (!columns(db, table).has(column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
};

/** The run_state key migration 4 sets on runs an older version left unfinished. */
export const JOURNAL_ONLY = 'journal-only-past';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: 'runs, steps, the audit journal, findings, run state, cluster and node locks',
    up: (db) =>
      db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, runbook TEXT NOT NULL, clusters TEXT NOT NULL, status TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, pid INTEGER,
        plan_json TEXT NOT NULL, runbook_hash TEXT NOT NULL, inventory_file TEXT NOT NULL,
        snapshot_json TEXT, error TEXT);
      CREATE TABLE IF NOT EXISTS steps (
        run_id TEXT NOT NULL, step_id TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, started_at INTEGER, finished_at INTEGER,
        output_json TEXT, error TEXT, run_started_at INTEGER, conditions_json TEXT, PRIMARY KEY (run_id, step_id));
      CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT, at INTEGER NOT NULL,
        target TEXT NOT NULL, command TEXT NOT NULL, args_json TEXT NOT NULL, duration_ms INTEGER NOT NULL,
        ok INTEGER NOT NULL, error TEXT,
        write INTEGER NOT NULL DEFAULT 0); -- 1: a command that may change state, journaled before it was sent
      CREATE INDEX IF NOT EXISTS audit_run ON audit(run_id, id);
      CREATE TABLE IF NOT EXISTS findings (
        run_id TEXT NOT NULL, step_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, source TEXT, target TEXT);
      CREATE INDEX IF NOT EXISTS findings_run ON findings(run_id, step_id);
      CREATE TABLE IF NOT EXISTS run_state (
        run_id TEXT NOT NULL, key TEXT NOT NULL, value_json TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (run_id, key));
      CREATE TABLE IF NOT EXISTS locks (cluster TEXT PRIMARY KEY, run_id TEXT NOT NULL, acquired_at INTEGER NOT NULL);
      -- A cluster is what its nodes are, not what an inventory calls it: one lock per node id.
      CREATE TABLE IF NOT EXISTS node_locks (node_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, cluster TEXT NOT NULL, address TEXT NOT NULL, acquired_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS node_locks_run ON node_locks(run_id);
    `),
  },
  {
    version: 2,
    what: 'runs.pid_start and runs.host: which process (start time, machine) owns a run, so a reused pid is not taken for it',
    up: (db) => {
      addColumn(db, 'runs', 'pid_start', 'TEXT');
      addColumn(db, 'runs', 'host', 'TEXT');
    },
  },
  {
    version: 3,
    what: 'audit.count and audit.last_at: repeated reads folded into one journal row',
    up: (db) => {
      addColumn(db, 'audit', 'count', 'INTEGER NOT NULL DEFAULT 1');
      addColumn(db, 'audit', 'last_at', 'INTEGER');
    },
  },
  {
    version: 4,
    what: 'intents: what a step was about to do, written before it acts, read by its next attempt',
    up: (db) =>
      db.exec(`
      CREATE TABLE IF NOT EXISTS intents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL, at INTEGER NOT NULL,
        name TEXT NOT NULL, detail_json TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS intents_step ON intents(run_id, step_id, id);
      -- A run left unfinished by a version that kept no intents: its steps' past is in the
      -- journal only, which this version does not read (runner.ts refuses to act on it).
      INSERT OR IGNORE INTO run_state (run_id, key, value_json, updated_at)
        SELECT id, '${JOURNAL_ONLY}', 'true', CAST(strftime('%s','now') AS INTEGER) * 1000 FROM runs
        WHERE status NOT IN ('succeeded', 'aborted', 'refused');
    `),
  },
  {
    version: 5,
    what: 'progress samples (what a long step has done, for `status`, metrics and the report) and node log excerpts',
    up: (db) =>
      db.exec(`
      -- One row per sample a long step reported (bytes copied, slots moved, keys synced, lag):
      -- \`status\` reads the latest, the report draws the series. figures_json holds numbers only.
      CREATE TABLE IF NOT EXISTS progress (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL, at INTEGER NOT NULL,
        line TEXT NOT NULL, figures_json TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS progress_step ON progress(run_id, step_id, id);
      -- The lines a node's own log wrote during a step (failover, drill, decommission), scrubbed.
      -- at: the line's own timestamp (ms), or null when it could not be read.
      CREATE TABLE IF NOT EXISTS node_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL, node TEXT NOT NULL,
        source TEXT NOT NULL, at INTEGER, line TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS node_logs_step ON node_logs(run_id, step_id, id);
    `),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Bring the database to SCHEMA_VERSION, each migration in its own
 * transaction with the version it reaches (a crash between two leaves a
 * database a later open continues from). A database from a newer
 * redis-runbook is refused rather than written with an older idea of it.
 */
export function migrate(db: Database.Database, file: string): { from: number; to: number } {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const from = assertKnownVersion(db, file);
  // Up to date: no write lock (a `show` must not wait for a running run's writes).
  if (from === SCHEMA_VERSION) return { from, to: from };
  for (const m of MIGRATIONS) {
    // IMMEDIATE: two processes opening an old database at once apply each migration once.
    db.transaction(() => {
      if (version() >= m.version) return;
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return { from, to: version() };
}

/** The database's schema version; a newer one than this release knows is refused before anything touches the file. */
export function assertKnownVersion(db: Database.Database, file: string): number {
  const v = db.pragma('user_version', { simple: true }) as number;
  if (v > SCHEMA_VERSION) {
    throw usageError(
      'E_STATE_DB',
      `${file} has schema version ${v}, newer than this redis-runbook knows (${SCHEMA_VERSION}): it was written by a newer release`,
      'run the newer redis-runbook, or pass --state-dir another directory',
    );
  }
  return v;
}
