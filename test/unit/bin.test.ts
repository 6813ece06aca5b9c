import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// bin/redis-runbook, the command npm installs: the CLI with a bounded heap.
const BIN = join(process.cwd(), 'bin', 'redis-runbook');
const dir = mkdtempSync(join(tmpdir(), 'rr-bin-'));
// Preloaded into the CLI's node: writes the heap limit V8 was given, in MB.
const probe = join(dir, 'heap-probe.mjs');
writeFileSync(
  probe,
  "import v8 from 'node:v8'; import { writeFileSync } from 'node:fs';\n" +
    'writeFileSync(process.env.RR_HEAP_OUT, String(v8.getHeapStatistics().heap_size_limit / 1048576));\n',
);

function heapLimitMb(env: Record<string, string>): number {
  const out = join(dir, `heap-${Math.random()}`);
  const r = spawnSync(BIN, ['--version'], {
    env: { ...process.env, NODE_OPTIONS: `--import=${probe}`, RR_HEAP_OUT: out, ...env },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+/);
  return Number(readFileSync(out, 'utf8'));
}

test("bin/redis-runbook gives the CLI a heap of 192 MB by default; REDIS_RUNBOOK_MAX_HEAP_MB changes it, 0 leaves V8 its own, and so does an operator's NODE_OPTIONS", () => {
  const dflt = heapLimitMb({});
  // heap_size_limit is the old space given plus the young generation.
  assert.ok(dflt >= 192 && dflt < 260, `default limit ${dflt} MB`);
  const more = heapLimitMb({ REDIS_RUNBOOK_MAX_HEAP_MB: '512' });
  assert.ok(more >= 512 && more < 580, `limit with 512: ${more} MB`);
  // V8's own limit depends on the machine's memory: what a plain node reports here.
  const plain = spawnSync(
    process.execPath,
    ['-p', "require('node:v8').getHeapStatistics().heap_size_limit / 1048576"],
    {
      encoding: 'utf8',
    },
  );
  const v8own = heapLimitMb({ REDIS_RUNBOOK_MAX_HEAP_MB: '0' });
  assert.equal(v8own, Number(plain.stdout.trim()), "0 leaves V8's own limit");
  // An operator's own --max-old-space-size in NODE_OPTIONS decides.
  const theirs = heapLimitMb({ NODE_OPTIONS: `--max-old-space-size=400 --import=${probe}` });
  assert.ok(theirs >= 400 && theirs < 470, `limit with NODE_OPTIONS 400: ${theirs} MB`);
});

test('a REDIS_RUNBOOK_MAX_HEAP_MB that is not a number is a usage error (exit 2) naming it, and nothing runs', () => {
  const r = spawnSync(BIN, ['--version'], {
    env: { ...process.env, REDIS_RUNBOOK_MAX_HEAP_MB: '192m' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /E_USAGE: REDIS_RUNBOOK_MAX_HEAP_MB=192m is not a number of megabytes/);
});
