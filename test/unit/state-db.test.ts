import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../../src/engine/store.js';
import { JOURNAL_ONLY, MIGRATIONS, SCHEMA_VERSION } from '../../src/engine/schema.js';
import { RunbookError } from '../../src/errors.js';

// A state.db written by redis-runbook 0.1.0 before the schema had a version: one finished
// migrate-sync run with its steps and journal (made by the scale benchmark, no secrets in it).
const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'state-db', 'made-by-0.1.0.db');

function stateDir(from?: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'rr-statedb-')), 'state');
  mkdirSync(dir, { mode: 0o700 });
  if (from) copyFileSync(from, join(dir, 'state.db'));
  return dir;
}

const userVersion = (file: string): number => {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

test('the migrations are numbered 1, 2, 3... with no gap, and the newest is the schema version', () => {
  assert.deepEqual(
    MIGRATIONS.map((m) => m.version),
    MIGRATIONS.map((_, i) => i + 1),
  );
  assert.equal(SCHEMA_VERSION, MIGRATIONS.length);
});

test('a state.db made by 0.1.0 (unversioned) opens, is brought to the schema version, and its run reads and takes new writes', () => {
  assert.equal(userVersion(FIXTURE), 0);
  const dir = stateDir(FIXTURE);
  const s = new Store(dir);
  try {
    const runs = s.listRuns();
    assert.equal(runs.length, 1);
    const run = runs[0]!;
    assert.equal(run.runbook, 'migrate-sync');
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(
      s.steps(run.id).map((x) => x.stepId),
      ['preflight-target', 'preflight-sync', 'start-sync', 'full-sync', 'catch-up', 'cut-over', 'verify', 'report'],
    );
    assert.ok(s.steps(run.id).every((x) => x.status === 'done'));
    const journal = s.audit(run.id);
    assert.ok(journal.length > 0 && journal.some((e) => e.command === 'RESTORE'));
    // New writes land in the old file.
    s.note(run.id, 'report', 'NOTE', ['opened by a newer redis-runbook']);
    s.setState(run.id, 'migrated', { ok: true });
  } finally {
    s.close();
  }
  assert.equal(userVersion(join(dir, 'state.db')), SCHEMA_VERSION);
  // Opened again: nothing to do, and what was written is there.
  const again = new Store(dir);
  try {
    const id = again.listRuns()[0]!.id;
    assert.ok(again.audit(id).some((e) => e.command === 'NOTE'));
  } finally {
    again.close();
  }
});

test('migration 4 marks a run the older version left unfinished (its past is in the journal only), and no finished run', () => {
  const dir = stateDir(FIXTURE);
  // The fixture's run, as if it had been cut off: failed, not succeeded.
  const raw = new Database(join(dir, 'state.db'));
  raw.prepare("UPDATE runs SET status = 'failed'").run();
  raw.close();
  const s = new Store(dir);
  try {
    const run = s.listRuns()[0]!;
    assert.equal(s.getState<boolean>(run.id, JOURNAL_ONLY), true);
  } finally {
    s.close();
  }
  const finished = stateDir(FIXTURE);
  const s2 = new Store(finished);
  try {
    assert.equal(s2.getState(s2.listRuns()[0]!.id, JOURNAL_ONLY), undefined);
  } finally {
    s2.close();
  }
});

test('a new state.db starts at the schema version', () => {
  const dir = stateDir();
  new Store(dir).close();
  assert.equal(userVersion(join(dir, 'state.db')), SCHEMA_VERSION);
});

test('a state.db from a newer release is refused, named, and left as it was', () => {
  const dir = stateDir(FIXTURE);
  const file = join(dir, 'state.db');
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = readFileSync(file);
  assert.throws(
    () => new Store(dir),
    (e: unknown) =>
      e instanceof RunbookError &&
      e.code === 'E_STATE_DB' &&
      /newer than this redis-runbook knows/.test(e.message) &&
      e.message.includes(file),
  );
  assert.equal(userVersion(file), SCHEMA_VERSION + 1);
  assert.ok(readFileSync(file).equals(before), 'the file is unchanged');
});
