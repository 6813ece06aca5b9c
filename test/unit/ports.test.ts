import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { CLUSTER_BUS_OFFSET } from '../../src/sandbox/layout.js';
import { KNOWN_OVERLAPS, PORT_TABLE, type PortRange } from '../support/ports.js';

// test/support/ports.ts is the one table of the ports test files and benchmarks take; this
// keeps it true: no overlaps, every port (and its bus port) below the ephemeral range, and
// every port literal that starts something in a file under test/ or bench/ inside that file's rows.

const ROOT = process.cwd();
const EPHEMERAL_START = 32768;
/** The table and this test name ports without starting anything. */
const SELF = new Set(['test/support/ports.ts', 'test/unit/ports.test.ts']);

const fmt = ([lo, hi]: PortRange) => (lo === hi ? `${lo}` : `${lo}-${hi}`);
const overlaps = (a: PortRange, b: PortRange) => a[0] <= b[1] && b[0] <= a[1];
const shift = ([lo, hi]: PortRange, by: number): PortRange => [lo + by, hi + by];

test('no two ranges of the table overlap, within a file or across files (but the known overlaps)', () => {
  const rows = PORT_TABLE.flatMap((u) => u.ranges.map((r) => ({ file: u.file, r })));
  const within: string[] = [];
  const across = new Set<string>();
  rows.forEach((a, i) =>
    rows.slice(i + 1).forEach((b) => {
      if (!overlaps(a.r, b.r)) return;
      if (a.file === b.file) within.push(`${a.file}: ${fmt(a.r)} and ${fmt(b.r)}`);
      else across.add([a.file, b.file].sort().join(' + '));
    }),
  );
  assert.deepEqual(within, [], 'a file lists a port twice');
  const known = KNOWN_OVERLAPS.map((k) => [...k.files].sort().join(' + ')).sort();
  assert.deepEqual([...across].sort(), known, 'files that share ports (KNOWN_OVERLAPS lists the ones of today)');
  assert.equal(new Set(PORT_TABLE.map((u) => u.file)).size, PORT_TABLE.length, 'one row per file');
});

test("no range overlaps another's cluster bus ports (port + 10000)", () => {
  const rows = PORT_TABLE.flatMap((u) => u.ranges.map((r) => ({ file: u.file, r })));
  const hits = rows.flatMap((a) =>
    rows
      .filter((b) => overlaps(a.r, shift(b.r, CLUSTER_BUS_OFFSET)))
      .map((b) => `${a.file} ${fmt(a.r)} meets the bus ports of ${b.file} ${fmt(b.r)}`),
  );
  assert.deepEqual(hits, []);
});

test('every port is 1024 or more, and it and its bus port (port + 10000) are below 32768', () => {
  const bad = PORT_TABLE.flatMap((u) =>
    u.ranges
      .filter(
        ([lo, hi]) =>
          !Number.isInteger(lo) ||
          !Number.isInteger(hi) ||
          lo > hi ||
          lo < 1024 ||
          hi + CLUSTER_BUS_OFFSET >= EPHEMERAL_START,
      )
      .map((r) => `${u.file}: ${fmt(r)}`),
  );
  assert.deepEqual(bad, []);
});

test('every file the table names exists', () => {
  assert.deepEqual(
    PORT_TABLE.map((u) => u.file).filter((f) => !existsSync(join(ROOT, f))),
    [],
  );
});

/**
 * Where a file names a port it starts something on (or must find free). The groups hold the port or
 * a list of ports (a port constant: its name first, kept only if it names a port); `notUnit`: not
 * applied under test/unit, whose addresses are data for pure functions.
 */
const PATTERNS: ReadonlyArray<{ what: string; re: RegExp; notUnit?: boolean }> = [
  { what: 'a port constant', re: /\b(?:const|let)\s+(\w+)\s*=\s*(\d[\d_]*|\[\s*\d[\d_,\s]*\])\s*;/g },
  { what: "'--base-port', N", re: /'--base-port',\s*(?:'(\d+)'|String\((\d+)\))/g },
  { what: '--base-port N', re: /--base-port[ =](\d+)/g },
  { what: "'--port', N", re: /'--port',\s*(?:'(\d+)'|String\((\d+)\))/g },
  { what: 'basePort: N', re: /\bbasePort:\s*(\d+)/g },
  { what: 'migrationSandbox(N', re: /\bmigrationSandbox\(\s*(\d+)/g },
  { what: 'sandbox(home, N', re: /\bsandbox\(\s*\w+,\s*(\d+)/g },
  { what: 'sandboxPair(home, N, N', re: /\bsandboxPair\(\s*\w+,\s*(\d+),\s*(\d+)/g },
  { what: 'xUnderLoad(N)', re: /\b\w*UnderLoad\(\s*(\d+)/g },
  { what: 'startSshd(dir, N)', re: /\bstartSshd\(\s*\w+,\s*(\d+)/g },
  { what: 'delayProxy(N', re: /\bdelayProxy\(\s*(\d+)/g },
  { what: 'runOnce(name, N', re: /\brunOnce\(\s*'[^']*',\s*(\d+)/g },
  { what: '.listen(N', re: /\.listen\(\s*(?:\{[^}]*\bport:\s*)?(\d+)/g },
  { what: "bind(('127.0.0.1', N))", re: /\.bind\(\(\s*'127\.0\.0\.1',\s*(\d+)/g },
  { what: '127.0.0.1:N', re: /\b127\.0\.0\.1:(\d{4,5})\b/g, notUnit: true },
  { what: 'isListening(N', re: /\bisListening\(\s*(\d+)/g, notUnit: true },
];

/** A constant's name says it is a port: one of its words (BASE_PORT, srcPort, ports, BASES) is. */
const PORT_WORDS = new Set(['base', 'bases', 'port', 'ports', 'src', 'tgt', 'stall', 'redis', 'proxy', 'mute', 'sshd']);
const portish = (name: string) => name.split(/_|(?<=[a-z0-9])(?=[A-Z])/).some((w) => PORT_WORDS.has(w.toLowerCase()));

/** The port literals a file's text holds, each with the pattern that found it. */
function portLiterals(text: string, unit: boolean): Array<{ port: number; what: string }> {
  const found: Array<{ port: number; what: string }> = [];
  for (const p of PATTERNS) {
    if (unit && p.notUnit) continue;
    for (const m of text.matchAll(p.re)) {
      let groups = m.slice(1).filter((g): g is string => g !== undefined);
      if (p.what === 'a port constant') {
        if (!portish(groups[0]!)) continue;
        groups = groups.slice(1);
      }
      for (const g of groups)
        for (const n of g.match(/\d[\d_]*/g) ?? []) found.push({ port: Number(n.replace(/_/g, '')), what: p.what });
    }
  }
  // A constant such as `const PORTS = [0, 1, 2].map(...)` lists offsets, not ports.
  return found.filter((f) => f.port >= 1000);
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|js|mjs|sh)$/.test(f) ? [relative(ROOT, p).split(sep).join('/')] : [];
  });

test("every port literal under test/ and bench/ is in its file's rows of the table", () => {
  const rows = new Map(PORT_TABLE.map((u) => [u.file, u.ranges]));
  const problems: string[] = [];
  let seen = 0;
  for (const file of [...sourceFiles(join(ROOT, 'test')), ...sourceFiles(join(ROOT, 'bench'))]) {
    if (SELF.has(file)) continue;
    const literals = portLiterals(readFileSync(join(ROOT, file), 'utf8'), file.startsWith('test/unit/'));
    if (literals.length === 0) continue;
    seen++;
    const ranges = rows.get(file);
    if (!ranges) {
      const ports = [...new Set(literals.map((l) => l.port))].join(', ');
      problems.push(`${file} names ports (${ports}) but has no row in test/support/ports.ts`);
      continue;
    }
    for (const l of literals)
      if (!ranges.some(([lo, hi]) => lo <= l.port && l.port <= hi))
        problems.push(`${file}: ${l.port} (${l.what}) is outside its rows ${ranges.map(fmt).join(', ')}`);
  }
  assert.deepEqual(problems, []);
  assert.ok(seen >= 40, `the patterns found ports in only ${seen} files: are they still matching?`);
});

test('the patterns find what they are meant to', () => {
  const ports = (text: string, unit = false) => portLiterals(text, unit).map((l) => l.port);
  assert.deepEqual(ports('const BASE = 9000;\nconst PORTS = [0, 1, 2].map((i) => BASE + i);'), [9000]);
  assert.deepEqual(
    ports('const BASES = [11500, 11700];\nconst KEYS = 2000;\nconst NODE_TIMEOUT = 2000;'),
    [11500, 11700],
  );
  assert.deepEqual(ports("cli(home, ['sandbox', 'up', '--base-port',\n    '11400',\n]);"), [11400]);
  assert.deepEqual(ports("['--port', String(7997), '--base-port', String(7000)]"), [7000, 7997]);
  assert.deepEqual(
    ports('migrationSandbox(12800, "x"); sandbox(home, 7200); sandboxPair(home, 9200, 9250)'),
    [12800, 7200, 9200, 9250],
  );
  assert.deepEqual(
    ports('server.listen(9150, h); consolidateUnderLoad(9400); delayProxy(16300 + i, 1, 2)'),
    [9400, 16300, 9150],
  );
  assert.deepEqual(ports('seeds: ["127.0.0.1:7499"]'), [7499]);
  assert.deepEqual(ports('seeds: ["127.0.0.1:7499"]', true), []);
});
