import { test } from 'node:test';
import assert from 'node:assert/strict';
import { followFailovers } from '../../src/steps/slots/move-slot-plan.js';
import { slotMoveError } from '../../src/redis/slot-move.js';
import type { Topology, TopologyNode } from '../../src/redis/topology.js';

const node = (id: string, port: number, role: 'master' | 'replica', masterId?: string): TopologyNode => ({
  id,
  address: `127.0.0.1:${port}`,
  role,
  masterId,
  flags: [role === 'master' ? 'master' : 'slave'],
  slots: [],
  configEpoch: 1,
  reachable: true,
});
const topo = (nodes: TopologyNode[]): Topology => ({
  cluster: 'c',
  takenAt: '',
  seed: '',
  nodeTimeoutMs: 2000,
  nodes,
  fingerprint: '',
});
const ref = (id: string, port: number) => ({ id, address: `127.0.0.1:${port}` });

test('a planned receiver that failed over (now a replica) is replaced by the master it follows; other endpoints stay', () => {
  // b was the receiver; it was killed, its replica b2 promoted, and b came back as b2's replica.
  const t = topo([
    node('a', 1, 'master'),
    node('b', 2, 'replica', 'b2'),
    node('b2', 5, 'master'),
    node('a2', 4, 'replica', 'a'),
  ]);
  const moves = [{ slot: 10, from: ref('a', 1), to: ref('b', 2) }];
  const now = followFailovers(t, { moves, masters: ['127.0.0.1:1', '127.0.0.1:2'] });
  assert.deepEqual(now.moves, [{ slot: 10, from: ref('a', 1), to: ref('b2', 5) }]);
  assert.deepEqual(now.masters, ['127.0.0.1:1', '127.0.0.1:5']);
});

test('a plan whose nodes kept their roles is unchanged', () => {
  const t = topo([node('a', 1, 'master'), node('b', 2, 'master'), node('a2', 4, 'replica', 'a')]);
  const moves = [{ slot: 10, from: ref('a', 1), to: ref('b', 2) }];
  assert.deepEqual(followFailovers(t, { moves, masters: ['127.0.0.1:1', '127.0.0.1:2'] }), {
    moves,
    masters: ['127.0.0.1:1', '127.0.0.1:2'],
  });
});

test('a master demoted during a move (SETSLOT or a write refused as a replica) is E_NODE_DEMOTED with the resume remedy; other refusals keep their text', () => {
  const demoted = slotMoveError('10.0.0.3:7002', 'ERR Please use SETSLOT only with masters.') as Error & {
    code?: string;
  };
  assert.equal(demoted.code, 'E_NODE_DEMOTED');
  assert.match(demoted.message, /10\.0\.0\.3:7002 is no longer a master .*a failover happened during the slot move/);
  assert.equal(
    (
      slotMoveError('10.0.0.3:7002', "READONLY You can't write against a read only replica.") as Error & {
        code?: string;
      }
    ).code,
    'E_NODE_DEMOTED',
  );
  const other = slotMoveError('10.0.0.3:7002', "ERR I'm not the owner of hash slot 42") as Error & { code?: string };
  assert.equal(other.code, undefined);
  assert.equal(other.message, "10.0.0.3:7002: ERR I'm not the owner of hash slot 42");
});
