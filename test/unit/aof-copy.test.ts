import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aofCopy } from '../../src/steps/files/aof-copy.js';
import type { NodePersistence } from '../../src/hosts/node-files.js';

const node = (over: Partial<NodePersistence> = {}): NodePersistence => ({
  dir: '/data/7000/',
  dbfilename: 'dump.rdb',
  appendonly: true,
  appenddirname: 'appendonlydir',
  appendfilename: 'appendonly.aof',
  clusterConfigFile: 'nodes.conf',
  ...over,
});
const redis6 = (over: Partial<NodePersistence> = {}) => node({ appenddirname: '', ...over });

test('aof copy: Redis 7 to Redis 7 copies the directory under the target name', () => {
  assert.deepEqual(aofCopy(node(), node({ appenddirname: 'aof-b' })), { ok: true, name: 'aof-b', kind: 'dir' });
});

test("aof copy: Redis 6 to Redis 6 copies the file under the target's appendfilename", () => {
  assert.deepEqual(aofCopy(redis6(), redis6({ appendfilename: 'b.aof' })), { ok: true, name: 'b.aof', kind: 'file' });
});

test("aof copy: Redis 6 to Redis 7 copies the file under the target's appendfilename; its directory must be gone", () => {
  assert.deepEqual(aofCopy(redis6(), node({ appendfilename: 'b.aof', appenddirname: 'aofdir' })), {
    ok: true,
    name: 'b.aof',
    kind: 'file',
    mustBeAbsent: '/data/7000/aofdir',
  });
});

test('aof copy: Redis 7 to Redis 6 is refused, saying what each side keeps', () => {
  const c = aofCopy(node(), redis6({ appendfilename: 'six.aof' }));
  assert.equal(c.ok, false);
  if (c.ok) return;
  assert.match(c.writes, /multi-part AOF \(directory appendonlydir/);
  assert.match(c.reads, /single-file AOF \(six\.aof\)/);
});
