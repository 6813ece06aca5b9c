import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactArgs, scrub } from '../../src/redis/audit.js';
import { isReadOnly } from '../../src/redis/connect.js';

test('secrets in command arguments are redacted', () => {
  assert.deepEqual(redactArgs('AUTH', ['user', 'pw']), ['***', '***']);
  assert.deepEqual(redactArgs('config', ['SET', 'masterauth', 'pw']), ['SET', 'masterauth', '***']);
  assert.deepEqual(redactArgs('CONFIG', ['SET', 'maxmemory', '1gb']), ['SET', 'maxmemory', '1gb']);
  assert.deepEqual(redactArgs('MIGRATE', ['h', '1', '', '0', '5000', 'AUTH2', 'u', 'pw', 'KEYS', 'k']), [
    'h',
    '1',
    '',
    '0',
    '5000',
    'AUTH2',
    'u',
    '***',
    'KEYS',
    'k',
  ]);
  assert.deepEqual(redactArgs('MIGRATE', ['h', '1', '', '0', '5000', 'AUTH', 'pw', 'KEYS', 'k']), [
    'h',
    '1',
    '',
    '0',
    '5000',
    'AUTH',
    '***',
    'KEYS',
    'k',
  ]);
  assert.deepEqual(redactArgs('ACL', ['SETUSER', 'bob', 'on', '>pw']), ['SETUSER', 'bob', 'on', '***']);
  assert.equal(scrub('ERR pw123 is wrong', ['pw123']), 'ERR *** is wrong');
});

test('read-only sessions let reads through and nothing else', () => {
  assert.ok(isReadOnly('INFO', ['replication']));
  assert.ok(isReadOnly('cluster', ['nodes']));
  assert.ok(isReadOnly('CONFIG', ['GET', 'dir']));
  assert.ok(!isReadOnly('CLUSTER', ['FAILOVER']));
  assert.ok(!isReadOnly('CONFIG', ['SET', 'x', 'y']));
  assert.ok(!isReadOnly('SHUTDOWN', []));
  assert.ok(!isReadOnly('FLUSHALL', []));
});
