import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inParallel } from '../../src/steps/in-parallel.js';

const until = (signal: AbortSignal, ms: number) =>
  new Promise<'aborted' | 'done'>((resolve) => {
    const t = setTimeout(() => resolve('done'), ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve('aborted');
      },
      { once: true },
    );
  });

test('inParallel: the first failure stops the siblings and is rethrown only once every sibling has ended', async () => {
  const ended: string[] = [];
  const run = inParallel(['fails', 'slow-a', 'slow-b'], new AbortController().signal, async (name, signal) => {
    if (name === 'fails') {
      await new Promise((r) => setTimeout(r, 10));
      throw new Error('shard 1: disk full');
    }
    // A copy that takes 5 s unless told to stop; it takes a moment to clean up after the stop.
    const how = await until(signal, 5000);
    await new Promise((r) => setTimeout(r, 30));
    ended.push(`${name} ${how}`);
    throw new Error(`${name} stopped`);
  });
  const started = Date.now();
  await assert.rejects(run, /shard 1: disk full/);
  assert.deepEqual(
    ended.sort(),
    ['slow-a aborted', 'slow-b aborted'],
    'both siblings were stopped and had ended when the failure was reported',
  );
  assert.ok(Date.now() - started < 2000, 'the siblings were stopped, not waited out');
});

test("inParallel: results in item order when all succeed; the caller's own stop reaches every task", async () => {
  assert.deepEqual(
    await inParallel([3, 1, 2], new AbortController().signal, async (n) => {
      await new Promise((r) => setTimeout(r, n * 5));
      return n * 10;
    }),
    [30, 10, 20],
  );
  const operator = new AbortController();
  const seen: string[] = [];
  const run = inParallel(['a', 'b'], operator.signal, async (name, signal) => {
    seen.push(`${name} ${await until(signal, 5000)}`);
    throw new Error('E_STOPPED');
  });
  setTimeout(() => operator.abort(), 10);
  await assert.rejects(run, /E_STOPPED/);
  assert.deepEqual(seen.sort(), ['a aborted', 'b aborted']);
});
