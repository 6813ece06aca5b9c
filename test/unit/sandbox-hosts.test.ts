import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterLayout } from '../../src/sandbox/layout.js';
import { nodesByHost, placeNodes, MAX_HOSTS } from '../../src/sandbox/placement.js';
import { networkNames, planNetwork } from '../../src/sandbox/netns.js';

test("placement: a master and its replicas on different hosts, the target's master one host away from the source's with the same slots", () => {
  for (let hosts = 2; hosts <= MAX_HOSTS; hosts++) {
    for (const replicas of [0, 1, 2]) {
      const source = clusterLayout('source', 7000, 3, replicas);
      const target = clusterLayout('target', 7100, 3, replicas);
      const place = placeNodes([source, target], hosts);
      for (const l of [source, target]) {
        l.masterPorts.forEach((m, i) => {
          const onHosts = [m, ...l.replicaPorts[i]!].map((p) => place.get(p));
          // As many distinct hosts as the shard has copies, up to the number of hosts.
          assert.equal(
            new Set(onHosts).size,
            Math.min(onHosts.length, hosts),
            `${l.name} shard ${i} on ${hosts} hosts: ${onHosts.join(',')}`,
          );
        });
      }
      source.masterPorts.forEach((m, i) =>
        assert.notEqual(place.get(m), place.get(target.masterPorts[i]!), 'a copy crosses hosts'),
      );
      const byHost = nodesByHost(place, hosts);
      assert.equal(byHost.flat().length, source.ports.length + target.ports.length);
    }
  }
});

test('network names fit in 15 characters and differ between sandboxes; hosts get .11.. and the runner .1', () => {
  const a = networkNames('/state/sandbox/a');
  const b = networkNames('/state/sandbox/b');
  assert.notEqual(a.id, b.id);
  for (const n of [a.bridge, a.vethRoot(0), a.vethRoot(MAX_HOSTS - 1)]) assert.ok(n.length <= 15, n);
  const net = planNetwork('/state/sandbox/a', '10.213.7.0', [[7000], [7001], [7002]]);
  assert.equal(net.runnerAddress, '10.213.7.1');
  assert.deepEqual(
    net.hosts.map((h) => h.address),
    ['10.213.7.11', '10.213.7.12', '10.213.7.13'],
  );
  assert.deepEqual(
    net.hosts.map((h) => h.name),
    ['host1', 'host2', 'host3'],
  );
  assert.equal(net.subnet, '10.213.7.0/24');
});
