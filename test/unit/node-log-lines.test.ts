import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boundRows, lineTime, linesInWindow, parseZoneOffset, type LogRow } from '../../src/engine/node-log-lines.js';
import { NodeLogStore } from '../../src/engine/node-log-store.js';
import { Store } from '../../src/engine/store.js';

// Lines as Redis 7.0, Redis 6.2 and Valkey 8.0 write them (copied from their logs).
const R70 = "29556:S 02 Dec 2026 16:48:14.440 # Failover election won: I'm the new master.";
const R62 = '31801:C 02 Dec 2026 16:51:36.567 # Redis version=6.2.16, bits=64, commit=00000000, modified=0';
const VK8 = '31857:C 02 Dec 2026 16:51:42.858 * Valkey version=8.0.1, bits=64, commit=00000000, modified=1';

test('a line’s time: the host’s local time, read with the host’s offset', () => {
  assert.equal(lineTime(R70, 0), Date.UTC(2026, 11, 2, 16, 48, 14, 440));
  assert.equal(lineTime(R62, 0), Date.UTC(2026, 11, 2, 16, 51, 36, 567));
  assert.equal(lineTime(VK8, 0), Date.UTC(2026, 11, 2, 16, 51, 42, 858));
  // A host at UTC+01:00 wrote 16:48 local: 15:48 UTC.
  assert.equal(lineTime(R70, 60), Date.UTC(2026, 11, 2, 15, 48, 14, 440));
  assert.equal(lineTime(R70, -330), Date.UTC(2026, 11, 2, 22, 18, 14, 440));
  // This machine: the process's own zone (the tests run with the machine's TZ).
  assert.equal(lineTime(R70, 'local'), new Date(2026, 11, 2, 16, 48, 14, 440).getTime());
  // Valkey 8.1's other timestamp formats.
  assert.equal(lineTime('12:M 2026-12-02T16:48:14.440+01:00 * x', 0), Date.UTC(2026, 11, 2, 15, 48, 14, 440));
  assert.equal(lineTime('12:M 1796230094440 * x', 0), 1796230094440);
  for (const odd of ['', '                _._', '------ STACK TRACE ------', '12:M 02 Foo 2026 16:48:14.440 # x'])
    assert.equal(lineTime(odd, 0), null, odd);
});

test('date +%z offsets', () => {
  assert.equal(parseZoneOffset('+0000\n'), 0);
  assert.equal(parseZoneOffset('+0100'), 60);
  assert.equal(parseZoneOffset('-0530'), -330);
  assert.equal(parseZoneOffset('CET'), undefined);
});

const at = (s: number) => `1:M 02 Dec 2026 10:00:${String(s).padStart(2, '0')}.000 * line at ${s}`;
const t = (s: number) => Date.UTC(2026, 11, 2, 10, 0, s);

test('the window keeps lines by their own time; a line without one goes with the line before it', () => {
  const text = [
    'cut-off end of a line',
    at(1),
    'continuation of 1',
    at(5),
    '------ STACK TRACE ------',
    at(9),
    'continuation of 9',
    '',
  ].join('\n');
  const rows = linesInWindow(text, 0, t(4), t(8), true);
  assert.deepEqual(rows, [
    { at: t(5), line: at(5) },
    { at: null, line: '------ STACK TRACE ------' },
  ]);
  // From the file's start nothing is cut; lines before any timestamp are not in a window.
  assert.deepEqual(linesInWindow(`logo\n${at(1)}\nmore`, 0, t(0), t(2), false), [
    { at: t(1), line: at(1) },
    { at: null, line: 'more' },
  ]);
  assert.deepEqual(linesInWindow(text, 0, t(20), t(30), true), []);
});

test('bounded: the first and the last lines are kept, and a row says how many were left out', () => {
  const rows: LogRow[] = Array.from({ length: 1000 }, (_, i) => ({ at: i, line: `line ${i}` }));
  const b = boundRows(rows, 400, 64 * 1024);
  assert.ok(b.length <= 400, `${b.length} rows`);
  assert.equal(b[0]!.line, 'line 0');
  assert.equal(b.at(-1)!.line, 'line 999');
  const gap = b.find((r) => r.line.startsWith('[redis-runbook]'))!;
  const left = Number(/^\[redis-runbook\] (\d+) lines \(\d+ bytes\) left out here$/.exec(gap.line)?.[1]);
  assert.equal(left + b.length - 1, 1000, 'every line is kept or counted');
  assert.equal(gap.at, null);
  // The byte bound holds as well, and a very long line is cut.
  const long = Array.from({ length: 100 }, (_, i) => ({ at: i, line: `${i} ${'x'.repeat(5000)}` }));
  const lb = boundRows(long, 400, 64 * 1024);
  assert.ok(lb.reduce((n, r) => n + r.line.length, 0) <= 64 * 1024, 'within 64 KiB');
  assert.match(lb[0]!.line, /characters cut\]$/);
  assert.ok(lb.at(-1)!.line.startsWith('99 '));
  // Under the bounds: unchanged.
  assert.deepEqual(boundRows(rows.slice(0, 10), 400, 64 * 1024), rows.slice(0, 10));
});

test('the store scrubs every line and lists a run’s rows per step', () => {
  const store = new Store(mkdtempSync(join(tmpdir(), 'rr-nodelogs-')));
  try {
    const logs = new NodeLogStore(store);
    logs.add(
      'r1',
      'failover',
      '127.0.0.1:7000',
      '/var/log/redis.log',
      [
        { at: 5, line: 'config rewrite: requirepass hunter2-secret' },
        { at: null, line: 'continued' },
      ],
      ['hunter2-secret'],
    );
    logs.add('r1', 'shutdown', '127.0.0.1:7001', 'stdout', [{ at: null, line: '[redis-runbook] logs to stdout' }]);
    const all = logs.list('r1');
    assert.equal(all.length, 3);
    assert.deepEqual(all[0], {
      stepId: 'failover',
      node: '127.0.0.1:7000',
      source: '/var/log/redis.log',
      at: 5,
      line: 'config rewrite: requirepass ***',
    });
    assert.deepEqual(
      logs.list('r1', 'shutdown').map((r) => r.source),
      ['stdout'],
    );
    assert.equal(JSON.stringify(store.db.prepare('SELECT * FROM node_logs').all()).includes('hunter2'), false);
  } finally {
    store.close();
  }
});
