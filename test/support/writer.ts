import './ioredis-asking.js';
import { Cluster, type RedisOptions } from 'ioredis';

/**
 * A steady application-like write load on a cluster, for sync tests: counters
 * (INCR, HINCRBY), list pushes, stream appends (none of them idempotent: a
 * write applied twice shows), plus SETs with TTLs and DELs. Runs until
 * `stop`, which resolves with the number of acknowledged commands. With
 * `deletes: false` the key count only grows (for runbooks that check no key was lost).
 */
export function startWriter(
  port: number | string,
  password: string,
  prefix = 'w',
  o: { deletes?: boolean; redis?: RedisOptions } = {},
): { stop(): Promise<number>; count(): number } {
  // A port on loopback, or host:port (a node in a multi-host sandbox).
  const seed =
    typeof port === 'number'
      ? { host: '127.0.0.1', port }
      : { host: port.slice(0, port.lastIndexOf(':')), port: Number(port.slice(port.lastIndexOf(':') + 1)) };
  const c = new Cluster([seed], { redisOptions: { password, ...o.redis }, enableAutoPipelining: true });
  c.on('error', () => {});
  let running = true;
  let n = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const sent: Array<Promise<unknown>> = [];
      for (let j = 0; j < 20; j++) {
        const k = i * 20 + j;
        sent.push(
          c.incr(`${prefix}:ctr:${k % 50}`),
          c.lpush(`${prefix}:list:${k % 20}`, String(k)),
          c.hincrby(`${prefix}:hash:${k % 30}`, `f${k % 7}`, 1),
          c.set(`${prefix}:s:${k}`, `v${k}`, 'EX', 3600),
        );
        if (k >= 100 && o.deletes !== false) sent.push(c.del(`${prefix}:s:${k - 100}`));
        if (k % 10 === 0) sent.push(c.xadd(`${prefix}:stream:${k % 3}`, '*', 'k', String(k)));
      }
      const res = await Promise.allSettled(sent);
      n += res.filter((x) => x.status === 'fulfilled').length;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    count: () => n,
    async stop() {
      running = false;
      await loop;
      c.disconnect();
      return n;
    },
  };
}
