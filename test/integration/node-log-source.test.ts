import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createStepEnv } from '../../src/steps/env.js';
import { logSourceOf } from '../../src/engine/node-logs.js';
import { startStandalone, type Standalone } from '../support/standalone.js';

// Where a node logs, as CONFIG GET tells it (src/engine/node-logs.ts), against real servers:
// a log file by its absolute path, a relative one (opened from `dir`), standard output, syslog.
// This file's ports: 21430-21433.
const servers: Standalone[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function sourceWith(port: number, args: string[]) {
  const s = await startStandalone({ port, dirPrefix: 'rr-nodelog-src-', args });
  servers.push(s);
  const address = `127.0.0.1:${port}`;
  const env = createStepEnv(
    { file: 'inline', clusters: { c: { name: 'c', seeds: [address] } }, hosts: {} },
    'read-only',
  );
  try {
    return { dir: s.dir, source: await logSourceOf(env, 'c', address) };
  } finally {
    await env.close();
  }
}

test('a log file, by its absolute path', async () => {
  const { dir, source } = await sourceWith(21430, []);
  assert.deepEqual(source, { path: join(dir, 'log') });
});

test('a relative logfile is found in the data directory', async () => {
  const { dir, source } = await sourceWith(21431, ['--logfile', 'relative.log']);
  assert.deepEqual(source, { path: join(dir, 'relative.log') });
});

test('logfile "": standard output, with where to look instead', async () => {
  const { source } = await sourceWith(21432, ['--logfile', '']);
  assert.ok('stream' in source && source.stream === 'stdout', JSON.stringify(source));
  assert.match(source.detail, /logfile "": it logs to standard output/);
});

test('syslog-enabled yes without a file: syslog, by its ident', async () => {
  const { source } = await sourceWith(21433, ['--logfile', '', '--syslog-enabled', 'yes', '--syslog-ident', 'rr-test']);
  assert.ok('stream' in source && source.stream === 'syslog', JSON.stringify(source));
  assert.match(source.detail, /journalctl -t rr-test/);
});
