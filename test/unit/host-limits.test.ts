import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostInvocation, sshOptions } from '../../src/hosts/host.js';
import { rsyncArgs } from '../../src/hosts/copy.js';
import type { HostConfig } from '../../src/inventory/types.js';

const host: HostConfig = { name: 'db1', transport: 'ssh', addresses: ['10.0.0.1'], ssh: { user: 'ops', port: 2222 } };

/** The value of `-o Name=value` in an ssh argv. */
const option = (args: string[], name: string) => {
  for (let i = 0; i < args.length - 1; i++)
    if (args[i] === '-o' && args[i + 1]!.startsWith(`${name}=`)) return args[i + 1]!.slice(name.length + 1);
  return undefined;
};

test('every ssh command line bounds its connect and notices a peer that stops answering', () => {
  const { file, args } = hostInvocation(host, '10.0.0.1', 'true');
  assert.equal(file, 'ssh');
  for (const a of [args, sshOptions(host)]) {
    assert.equal(option(a, 'ConnectTimeout'), '10');
    assert.equal(option(a, 'ServerAliveInterval'), '15');
    assert.equal(option(a, 'ServerAliveCountMax'), '4');
    assert.equal(option(a, 'BatchMode'), 'yes');
  }
});

test('rsync gives up on a transfer that stops moving, and its ssh carries the same bounds', () => {
  for (const kind of ['file', 'dir'] as const) {
    const local = rsyncArgs(kind, undefined);
    assert.ok(local.includes('--timeout=300'), local.join(' '));
    const remote = rsyncArgs(kind, host);
    assert.ok(remote.includes('--timeout=300'), remote.join(' '));
    const e = remote[remote.indexOf('-e') + 1]!;
    assert.match(e, /-o ServerAliveInterval=15 -o ServerAliveCountMax=4/);
    assert.match(e, /-o ConnectTimeout=10/);
  }
});
