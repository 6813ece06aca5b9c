import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assessAgreement, viewSignature, type NodeReport } from '../../src/redis/agreement.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

const A = 'a'.repeat(40),
  B = 'b'.repeat(40),
  C = 'c'.repeat(40);
const line = (id: string, port: number, flags: string, master: string, slots: string) =>
  `${id} 127.0.0.1:${port}@${port + 10000} ${flags} ${master} 0 0 1 connected ${slots}`.trim();
/** A 3-node view as `me` sees it: A owns 0-8191, B 8192-16383, C replicates A. */
function view(me: string, o: { bSlots?: string; aFlags?: string; cFlags?: string } = {}): string {
  const f = (id: string, base: string) => (id === me ? `myself,${base}` : base);
  return [
    line(A, 7000, f(A, o.aFlags ?? 'master'), '-', '0-8191'),
    line(B, 7001, f(B, 'master'), '-', o.bSlots ?? '8192-16383'),
    line(C, 7002, f(C, o.cFlags ?? 'slave'), A, ''),
  ].join('\n');
}
const report = (address: string, text: string, state = 'ok'): NodeReport => ({
  address,
  view: parseClusterNodes(text),
  state,
});

test('nodes with the same structure are settled; myself flags and link state do not matter', () => {
  const a = assessAgreement([
    report('127.0.0.1:7000', view(A)),
    report('127.0.0.1:7001', view(B)),
    report('127.0.0.1:7002', view(C)),
  ]);
  assert.deepEqual(a, { consensus: true, settled: true, reachable: 3, members: 3, problems: [] });
});

test('a node that still routes a moved slot range to its old owner breaks consensus', () => {
  const a = assessAgreement([
    report('127.0.0.1:7000', view(A, { bSlots: '8192-16383' })),
    report('127.0.0.1:7001', view(B, { bSlots: '8192-16383' })),
    report('127.0.0.1:7002', view(C, { bSlots: '8192-16000' })),
  ]);
  assert.equal(a.consensus, false);
  assert.equal(a.settled, false);
  assert.match(a.problems.join(';'), /2 different views/);
});

test('a node flagged fail by everyone is agreed on, but not settled unless tolerated', () => {
  const reports = [
    report('127.0.0.1:7000', view(A, { cFlags: 'slave,fail' })),
    report('127.0.0.1:7001', view(B, { cFlags: 'slave,fail' })),
  ];
  const a = assessAgreement(reports);
  assert.equal(a.consensus, true);
  assert.equal(a.settled, false);
  assert.match(a.problems.join(';'), /flags 127\.0\.0\.1:7002 fail/);
  assert.match(a.problems.join(';'), /no answer from 127\.0\.0\.1:7002/);
  assert.equal(assessAgreement(reports, ['127.0.0.1:7002']).settled, true);
  assert.equal(assessAgreement(reports, [C]).settled, true);
});

test('fail? on one node only, or cluster_state:fail anywhere, is not settled', () => {
  const pfail = assessAgreement([
    report('127.0.0.1:7000', view(A)),
    report('127.0.0.1:7001', view(B, { aFlags: 'master,fail?' })),
    report('127.0.0.1:7002', view(C)),
  ]);
  assert.equal(pfail.consensus, false);
  const down = assessAgreement([
    report('127.0.0.1:7000', view(A)),
    report('127.0.0.1:7001', view(B), 'fail'),
    report('127.0.0.1:7002', view(C)),
  ]);
  assert.equal(down.consensus, true);
  assert.equal(down.settled, false);
  assert.match(down.problems.join(';'), /127\.0\.0\.1:7001 says cluster_state:fail/);
});

test('a node that does not answer is not settled; no answer at all is not consensus', () => {
  const a = assessAgreement([
    report('127.0.0.1:7000', view(A)),
    report('127.0.0.1:7001', view(B)),
    { address: '127.0.0.1:7002', error: 'ECONNREFUSED' },
  ]);
  assert.equal(a.consensus, true);
  assert.equal(a.settled, false);
  assert.equal(assessAgreement([{ address: 'x:1', error: 'down' }]).consensus, false);
});

test('fail? and fail count alike in the signature (one becomes the other by gossip)', () => {
  assert.equal(
    viewSignature(parseClusterNodes(view(A, { cFlags: 'slave,fail?' }))),
    viewSignature(parseClusterNodes(view(B, { cFlags: 'slave,fail' }))),
  );
});

test('a node the others no longer list (forgotten, still running) or a tolerated node does not count', () => {
  const forgotten = [line(A, 7000, 'myself,master', '-', '0-8191'), line(B, 7001, 'master', '-', '8192-16383')].join(
    '\n',
  );
  const others = [line(A, 7000, 'master', '-', '0-8191'), line(B, 7001, 'myself,master', '-', '8192-16383')].join('\n');
  const stillKnows = [
    line(A, 7000, 'master', '-', '0-8191'),
    line(B, 7001, 'master', '-', '8192-16383'),
    line(C, 7002, 'myself,master', '-', ''),
  ].join('\n');
  const a = assessAgreement([
    report('127.0.0.1:7000', forgotten),
    report('127.0.0.1:7001', others),
    report('127.0.0.1:7002', stillKnows),
  ]);
  assert.equal(a.settled, true, a.problems.join(';'));
  assert.equal(a.reachable, 2);
});
