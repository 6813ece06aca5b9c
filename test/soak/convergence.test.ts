import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  consolidateUnderLoad,
  decommissionUnderLoad,
  drillUnderLoad,
  failoverUnderLoad,
  rebalanceUnderLoad,
  type ScenarioResult,
} from '../support/convergence.js';

// The soak behind "every topology change ends only when every node agrees": each
// scenario of test/e2e/convergence.test.ts, SOAK_RUNS times in a row (default 10),
// unattended, with a writer working, on ports of its own (the e2e bases + 200).
// `npm run test:soak`. Prints a table.

const RUNS = Number(process.env.SOAK_RUNS ?? 10);
const rows: string[] = [];

async function soak(name: string, scenario: () => Promise<ScenarioResult>): Promise<void> {
  const results: ScenarioResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await scenario();
    results.push(r);
    console.log(
      `${name} run ${i + 1}/${RUNS}: exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s, ${r.writes} writes, ${r.retryLines.length} CLUSTERDOWN/TRYAGAIN retries`,
    );
    if (r.code !== 0) console.log(r.out.split('\n').slice(-30).join('\n'));
  }
  const passed = results.filter((r) => r.code === 0).length;
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const settle = results
    .flatMap((r) => r.settleLines.map((l) => Number(/\((\d+) ms\)/.exec(l)?.[1] ?? 0)))
    .sort((a, b) => a - b);
  rows.push(
    `| ${name} | ${RUNS} | ${passed} | ${(ms[Math.floor(ms.length / 2)]! / 1000).toFixed(1)} s | ${settle.length ? `${settle[Math.floor(settle.length / 2)]} / ${settle.at(-1)} ms` : '-'} | ${results.reduce((s, r) => s + r.retryLines.length, 0)} |`,
  );
  assert.equal(passed, RUNS, `${name}: ${RUNS - passed} of ${RUNS} runs failed`);
}

test(`decommission moveSlots=true under load, ${RUNS} runs in a row`, () =>
  soak('decommission moveSlots=true', () => decommissionUnderLoad(9640)));
test(`rebalance under load, ${RUNS} runs in a row`, () => soak('rebalance', () => rebalanceUnderLoad(9650)));
test(`manual failover + fail-back under load, ${RUNS} runs in a row`, () =>
  soak('manual-failover + fail-back', () => failoverUnderLoad(9680)));
test(`drill (SHUTDOWN, restore) under load, ${RUNS} runs in a row`, () =>
  soak('failover-drill + restore', () => drillUnderLoad(9690)));
test(`consolidate-and-reshard under load, ${RUNS} runs in a row`, () =>
  soak('consolidate-and-reshard', () => consolidateUnderLoad(9600)));

test.after(() => {
  console.log(
    [
      '',
      '| scenario | runs | passed | median wall time | agreement wait median / max | transient retries |',
      '|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  );
});
