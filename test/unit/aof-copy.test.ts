import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aofCopy } from '../../src/steps/files/aof-copy.js';
import type { NodePersistence } from '../../src/hosts/node-files.js';
import type { Topology } from '../../src/redis/topology.js';
import { sharedDestinationCondition } from '../../src/steps/files/match-shards.js';

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

test('aof copy: two Redis 7 targets sharing a directory and an appendfilename would get one path; the plan refuses', () => {
  const topo = (nodes: Array<{ id: string; address: string; p: NodePersistence }>) =>
    ({
      nodes: nodes.map((n) => ({ id: n.id, address: n.address, self: { persistence: n.p } })),
    }) as unknown as Topology;
  const pairs = [
    {
      ranges: '0-8191',
      source: { id: 's1', address: 'a:1' },
      target: { id: 't1', address: 'b:1' },
      targetReplicas: [],
    },
    {
      ranges: '8192-16383',
      source: { id: 's2', address: 'a:2' },
      target: { id: 't2', address: 'b:2' },
      targetReplicas: [],
    },
  ];
  const s = topo([
    { id: 's1', address: 'a:1', p: redis6() },
    { id: 's2', address: 'a:2', p: redis6({ dir: '/data/7001' }) },
  ]);
  const shared = topo([
    { id: 't1', address: 'b:1', p: node({ dir: '/data/shared', appenddirname: 'aof-1' }) },
    { id: 't2', address: 'b:2', p: node({ dir: '/data/shared/', appenddirname: 'aof-2' }) },
  ]);
  const c = sharedDestinationCondition({ format: 'aof', pairs }, s, shared);
  assert.equal(c?.ok, false);
  assert.match(c!.reason, /b:1 and b:2 would both get b:\/data\/shared\/appendonly\.aof/);
  const own = topo([
    { id: 't1', address: 'b:1', p: node({ dir: '/data/shared', appenddirname: 'aof-1', appendfilename: 'one.aof' }) },
    { id: 't2', address: 'b:2', p: node({ dir: '/data/shared', appenddirname: 'aof-2' }) },
  ]);
  assert.equal(sharedDestinationCondition({ format: 'aof', pairs }, s, own), undefined);
  assert.equal(sharedDestinationCondition({ format: 'rdb', pairs }, s, shared), undefined);
});
