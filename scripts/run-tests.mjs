#!/usr/bin/env node
// Runs the compiled test files with node's test runner, one file at a time:
// integration and e2e files start real redis-server clusters, and a 2-core
// machine runs them more reliably in sequence. Usage: run-tests.mjs [unit|integration|e2e|chaos|soak ...]
// Without an argument: unit, integration and e2e (`npm test`); the crash and fault
// matrix (chaos) is longer and runs on its own (`npm run test:chaos`).
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];
const files = [];
const walk = (dir) => {
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (f.endsWith('.test.js')) files.push(p);
  }
};
for (const s of suites) walk(join(root, s));
if (!files.length) {
  console.error(`no test files under ${root} for ${suites.join(', ')}; run \`npm run build\` first`);
  process.exit(1);
}
// A test that hangs fails after --test-timeout (chaos cases run longer) instead of
// holding the suite until CI's own limit; --test-force-exit ends a file whose
// tests are done even if a leaked handle (a client reconnecting) would keep it alive.
const perTestMs = suites.includes('chaos') || suites.includes('soak') ? 20 * 60_000 : 8 * 60_000;
// One node process per file, so the summary can say where the time went: the slowest files are
// where to look first when the suite grows past its budget (docs/testing.md). The unit files
// start no server: they run together, two at a time, in one process.
const times = [];
let failed = 0;
// Each run also writes TAP to a file, read back for the failing tests' names, places and errors:
// the summary at the end then says which test failed and why, where a CI log shows only its tail.
const tapDir = mkdtempSync(join(tmpdir(), 'rr-tap-'));
// Removed at exit, whatever the result. Not on a signal: a handler would keep the runner blocked in
// spawnSync until the file under way ends, where today Ctrl-C or a CI cancel stops it at once.
process.on('exit', () => rmSync(tapDir, { recursive: true, force: true }));
const failures = [];
const started = Date.now();
const runFiles = (label, list, concurrency) => {
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${join(tapDir, `${times.length}.tap`)}`,
      `--test-timeout=${perTestMs}`,
      '--test-force-exit',
      ...list,
    ],
    { stdio: 'inherit' },
  );
  const ok = r.status === 0;
  if (!ok) {
    failed++;
    failures.push(...failedTests(join(tapDir, `${times.length}.tap`), label));
  }
  times.push({ file: label, s: (Date.now() - t0) / 1000, ok });
};
const unit = files.filter((f) => f.startsWith(join(root, 'unit') + '/'));
if (unit.length) runFiles(`unit/ (${unit.length} files)`, unit, 2);
// The server-version files (the matrix, and the tests of what only some servers have) take minutes,
// wait mostly on their servers, assert no timing and use ports of their own: they run three at a
// time, the longest first so that the short ones fill in beside them.
const VERSION_FILES = [
  'e2e/server-upgrades',
  'e2e/server-pairs',
  'e2e/server-versions',
  'e2e/migrate-copy-aof-versions',
  'e2e/hash-field-ttl',
  'e2e/verify-field-ttl',
  'integration/rdb-servers',
  'integration/slot-move-valkey',
];
const matrix = VERSION_FILES.map((n) => join(root, `${n}.test.js`)).filter((f) => files.includes(f));
if (matrix.length) runFiles(`server versions, three at a time (${matrix.length} files)`, matrix, 3);
// Files that check what the tool decides (refusals, plan seals, secrets, state safety, reports)
// rather than how fast a cluster reacts: no failover timing, no fault, ports of their own. They
// run two at a time; every file that waits on failure detection or a fault stays alone.
const PAIRED_FILES = [
  'e2e/errors',
  'e2e/plan-tamper',
  'e2e/secrets-journal',
  'e2e/state-safety',
  'e2e/cluster-identity',
  'e2e/run-ownership',
  'e2e/file-safety',
  'e2e/ssh-limits',
  'integration/verify',
  'integration/rdb',
  'integration/sandbox',
  'integration/process-identity',
  'integration/other-server-guard',
];
const paired = PAIRED_FILES.map((n) => join(root, `${n}.test.js`)).filter((f) => files.includes(f));
if (paired.length) runFiles(`decision files, two at a time (${paired.length} files)`, paired, 2);
const grouped = [...unit, ...matrix, ...paired];
for (const f of files.filter((x) => !grouped.includes(x))) runFiles(f.slice(root.length), [f], 1);
const total = (Date.now() - started) / 1000;
console.log(
  `\n${files.length} test files in ${total.toFixed(0)} s; ${failed ? `${failed} FAILED` : 'all passed'}. Slowest:`,
);
for (const t of [...times].sort((a, b) => b.s - a.s).slice(0, 12))
  console.log(`  ${t.s.toFixed(1).padStart(7)} s  ${t.ok ? '' : 'FAILED '}${t.file}`);
for (const t of times.filter((x) => !x.ok)) console.log(`FAILED: ${t.file}`);
for (const f of failures) console.log(`  failed test: ${f}`);
process.exit(failed ? 1 : 0);

/**
 * The innermost failing tests of a TAP file, each as "name (file:line): error": a parent whose
 * only fault is a failed subtest adds nothing and is left out.
 */
function failedTests(file, label) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [`${label}: no TAP output (the test process died before writing it)`];
  }
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*not ok \d+ - (.*)$/.exec(lines[i]);
    if (!m) continue;
    const block = [];
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]); j++) block.push(lines[j]);
    const field = (k) => {
      const at = block.findIndex((l) => l.trim().startsWith(`${k}:`));
      if (at < 0) return '';
      const v = block[at]
        .trim()
        .slice(k.length + 1)
        .trim();
      // A quoted scalar ('...' or "..."), or a multi-line one (|- or >-) whose lines are those
      // indented deeper than its key (the next key of the block is not part of it).
      if (!/^[|>]-?$/.test(v)) return v.replace(/^(['"])(.*)\1$/, '$2');
      const indent = (l) => l.length - l.trimStart().length;
      const body = [];
      for (let j = at + 1; j < block.length && indent(block[j]) > indent(block[at]) && body.length < 6; j++)
        body.push(block[j].trim());
      return body.join(' ');
    };
    // A failing TODO test does not fail its file: it is not a cause.
    if (/#\s*TODO\b/i.test(m[1])) continue;
    if (field('failureType') === 'subtestsFailed') continue;
    const where = field('location')
      .replace(/^.*\/dist\/test\//, '')
      .replace(/:\d+'?$/, '');
    out.push(`${m[1]} (${where}): ${field('error').slice(0, 400)}`);
  }
  return out.length ? out : [`${label}: the run failed but no test reported a failure (a crash or a leak at exit)`];
}
