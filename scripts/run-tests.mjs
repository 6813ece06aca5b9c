#!/usr/bin/env node
// Runs the compiled test files with node's test runner, one file at a time:
// integration and e2e files start real redis-server clusters, and a 2-core
// machine runs them more reliably in sequence. Usage: run-tests.mjs [unit|integration|e2e|chaos|soak ...]
// Without an argument: unit, integration and e2e (`npm test`); the crash and fault
// matrix (chaos) is longer and runs on its own (`npm run test:chaos`).
import { readdirSync, statSync } from 'node:fs';
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
const r = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    `--test-timeout=${perTestMs}`,
    '--test-force-exit',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
