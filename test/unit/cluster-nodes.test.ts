import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClusterNodes, parseInfo, keysFromInfo, fieldTtlKeysFromInfo } from '../../src/redis/cluster-nodes.js';

const NODES = `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [16000->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006 slave,fail 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 0 1426238317741 3 disconnected
`;

test('parseClusterNodes reads roles, masters, slots, migrating and importing', () => {
  const n = parseClusterNodes(NODES);
  assert.equal(n.length, 5);
  assert.equal(n[0]!.address, '127.0.0.1:30004', 'bus port and hostname are dropped');
  assert.equal(n[0]!.masterId, 'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca');
  assert.deepEqual(n[1]!.slots, [[5461, 10922]]);
  assert.deepEqual(n[2]!.migrating, [{ slot: 16000, to: '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1' }]);
  assert.deepEqual(n[2]!.slots, [[10923, 16383]]);
  assert.deepEqual(n[3]!.importing, [{ slot: 93, from: '292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f' }]);
  assert.ok(n[3]!.flags.includes('myself'));
  assert.deepEqual(n[4]!.flags, ['slave', 'fail']);
  assert.equal(n[4]!.linkState, 'disconnected');
});

test('parseInfo and keysFromInfo', () => {
  const info = parseInfo(
    '# Replication\r\nrole:master\r\nconnected_slaves:1\r\n# Keyspace\r\ndb0:keys=1631,expires=170,avg_ttl=0\r\n',
  );
  assert.equal(info.role, 'master');
  assert.equal(keysFromInfo(info), 1631);
  assert.equal(keysFromInfo(parseInfo('# Keyspace\r\n')), 0);
  // Redis 7.4 counts the keys with hash fields that have their own TTL; older servers say nothing.
  assert.equal(fieldTtlKeysFromInfo(parseInfo('db0:keys=3,expires=0,avg_ttl=0,subexpiry=2\r\n')), 2);
  assert.equal(fieldTtlKeysFromInfo(info), 0);
});
