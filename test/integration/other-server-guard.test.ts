import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noOtherRedisGuard } from '../../src/hosts/node-files.js';

// A redis-server the inventory does not know, working in a directory, on port 7998.
const busy = mkdtempSync(join(tmpdir(), 'rr-guard-busy-'));
const idle = mkdtempSync(join(tmpdir(), 'rr-guard-idle-'));
const server = spawn('redis-server', ['--port', '7998', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
  cwd: busy,
  stdio: 'ignore',
});
after(() => {
  server.kill('SIGKILL');
  rmSync(busy, { recursive: true, force: true });
  rmSync(idle, { recursive: true, force: true });
});

const guard = (dir: string) => spawnSync('sh', ['-c', `${noOtherRedisGuard(dir)} echo clear`], { encoding: 'utf8' });

test('the other-server guard stops (exit 6, naming the pid) where a redis-server works in the directory, and lets a command through elsewhere', async () => {
  for (let i = 0; i < 50 && guard(busy).status !== 6; i++) await new Promise((r) => setTimeout(r, 100));
  const hit = guard(busy);
  assert.equal(hit.status, 6, hit.stderr);
  assert.match(hit.stderr, new RegExp(`a redis or valkey server \\(pid ${server.pid}\\) runs in ${busy}`));
  assert.doesNotMatch(hit.stdout, /clear/);
  const free = guard(idle);
  assert.equal(free.status, 0, free.stderr);
  assert.equal(free.stdout.trim(), 'clear');
});
