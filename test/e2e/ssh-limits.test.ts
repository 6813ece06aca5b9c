import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, stopSshd } from '../../src/sandbox/sshd.js';
import { runOnHost, hostInvocation } from '../../src/hosts/host.js';
import { copy } from '../../src/hosts/copy.js';
import type { HostConfig } from '../../src/inventory/types.js';

// A real loopback sshd on 9399 (this helper's range): the keep-alive and timeout options every
// ssh and rsync command line now carries are accepted by real ssh and rsync, end to end.
const dir = mkdtempSync(join(tmpdir(), 'rr-sshlim-'));
let host: HostConfig;

before(async () => {
  const ssh = await startSshd(dir, 9399);
  host = {
    name: 'loop',
    transport: 'ssh',
    addresses: ['127.0.0.1'],
    ssh: { user: ssh.user, port: ssh.port, identity: ssh.identity, knownHosts: ssh.knownHosts },
  };
});
after(async () => {
  await stopSshd(dir);
});

test('ssh with ConnectTimeout, ServerAliveInterval and ServerAliveCountMax runs a command; rsync with --timeout copies through it', async () => {
  assert.match(
    hostInvocation(host, '127.0.0.1', 'true').args.join(' '),
    /ServerAliveInterval=15 -o ServerAliveCountMax=4/,
  );
  const r = await runOnHost(host, '127.0.0.1', 'echo alive', { timeoutMs: 30_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'alive');
  const src = join(dir, 'from.txt');
  writeFileSync(src, 'payload\n');
  const local: HostConfig = { name: 'here', transport: 'local', addresses: [] };
  await copy(
    { host: local, target: 'localhost', path: src },
    { host, target: '127.0.0.1', path: join(dir, 'to.txt') },
    'file',
  );
  assert.equal(readFileSync(join(dir, 'to.txt'), 'utf8'), 'payload\n');
});
