import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/engine/store.js';
import {
  PROGRESS_ROWS_PER_STEP,
  ProgressRecorder,
  latestProgress,
  progressSeries,
} from '../../src/engine/progress-store.js';
import { escapeLabel, metricsOf, parseMetricsAddr, renderMetrics } from '../../src/cli/metrics.js';
import { barOf, plainLine } from '../../src/cli/progress-bar.js';
import type { RunView } from '../../src/engine/run-view.js';

const store = () => new Store(mkdtempSync(join(tmpdir(), 'rr-progress-')));

test('progress samples are throttled to one row per step per second, and the last one of a step is always kept', () => {
  const s = store();
  let now = 1_000_000;
  const rec = new ProgressRecorder(s, 'r1', () => now);
  for (let i = 0; i <= 100; i++) {
    rec.record('copy', `copied ${i}`, { unit: 'bytes', done: i * 10, total: 1000 });
    now += 50; // 20 samples a second
  }
  rec.record('other', 'x');
  rec.flush('copy');
  rec.flush('other');
  const rows = progressSeries(s.db, 'r1', 'copy');
  // 101 samples over 5 s: the first, one a second after it, and the last.
  assert.ok(rows.length >= 5 && rows.length <= 7, `${rows.length} rows`);
  assert.equal(rows[rows.length - 1]!.line, 'copied 100');
  for (let i = 1; i < rows.length - 1; i++) assert.ok(rows[i]!.at - rows[i - 1]!.at >= 1000);
  assert.equal(latestProgress(s.db, 'r1', 'copy')!.figures.done, 1000);
  assert.equal(latestProgress(s.db, 'r1')!.stepId, 'other');
  s.close();
});

test('rate and ETA are computed from done/total over a window when the step gives none; given ones are kept', () => {
  const s = store();
  let now = 0;
  const rec = new ProgressRecorder(s, 'r1', () => now);
  rec.record('v', 'a', { unit: 'keys', done: 0, total: 1000 });
  now = 2000;
  const f = rec.record('v', 'b', { unit: 'keys', done: 200, total: 1000 });
  assert.equal(f.rate, 100);
  assert.equal(f.etaMs, 8000);
  const g = rec.record('v', 'c', { unit: 'keys', done: 300, total: 1000, rate: 7, etaMs: 1 });
  assert.equal(g.rate, 7);
  assert.equal(g.etaMs, 1);
  s.close();
});

test('figures keep numbers and short strings only', () => {
  const s = store();
  const rec = new ProgressRecorder(s, 'r1');
  const f = rec.record('v', 'a', {
    done: 1,
    total: Infinity,
    phase: 'x'.repeat(500),
    bad: { nested: 1 } as unknown as number,
  });
  assert.deepEqual(Object.keys(f).sort(), ['done', 'phase']);
  assert.equal((f.phase as string).length, 80);
  s.close();
});

test('a day-long step stays bounded: older samples are thinned, the first and the newest kept', () => {
  const s = store();
  let now = 0;
  const rec = new ProgressRecorder(s, 'r1', () => now);
  const samples = 5000; // one a second for 83 minutes (a day is the same, only slower to write)
  for (let i = 0; i < samples; i += 1) {
    rec.record('sync', `n ${i}`, { done: i });
    now += 1000;
  }
  rec.flush('sync');
  const rows = progressSeries(s.db, 'r1', 'sync');
  assert.ok(rows.length <= PROGRESS_ROWS_PER_STEP, `${rows.length} rows`);
  assert.ok(rows.length >= PROGRESS_ROWS_PER_STEP / 2, `${rows.length} rows`);
  assert.equal(rows[0]!.line, 'n 0');
  assert.equal(rows[rows.length - 1]!.line, `n ${samples - 1}`);
  // The newest stretch is still one a second.
  assert.equal(rows[rows.length - 1]!.at - rows[rows.length - 2]!.at, 1000);
  s.close();
});

test('a progress write that fails is dropped: the journal is not latched, the run goes on', () => {
  const s = store();
  const rec = new ProgressRecorder(s, 'r1');
  s.db.exec('DROP TABLE progress');
  rec.record('v', 'a', { done: 1 });
  rec.flush('v');
  assert.equal(rec.dropped, 1);
  assert.equal(s.writeFailure, undefined);
  s.close();
});

const view: RunView = {
  run: {
    id: 'ms-1',
    runbook: 'migrate "sync"\\x\n',
    status: 'running',
    createdAt: 0,
    updatedAt: 0,
    error: null,
    pid: 1,
    host: 'h',
  },
  steps: 8,
  step: {
    id: 'full-sync',
    index: 3,
    kind: 'wait-full-sync',
    title: 't',
    status: 'running',
    attempts: 1,
    startedAt: 0,
    finishedAt: null,
  },
  sample: {
    stepId: 'full-sync',
    at: Date.now(),
    line: 'l',
    figures: { unit: 'bytes', done: 5, total: 10, phase: 'full-sync', lagBytes: 1234, lagMs: 1500, keysPerSec: 99.5 },
  },
};

test('Prometheus rendering: HELP and TYPE for every metric, escaped labels, only the figures the step reported', () => {
  const text = renderMetrics(metricsOf(view));
  assert.match(text, /^# HELP redis_runbook_run_info .+\n# TYPE redis_runbook_run_info gauge\n/);
  assert.match(
    text,
    /\nredis_runbook_run_info\{run_id="ms-1",runbook="migrate \\"sync\\"\\\\x\\n",status="running"\} 1\n/,
  );
  assert.match(text, /\nredis_runbook_step_info\{step="full-sync",index="4",kind="wait-full-sync"\} 1\n/);
  assert.match(text, /\nredis_runbook_phase\{phase="full-sync"\} 1\n/);
  assert.match(text, /\nredis_runbook_sync_lag_bytes 1234\n/);
  assert.match(text, /\nredis_runbook_sync_lag_seconds 1\.50000\n/);
  assert.match(text, /\nredis_runbook_keys_per_second 99\.5000\n/);
  assert.match(text, /\nredis_runbook_progress_done\{unit="bytes"\} 5\n/);
  assert.match(text, /\nredis_runbook_progress_total\{unit="bytes"\} 10\n/);
  assert.doesNotMatch(text, /\nredis_runbook_differences /);
  assert.match(text, /# TYPE redis_runbook_differences gauge/);
  for (const line of text.trimEnd().split('\n'))
    assert.match(line, /^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{.*\})? -?[0-9.e+-]+)$/, line);
  assert.equal(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  // Before the run is known: declared, no samples.
  assert.doesNotMatch(renderMetrics(metricsOf(undefined)), /^redis_runbook/m);
});

test('--metrics-addr: HOST:PORT or [IPv6]:PORT; anything else is a usage error', () => {
  assert.deepEqual(parseMetricsAddr('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseMetricsAddr('[::1]:9464'), { host: '::1', port: 9464 });
  assert.deepEqual(parseMetricsAddr('0.0.0.0:1'), { host: '0.0.0.0', port: 1 });
  for (const bad of ['9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', ':9464', '::1:9464', 'a b:1'])
    assert.throws(() => parseMetricsAddr(bad), /E_USAGE|--metrics-addr/, bad);
});

test('bars: percentage, amounts, rate and ETA; a plain line has no \\r, escapes or padding', () => {
  const b = barOf({ unit: 'bytes', done: 5 * 1048576, total: 10 * 1048576, rate: 1048576, etaMs: 5000 }, 10)!;
  assert.equal(b, '[#####.....]   50%  5.0 MB/10.0 MB  1.0 MB/s  ETA 5s');
  assert.equal(barOf({ done: 1 }), undefined);
  assert.equal(barOf({ unit: 'keys', done: 1, total: 4 }, 0), '25%  1 keys/4 keys');
  assert.equal(plainLine(`\r\x1b[Kcopying${' '.repeat(1000)}done\x1b[0m`), ' copying done');
});
