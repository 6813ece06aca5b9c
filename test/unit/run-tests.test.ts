import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// scripts/run-tests.mjs, the runner `npm test` and CI use, on a tree of small test files of its
// own: the end of its summary (all a CI log often shows) must name each failure and its cause.

const SCRIPTS = ['run-tests.mjs', 'failure-reporter.mjs', 'test-ports.mjs'];

function tree(files: Record<string, string>, ports = '[]'): string {
  const root = mkdtempSync(join(tmpdir(), 'rr-runner-'));
  const all: Record<string, string> = {
    'package.json': '{ "type": "module" }\n',
    'dist/test/support/ports.js': `export const PORT_TABLE = ${ports};\n`,
    'dist/src/sandbox/layout.js': 'export const CLUSTER_BUS_OFFSET = 10000;\n',
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  mkdirSync(join(root, 'scripts'));
  for (const s of SCRIPTS) copyFileSync(join(process.cwd(), 'scripts', s), join(root, 'scripts', s));
  return root;
}
// Without NODE_TEST_CONTEXT, which this file's own runner sets: with it, the inner runner would
// report to this one instead of printing its summary.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT'));
const run = (root: string, ...suites: string[]) =>
  spawnSync(process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...suites], { encoding: 'utf8', env });
/** What the runner prints after its table of slowest files: the part a CI log's tail shows. */
const tail = (out: string) => out.slice(out.lastIndexOf(' test files in '));

const T = "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n";

test('a failing assertion is named with its file, line and message; a failing TODO test is not', () => {
  const root = tree({
    'dist/test/unit/a.test.js': `${T}test('outer', async (t) => {
  await t.test('inner fails', () => assert.equal(1, 2, 'one is not two'));
});
test('todo fails', { todo: true }, () => { throw new Error('not a cause'); });
test('passes', () => {});
`,
  });
  try {
    const r = run(root, 'unit');
    assert.equal(r.status, 1);
    const end = tail(r.stdout);
    assert.match(end, /failed test: inner fails \(unit\/a\.test\.js:4\): one is not two/);
    assert.doesNotMatch(end, /todo fails|not a cause|failed test: outer/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a file that fails after its tests passed is named with the cause: a late rejection, a crash and its stderr', () => {
  const root = tree({
    'dist/test/e2e/late.test.js': `${T}test('passes, then leaks a rejection', async () => {
  setTimeout(() => { Promise.reject(new Error('late boom')); }, 20);
});
test('waits', async () => { await new Promise((r) => setTimeout(r, 300)); });
`,
    'dist/test/e2e/killed.test.js': `${T}test('dies', async () => {
  console.error('last words before the kill');
  process.kill(process.pid, 'SIGKILL');
});
`,
    'dist/test/e2e/fine.test.js': `${T}test('fine', () => {});\n`,
  });
  try {
    const r = run(root, 'e2e');
    assert.equal(r.status, 1);
    const end = tail(r.stdout);
    // The late rejection: the runner's own report of it, and the file's exit.
    assert.match(end, /failed test: e2e\/late\.test\.js: .*generated asynchronous activity.*late boom/);
    assert.match(end, /failed test: e2e\/late\.test\.js \(e2e\/late\.test\.js:1\): test failed \(exit code 1/);
    assert.match(
      end,
      /failed test: e2e\/killed\.test\.js .*signal SIGKILL\)\n\s+its last lines on stderr:\n\s+last words before the kill/,
    );
    assert.doesNotMatch(end, /no test reported a failure|failed test: .*fine/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a port of a file about to run that is already listened on stops the run before any test, naming port, file and process', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const root = tree(
    { 'dist/test/e2e/uses-port.test.js': `${T}test('ran', () => { console.log('THE TEST RAN'); });\n` },
    JSON.stringify([{ file: 'test/e2e/uses-port.test.ts', ranges: [[port, port]], what: 'x' }]),
  );
  try {
    const r = run(root, 'e2e');
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(`127\\.0\\.0\\.1:${port} \\(test/e2e/uses-port\\.test\\.ts\\): node pid ${process.pid}`),
    );
    assert.match(r.stderr, /stop what holds them first/);
    assert.doesNotMatch(r.stdout, /THE TEST RAN/);
    // Free again: the same tree runs.
    await new Promise((r) => server.close(r));
    const again = run(root, 'e2e');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /THE TEST RAN/);
  } finally {
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
