import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunResources } from '../../src/engine/run-resources.js';
import { executeRun } from '../../src/engine/runner.js';
import type { StepEnv, StepKinds, StepRunContext } from '../../src/engine/step-contract.js';
import { fakeKind, recordFakeRun, tempStore } from '../support/fake-run.js';
import { failedError } from '../../src/errors.js';

// What a run keeps open between its steps (a background sync) is owned by the run: shared by
// its steps, let go when the run ends in this process, never shared with another run.

class Held {
  detached = 0;
  async detach(): Promise<void> {
    this.detached++;
  }
}

test('RunResources: one start per key, even for concurrent callers; a failed start is forgotten; dispose detaches each once', async () => {
  const r = new RunResources();
  let starts = 0;
  const start = async () => {
    starts++;
    await new Promise((ok) => setTimeout(ok, 5));
    return new Held();
  };
  const [a, b] = await Promise.all([r.acquire('x', start), r.acquire('x', start)]);
  assert.equal(a, b);
  assert.equal(starts, 1);
  await assert.rejects(
    r.acquire('y', async () => {
      throw new Error('no');
    }),
  );
  const y = await r.acquire('y', async () => new Held());
  const z = await r.acquire('z', async () => new Held());
  r.release('z');
  await r.dispose();
  await r.dispose();
  assert.equal(a.detached, 1);
  assert.equal(y.detached, 1);
  assert.equal(z.detached, 0, 'a released resource is its own business');
  assert.notEqual(await r.acquire('x', start), a, 'after dispose a new one starts');
});

const store = () => tempStore('rr-resources-');
const recordRun = recordFakeRun;
const fake = fakeKind;

for (const ending of ['succeeded', 'failed'] as const) {
  test(`the steps of a run share what it keeps open, and the runner detaches it when the run has ${ending}; another run starts its own`, async () => {
    const s = store();
    const held: Held[] = [];
    const open = (ctx: StepRunContext<unknown>) =>
      ctx.resources.acquire('sync', async () => {
        const h = new Held();
        held.push(h);
        return h;
      });
    const kinds: StepKinds = new Map([
      ['opens', fake('opens', async (ctx) => ({ detachedYet: (await open(ctx)).detached }))],
      [
        'uses',
        fake('uses', async (ctx) => {
          await open(ctx);
          if (ending === 'failed') throw failedError('E_FAKE', 'the wait failed');
          return {};
        }),
      ],
    ]);
    for (const id of ['r1', 'r2']) {
      const out = await executeRun({
        store: s,
        runId: id,
        plan: recordRun(s, id, ['opens', 'uses']),
        env: {} as StepEnv,
        kinds,
        allowDestructive: false,
        stop: new AbortController().signal,
      });
      assert.equal(out.status, ending, out.error);
    }
    assert.equal(held.length, 2, 'one per run: its two steps shared it');
    assert.deepEqual(
      held.map((h) => h.detached),
      [1, 1],
    );
    assert.deepEqual(s.steps('r1')[0]!.output, { detachedYet: 0 });
    s.close();
  });
}
