/**
 * Incremental lag under a steady write load: `rate` writes/s on the source
 * (batches every 10 ms, over 200k keys) while a probe SET every 100 ms is
 * timed from the source's acknowledgement until a GET on the target sees it.
 * Shared by bench/sync.ts and bench/peers-sync.ts.
 */
import { Cluster } from 'ioredis';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Lag {
  /** Writes of the load actually sent, and over how many seconds. */
  writes: number;
  elapsed: number;
  /** One per probe, ms. */
  lags: number[];
}

export async function measureLag(o: {
  sourcePort: number;
  targetPort: number;
  password: string;
  rate: number;
  seconds: number;
  /** A prefix for the probe keys, so runs against the same source do not find each other's. */
  probePrefix?: string;
}): Promise<Lag> {
  const app = new Cluster([{ host: '127.0.0.1', port: o.sourcePort }], {
    redisOptions: { password: o.password },
    enableAutoPipelining: true,
  });
  const reader = new Cluster([{ host: '127.0.0.1', port: o.targetPort }], { redisOptions: { password: o.password } });
  const prefix = o.probePrefix ?? 'probe';
  let running = true;
  let writes = 0;
  const load = (async () => {
    // rate writes per second in batches every 10 ms.
    for (let i = 0; running; i++) {
      const t = Date.now();
      await Promise.all(
        Array.from({ length: o.rate / 100 }, (_, j) => app.set(`load:${(i * 1000 + j) % 200000}`, String(i))),
      );
      writes += o.rate / 100;
      await sleep(Math.max(0, 10 - (Date.now() - t)));
    }
  })();
  try {
    // Both clients connected and their slot maps loaded before anything is timed.
    await app.set(`${prefix}:warm`, '1');
    await reader.get(`${prefix}:warm`);
    const lags: number[] = [];
    const t0 = Date.now();
    for (let n = 0; Date.now() - t0 < o.seconds * 1000; n++) {
      const key = `${prefix}:${n}`;
      await app.set(key, '1');
      const acked = Date.now();
      while ((await reader.get(key)) === null) {
        if (Date.now() - acked > 10000) throw new Error(`probe ${key} not in the target after 10 s`);
        await sleep(2);
      }
      lags.push(Date.now() - acked);
      await sleep(100);
    }
    const elapsed = (Date.now() - t0) / 1000;
    return { writes, elapsed, lags };
  } finally {
    running = false;
    await load.catch(() => {});
    app.disconnect();
    reader.disconnect();
  }
}
