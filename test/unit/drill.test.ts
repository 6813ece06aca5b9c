import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promotionBoundMs, expectedOutage } from '../../src/steps/failover/drill-fail-master.js';
import { tagInRanges } from '../../src/redis/canary.js';
import { keySlot } from '../../src/redis/slots.js';
import { spreadSlots } from '../../src/redis/slot-move.js';
import { expandTemplate, hostFor, hostInvocation } from '../../src/hosts/host.js';
import type { Inventory } from '../../src/inventory/types.js';

test('the promotion bound covers detection and two elections, and grows with the node timeout', () => {
  // 2000 ms: detection 2 s + election delay + 2 x 2 x auth timeout (4 s) = well above the usual 4-5 s
  assert.equal(promotionBoundMs(2000, 1), 2000 + 1000 + 1000 + 16000);
  assert.ok(promotionBoundMs(15000, 1) > 4 * 15000);
  assert.match(expectedOutage(2000), /^2\.5-5\.5 s$/);
});

test('canary tags land in the given slots, deterministically', () => {
  for (const ranges of [[[0, 5460]], [[5461, 10922]], [[10923, 16383]], [[42, 42]]] as Array<Array<[number, number]>>) {
    const { tag, slot } = tagInRanges(ranges);
    assert.equal(keySlot(`redis-runbook:canary:{${tag}}:abc:1`), slot);
    assert.ok(ranges.some(([a, b]) => a <= slot && slot <= b));
    assert.deepEqual(tagInRanges(ranges), { tag, slot });
  }
});

test('slots spread evenly over the other masters, in contiguous blocks', () => {
  const from = { id: 'x', address: '127.0.0.1:7000' };
  const a = { id: 'a', address: '127.0.0.1:7001' };
  const b = { id: 'b', address: '127.0.0.1:7002' };
  const slots = Array.from({ length: 100 }, (_, i) => i);
  const moves = spreadSlots(slots, from, [
    { node: a, slots: 1000 },
    { node: b, slots: 1010 },
  ]);
  const toA = moves.filter((m) => m.to.id === 'a').map((m) => m.slot);
  const toB = moves.filter((m) => m.to.id === 'b').map((m) => m.slot);
  assert.equal(toA.length + toB.length, 100);
  assert.equal(1000 + toA.length, 1010 + toB.length, 'both end with 1055 slots');
  assert.deepEqual(
    toA,
    Array.from({ length: 55 }, (_, i) => i),
    'contiguous',
  );
  assert.deepEqual(spreadSlots(slots, from, []), []);
});

test('hosts: a node is matched by its address, templates are filled, ssh runs in batch mode', () => {
  const inv: Inventory = {
    file: '/i.yaml',
    clusters: {},
    hosts: {
      db1: {
        name: 'db1',
        transport: 'ssh',
        addresses: ['10.0.0.1'],
        ssh: { user: 'ops', port: 2222, identity: '/k', jump: 'bastion' },
        service: { stop: 'systemctl stop redis@{port}' },
      },
      here: { name: 'here', transport: 'local', addresses: ['127.0.0.1'] },
    },
  };
  assert.equal(hostFor(inv, '10.0.0.1:6379')?.name, 'db1');
  assert.equal(hostFor(inv, '10.0.0.2:6379'), undefined);
  assert.equal(
    expandTemplate('systemctl stop redis@{port} # {host} {address}', '10.0.0.1:6379'),
    'systemctl stop redis@6379 # 10.0.0.1 10.0.0.1:6379',
  );
  const ssh = hostInvocation(inv.hosts.db1!, '10.0.0.1', 'uptime');
  assert.equal(ssh.file, 'ssh');
  assert.deepEqual(ssh.args.slice(0, 2), ['-o', 'BatchMode=yes']);
  assert.ok(ssh.args.includes('-J') && ssh.args.includes('bastion') && ssh.args.includes('2222'));
  assert.deepEqual(ssh.args.slice(-2), ['ops@10.0.0.1', 'uptime']);
  assert.deepEqual(hostInvocation(inv.hosts.here!, '127.0.0.1', 'true'), { file: 'sh', args: ['-c', 'true'] });
});

test('host command lines are stored with their passwords replaced', async () => {
  const { redactCommandLine } = await import('../../src/redis/audit.js');
  assert.equal(redactCommandLine('redis-cli -a s3cret -p 7000 shutdown', []), 'redis-cli -a *** -p 7000 shutdown');
  assert.equal(
    redactCommandLine('REDISCLI_AUTH=s3cret redis-cli --pass s3cret ping', []),
    'REDISCLI_AUTH=*** redis-cli --pass *** ping',
  );
  assert.equal(redactCommandLine('echo hunter22 | tee x', ['hunter22']), 'echo *** | tee x');
  assert.equal(redactCommandLine('systemctl stop redis@7000', ['hunter22']), 'systemctl stop redis@7000');
});

test('shards pair by identical slot ranges; any difference is named and refused', async () => {
  const { pairShards } = await import('../../src/redis/pairing.js');
  const { fingerprintOf } = await import('../../src/redis/topology.js');
  const topo = (cluster: string, base: number, ranges: Array<Array<[number, number]>>) => {
    const nodes = ranges.map((slots, i) => ({
      id: `${cluster}${i}`,
      address: `127.0.0.1:${base + i}`,
      role: 'master' as const,
      masterId: undefined,
      flags: ['master'],
      slots,
      configEpoch: 1,
      reachable: true,
    }));
    return { cluster, takenAt: 'now', seed: '', nodeTimeoutMs: 2000, nodes, fingerprint: fingerprintOf(nodes) };
  };
  const src = topo('source', 7000, [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]]);
  const same = topo('target', 8000, [[[10923, 16383]], [[0, 5460]], [[5461, 10922]]]);
  const pairs = pairShards(src, same);
  assert.deepEqual(
    pairs.map((p) => [p.source.address, p.target.address]),
    [
      ['127.0.0.1:7000', '127.0.0.1:8001'],
      ['127.0.0.1:7002', '127.0.0.1:8000'],
      ['127.0.0.1:7001', '127.0.0.1:8002'],
    ],
    'by slots, not by port order',
  );
  const five = topo('target', 8000, [[[0, 3276]], [[3277, 6553]], [[6554, 9829]], [[9830, 13106]], [[13107, 16383]]]);
  assert.throws(
    () => pairShards(src, five),
    (e: Error & { code?: string; remedy?: string }) =>
      e.code === 'E_STRUCTURE' &&
      /source slots 0-5460 have no target master/.test(e.message) &&
      /migrate-consolidate-reshard/.test(e.remedy ?? ''),
  );
});

test('consolidate, spread and restore plans: every slot accounted for, even contiguous spread', async () => {
  const { consolidationMoves, spreadMoves, restoreMoves, chooseCollector } =
    await import('../../src/redis/consolidate.js');
  const { fingerprintOf } = await import('../../src/redis/topology.js');
  const mk = (ranges: Array<Array<[number, number]>>, used: number[]) => {
    const nodes = ranges.map((slots, i) => ({
      id: `m${i}`,
      address: `127.0.0.1:${7000 + i}`,
      role: 'master' as const,
      masterId: undefined,
      flags: ['master'],
      slots,
      configEpoch: 1,
      reachable: true,
      self: { usedMemory: used[i]!, maxmemory: 0, keys: 1 } as never,
    }));
    return { cluster: 'c', takenAt: 'now', seed: '', nodeTimeoutMs: 2000, nodes, fingerprint: fingerprintOf(nodes) };
  };
  const src = mk([[[0, 5460]], [[5461, 10922]], [[10923, 16383]]], [300, 100, 200]);
  const via = chooseCollector(src);
  assert.equal(via.address, '127.0.0.1:7001', 'most headroom: the smallest dataset when no maxmemory is set');
  const c = consolidationMoves(src, via);
  assert.equal(c.length, 16384 - 5462);
  assert.ok(c.every((m) => m.to.id === 'm1' && m.from.id !== 'm1'));
  const back = restoreMoves(src, via);
  assert.deepEqual(
    back.map((m) => [m.slot, m.to.id]).sort((a, b) => Number(a[0]) - Number(b[0])),
    c.map((m) => [m.slot, m.from.id]).sort((a, b) => Number(a[0]) - Number(b[0])),
    'restore is consolidation reversed',
  );
  const five = mk([[[0, 16383]], [], [], [], []], [1, 1, 1, 1, 1]);
  const s = spreadMoves(five, five.nodes[0] as never);
  assert.equal(s.length, 16384 - 3277, 'the collector keeps the first fifth');
  const per = new Map<string, number[]>();
  for (const m of s) per.set(m.to.id, [...(per.get(m.to.id) ?? []), m.slot]);
  assert.equal(per.size, 4);
  for (const slots of per.values())
    assert.ok(
      slots.length >= 3276 && slots.length <= 3277 && slots[slots.length - 1]! - slots[0]! === slots.length - 1,
      'contiguous, even',
    );
});

test('rebalance: an uneven layout is evened out with few moves; a balanced one moves nothing', async () => {
  const { rebalanceMoves } = await import('../../src/redis/consolidate.js');
  const { fingerprintOf } = await import('../../src/redis/topology.js');
  const mk = (ranges: Array<Array<[number, number]>>) => {
    const nodes = ranges.map((slots, i) => ({
      id: `m${i}`,
      address: `127.0.0.1:${7000 + i}`,
      role: 'master' as const,
      masterId: undefined,
      flags: ['master'],
      slots,
      configEpoch: 1,
      reachable: true,
    }));
    return { cluster: 'c', takenAt: 'now', seed: '', nodeTimeoutMs: 2000, nodes, fingerprint: fingerprintOf(nodes) };
  };
  assert.deepEqual(rebalanceMoves(mk([[[0, 5460]], [[5461, 10922]], [[10923, 16383]]])), []);
  // Three masters plus a new empty one: only the last quarter's worth moves to it, per old master.
  const moves = rebalanceMoves(mk([[[0, 5460]], [[5461, 10922]], [[10923, 16383]], []]));
  const to = new Map<string, number>();
  for (const m of moves) to.set(m.to.id, (to.get(m.to.id) ?? 0) + 1);
  assert.equal(to.get('m3'), 4096);
  assert.ok(moves.length < 16384 / 2, `${moves.length} moves`);
});
