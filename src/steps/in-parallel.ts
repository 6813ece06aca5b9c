/**
 * Run one task per item at once, each with a signal that also fires when a
 * sibling fails. On the first failure the others are told to stop (an rsync
 * is killed through its cancel signal), and this waits until every task has
 * ended before it rethrows that first failure: a step never reports failed
 * while its own copies still write to the target, where a retry or a resume
 * would meet them.
 */
export async function inParallel<T, R>(
  items: readonly T[],
  signal: AbortSignal,
  task: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  const siblings = new AbortController();
  const either = AbortSignal.any([signal, siblings.signal]);
  let first: { error: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map(async (item) => {
      try {
        return await task(item, either);
      } catch (error) {
        first ??= { error };
        siblings.abort();
        throw error;
      }
    }),
  );
  if (first) throw first.error;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}
