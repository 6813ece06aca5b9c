#!/usr/bin/env node
// Runs the compiled test files with node's test runner, one file at a time:
// integration and e2e files start real redis-server clusters, and a 2-core
// machine runs them more reliably in sequence. Usage: run-tests.mjs [unit|integration|e2e|versions|chaos|soak ...]
// Without an argument: unit, integration and e2e (`npm test`); the server-version files (versions)
// and the crash and fault matrix (chaos) are longer and run on their own (`npm run test:versions`,
// `npm run test:chaos`).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { portsInUse } from './test-ports.mjs';

const root = new URL('../dist/test/', import.meta.url).pathname;
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];
// The server-version files (the matrix, and the tests of what only some servers have) are a stage of
// their own, `versions` (`npm run test:versions`, run by .ci/run after `npm test`): they take five
// minutes with every build, and `npm test` stays within its budget of about 15 (docs/testing.md).
const VERSION_FILES = [
  'e2e/server-upgrades',
  'e2e/server-pairs',
  'e2e/server-versions',
  'e2e/migrate-copy-aof-versions',
  'e2e/hash-field-ttl',
  'e2e/verify-field-ttl',
  'integration/rdb-servers',
  'integration/slot-move-valkey',
].map((n) => join(root, `${n}.test.js`));
const files = [];
const walk = (dir) => {
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (f.endsWith('.test.js') && !VERSION_FILES.includes(p)) files.push(p);
  }
};
for (const s of suites) if (s !== 'versions') walk(join(root, s));
if (suites.includes('versions')) files.push(...VERSION_FILES.filter((f) => existsSync(f)));
if (!files.length) {
  console.error(`no test files under ${root} for ${suites.join(', ')}; run \`npm run build\` first`);
  process.exit(1);
}
// Nothing may hold a test's ports before the suite starts: a sandbox or a test run left from
// earlier would make files fail at random, far from the cause. Stop here and say whose they are.
const taken = await portsInUse(files.map((f) => `test/${f.slice(root.length).replace(/\.js$/, '.ts')}`));
if (taken.length) {
  console.error(`these test ports are already in use, so tests would fail against servers they did not start:`);
  for (const t of taken.slice(0, 12)) console.error(`  ${t}`);
  if (taken.length > 12) console.error(`  and ${taken.length - 12} more`);
  console.error(
    'stop what holds them first: a sandbox (`redis-runbook sandbox down --name <name>` with its REDIS_RUNBOOK_HOME), or another test run still going (`pkill -f redis-server` if nothing else on this machine uses Redis)',
  );
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
// Each run also writes its failures to a file (scripts/failure-reporter.mjs), read back for the
// failing tests' names, places and errors: the summary at the end then says which test failed and
// why, where a CI log shows only its tail.
const recordDir = mkdtempSync(join(tmpdir(), 'rr-failures-'));
const reporter = new URL('./failure-reporter.mjs', import.meta.url).pathname;
// Removed at exit, whatever the result. Not on a signal: a handler would keep the runner blocked in
// spawnSync until the file under way ends, where today Ctrl-C or a CI cancel stops it at once.
process.on('exit', () => rmSync(recordDir, { recursive: true, force: true }));
const failures = [];
const started = Date.now();
const runFiles = (label, list, concurrency) => {
  const t0 = Date.now();
  const record = join(recordDir, `${times.length}.jsonl`);
  const r = spawnSync(
    process.execPath,
    [
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${reporter}`,
      '--test-reporter-destination=/dev/null',
      `--test-timeout=${perTestMs}`,
      '--test-force-exit',
      ...list,
    ],
    { stdio: 'inherit', env: { ...process.env, RR_FAILURES_FILE: record } },
  );
  const ok = r.status === 0;
  if (!ok) {
    failed++;
    failures.push(...failedTests(record, label));
  }
  times.push({ file: label, s: (Date.now() - t0) / 1000, ok });
};
const unit = files.filter((f) => f.startsWith(join(root, 'unit') + '/'));
if (unit.length) runFiles(`unit/ (${unit.length} files)`, unit, 2);
// The server-version files wait mostly on their servers, assert no timing and use ports of their
// own: they run three at a time, the longest first so that the short ones fill in beside them.
const matrix = VERSION_FILES.filter((f) => files.includes(f));
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
for (const f of failures) console.log(f.startsWith('  ') ? f : `  failed test: ${f}`);
process.exit(failed ? 1 : 0);

/**
 * The innermost failing tests of a run, each as "name (file:line): error", then any error the
 * runner reported outside a test (a rejection after its test ended, which fails the file's process
 * but no test). A parent whose only fault is a failed subtest adds nothing and is left out.
 */
function failedTests(file, label) {
  let records;
  try {
    records = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [`${label}: no failure record (the test process died before writing it)`];
  }
  const out = [];
  for (const r of records) {
    if (r.kind === 'diagnostic') {
      out.push(`${label}: ${r.message.slice(0, 600)}`);
      continue;
    }
    // A failing TODO test does not fail its file: it is not a cause.
    if (r.todo || r.failureType === 'subtestsFailed') continue;
    const where = `${String(r.file ?? '').replace(/^.*\/dist\/test\//, '')}:${r.line ?? '?'}`;
    const exit = r.exitCode != null || r.signal ? ` (exit code ${r.exitCode ?? '-'}, signal ${r.signal ?? '-'})` : '';
    const name = String(r.name).replace(/^.*\/dist\/test\//, '');
    out.push(`${name} (${where}): ${r.message.replace(/\s+/g, ' ').slice(0, 400)}${exit}`);
    if (r.stderr?.length)
      out.push(`    its last lines on stderr:\n${r.stderr.map((l) => `      ${l.slice(0, 300)}`).join('\n')}`);
  }
  return out.length ? out : [`${label}: the run failed but no test reported a failure (a crash or a leak at exit)`];
}
