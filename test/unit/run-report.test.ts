import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunReportData } from '../../src/report/run-data.js';
import { renderRunHtml } from '../../src/report/run-html.js';
import { renderRunMd } from '../../src/report/run-md.js';
import { stepSummary } from '../../src/report/step-summary.js';
import { slotMaps, parseRanges } from '../../src/report/slot-maps.js';
import { htmlVisible, mdCell } from '../../src/report/escape.js';
import { registerSecret } from '../../src/scrub.js';
import type { Plan } from '../../src/engine/plan.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
// A key with markup, a NUL, an escape, a byte that was not UTF-8 (U+FFFD) and a bidi override.
const NASTY = '<script>alert(1)</script>\u0000\u001b[31m\ufffd\u202eevil';

function data(over: Partial<RunReportData> = {}): RunReportData {
  return {
    run: {
      id: 'fd-1',
      runbook: 'failover-drill',
      status: 'succeeded',
      params: { node: '127.0.0.1:7000' },
      startedAt: T0,
      finishedAt: T0 + 9000,
      error: null,
    },
    clusters: [{ name: 'source', nodes: 6, masters: 3, fingerprint: 'f' }],
    steps: [
      {
        id: 'fail-master',
        kind: 'drill-fail-master',
        title: 'stop it',
        status: 'done',
        attempts: 2,
        startedAt: T0 + 2000,
        finishedAt: T0 + 7000,
        firstSeenAt: T0 + 500,
        error: null,
        summary: 'promoted',
        output: { newMaster: '127.0.0.1:7003', promotionMs: 3761, writesLost: 0, canary: { keptBefore: T0 } },
      },
    ],
    markers: [{ at: T0 + 1000, stepId: 'fail-master', what: 'OPERATOR-CONTINUE', detail: '--yes' }],
    commands: [
      {
        node: '127.0.0.1:7000',
        writes: [{ at: T0 + 2100, stepId: 'fail-master', command: 'SHUTDOWN', ok: true }],
        reads: { INFO: 12, 'CLUSTER NODES': 30 },
      },
    ],
    progress: [],
    nodeLogs: [],
    findings: [{ stepId: 'compare', key: NASTY, kind: 'value', source: 'a|b', target: '`x`' }],
    slotMaps: [
      {
        cluster: 'source',
        before: [
          { master: '127.0.0.1:7000', ranges: [[0, 8191]] },
          { master: '127.0.0.1:7001', ranges: [[8192, 16383]] },
        ],
        after: [{ master: '127.0.0.1:7003', ranges: [[0, 16383]] }],
        afterSource: 'seen by step verify',
        afterStale: false,
      },
    ],
    generatedAt: T0 + 10000,
    ...over,
  };
}

test('HTML: a key with markup and binary bytes is escaped and its invisible bytes shown', () => {
  const page = renderRunHtml(data());
  assert.doesNotMatch(page, /<script/i);
  assert.match(page, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  for (const esc of ['\\x00', '\\x1b', '\\u{FFFD}', '\\u{202E}'])
    assert.ok(page.includes(`<span class="np">${esc}</span>`), `${esc} shown`);
  assert.ok(!/[\u0000\u001b\u202e]/.test(page), 'no raw control or bidi character in the page');
  // Self-contained: nothing that could make a request.
  assert.doesNotMatch(page, /https?:|src=|<link|@import|url\(/i);
  assert.match(page, /<meta name="viewport"/);
  assert.match(page, /@media print/);
});

test('HTML: empty progress and node logs say so; figures are rows, not JSON', () => {
  const page = renderRunHtml(data());
  assert.match(page, /No progress samples were recorded/);
  assert.match(page, /No node log lines were recorded/);
  assert.match(page, /<th>promotion<\/th><td>3\.8 s<\/td>/);
  assert.match(page, /<th>canary \/ kept before<\/th><td>2026-01-02 03:04:05\.000<\/td>/);
  assert.doesNotMatch(page, /"promotionMs"/);
  // Two attempts: the earlier one is drawn apart from the last.
  assert.match(page, /class="attempt earlier"/);
  assert.equal((page.match(/class="slot-row"/g) ?? []).length, 3);
  assert.match(page, /reads: CLUSTER NODES &times;30, INFO &times;12/);
});

test('HTML: progress with lag draws a line chart per figure; node logs are per step and node', () => {
  const page = renderRunHtml(
    data({
      progress: [0, 1, 2].map((i) => ({
        stepId: 'fail-master',
        at: T0 + 3000 + i * 500,
        line: `lag ${i}`,
        figures: { lagBytes: 1000 * (3 - i), lagMs: 10 * (3 - i) },
      })),
      nodeLogs: [{ stepId: 'fail-master', node: '127.0.0.1:7003', source: 'redis.log', at: T0 + 4000, line: NASTY }],
    }),
  );
  assert.match(page, /<svg class="chart" data-series="lagBytes"/);
  assert.match(page, /<svg class="chart" data-series="lagMs"/);
  assert.match(page, /<polyline points="/);
  assert.match(page, /<div class="log" data-step="fail-master" data-node="127.0.0.1:7003">/);
  assert.match(page, /class="log-tick"/);
  assert.doesNotMatch(page, /<script/i);
});

test('a secret known to the process never reaches the page or the Markdown', () => {
  registerSecret('hunter2-report-secret');
  const d = data({ run: { ...data().run, error: 'AUTH hunter2-report-secret failed' } });
  assert.ok(!renderRunHtml(d).includes('hunter2-report-secret'));
  assert.ok(!renderRunMd(d).includes('hunter2-report-secret'));
});

test('Markdown: cells cannot become markup or new columns; slot maps are ranges', () => {
  const md = renderRunMd(data());
  assert.doesNotMatch(md, /<script/i);
  assert.match(md, /\\x00/);
  assert.match(md, /a\\\|b/);
  assert.match(md, /\| 127\.0\.0\.1:7003 \| 16384 \| 0-16383 \|/);
  assert.match(md, /No progress samples were recorded/);
  assert.match(md, /No node log lines were recorded/);
  // A newline is shown as \\x0a (its backslash escaped for Markdown); | and ` cannot end the cell or open code.
  assert.equal(mdCell('x|y\n`z`'), 'x\\|y\\\\x0a\\`z\\`');
  assert.equal(htmlVisible('a\u0007<b>'), 'a<span class="np">\\x07</span>&lt;b&gt;');
});

test('step summaries: by kind, with a generic fallback', () => {
  assert.equal(
    stepSummary('drill-fail-master', {
      method: 'shutdown',
      newMaster: '127.0.0.1:7003',
      promotionMs: 8,
      unavailableMs: 3778,
      writesAcked: 113,
      writesLost: 0,
      timeToOkMs: 3823,
    }),
    '127.0.0.1:7003 promoted 8 ms after the stop (shutdown); writes failed for 3.8 s; 0 of 113 acknowledged writes lost; cluster ok after 3.8 s',
  );
  assert.equal(
    stepSummary('move-slot-plan', { slots: 5461, keys: 12034, ms: 4200 }),
    'moved 5461 slots (12034 keys) in 4.2 s',
  );
  assert.equal(
    stepSummary('copy-shard-files', { copies: [1, 2, 3].map(() => ({ bytes: 13_733_333, copied: true })) }, 3100),
    'copied 3 files (41.2 MB) in 3.1 s',
  );
  assert.equal(stepSummary('verify-data', { compared: 10000, differ: 0 }), 'compared 10000 keys: 0 differ');
  assert.equal(stepSummary('cluster-failover', { promotionMs: 8 }), 'promoted in 8 ms');
  assert.equal(
    stepSummary('wait-for-agreement', { agreedAt: 1, failoverToAgreementMs: 225 }),
    'all nodes agreed 225 ms after the failover was sent',
  );
  assert.equal(
    stepSummary('some-new-kind', { rounds: 3, ms: 1500, ok: true, list: [1, 2] }),
    'rounds=3, ms=1.5 s, ok=true, list: 2',
  );
  assert.equal(stepSummary('drill-fail-master', null), '');
  // An output of a shape the summary does not know falls back rather than throwing.
  assert.equal(stepSummary('move-slot-plan', { slotsMoved: 3 }), 'slotsMoved=3');
});

test('slot maps: before from the plan, after replayed from observations and slot moves', () => {
  const node = (port: number, role: 'master' | 'replica', slots: Array<[number, number]>) => ({
    id: `n${port}`,
    address: `127.0.0.1:${port}`,
    role,
    slots,
  });
  const plan = {
    clusters: {
      source: {
        fingerprint: 'f',
        takenAt: '2026-01-02T03:04:05.000Z',
        structure: [
          node(7000, 'master', [[0, 8191]]),
          node(7001, 'master', [[8192, 16383]]),
          node(7002, 'replica', []),
        ],
      },
    },
    steps: [
      {
        id: 'move',
        kind: 'move-slot-plan',
        args: { cluster: 'source', moves: [8192, 8193].map((slot) => ({ slot, to: { address: '127.0.0.1:7000' } })) },
      },
      { id: 'fail', kind: 'drill-fail-master', args: { cluster: 'source' } },
    ],
  } as unknown as Plan;
  const step = (id: string, kind: string, output: unknown = null) => ({
    id,
    kind,
    status: 'done',
    finishedAt: T0,
    output,
  });
  const [m] = slotMaps(plan, [step('move', 'move-slot-plan')]);
  assert.deepEqual(
    m!.before.map((x) => x.master),
    ['127.0.0.1:7000', '127.0.0.1:7001'],
  );
  assert.deepEqual(m!.after, [
    { master: '127.0.0.1:7000', ranges: [[0, 8193]] },
    { master: '127.0.0.1:7001', ranges: [[8194, 16383]] },
  ]);
  assert.match(m!.afterSource, /then the slot moves of step move/);
  // A failover after the last observation: the map is marked as possibly out of date...
  assert.equal(slotMaps(plan, [step('fail', 'drill-fail-master')])[0]!.afterStale, true);
  // ...until a verify sees the cluster again.
  const seen = { shards: [{ ranges: '0-16383', master: '127.0.0.1:7002', keys: 5 }] };
  const [v] = slotMaps(plan, [step('fail', 'drill-fail-master'), step('verify', 'verify-cluster', seen)]);
  assert.equal(v!.afterStale, false);
  assert.deepEqual(v!.after, [{ master: '127.0.0.1:7002', ranges: [[0, 16383]] }]);
  assert.deepEqual(parseRanges('0-5,7 9-8 x 16384'), [
    [0, 5],
    [7, 7],
  ]);
});
