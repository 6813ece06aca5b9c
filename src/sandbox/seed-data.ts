import type { Redis } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { failedError, messageOf } from '../errors.js';
import { keySlot, SLOT_COUNT } from '../redis/slots.js';
import type { FormedMaster } from './cluster-create.js';
import { callText, openNode, LOOPBACK } from './node-client.js';
import { seedKeys, SEED_KEY_TYPES, type SeedCommand, type SeedKeyType } from './seed-keys.js';

export interface SeedOptions {
  password: string;
  /** The masters and their slot ranges, as formCluster returned them. */
  masters: FormedMaster[];
  keys: number;
  /** Commands per pipeline; ~1000 keeps round trips few and replies small. */
  batchSize?: number;
  onProgress?: (line: string) => void;
  /** Cluster name for progress lines. */
  label?: string;
  /** Base of the absolute expiry times; the same base gives the same TTLs on two clusters. */
  expireBaseMs?: number;
  tls?: ConnectionOptions;
  /** A node's address (a --hosts sandbox: its host's); loopback by default. */
  addrOf?: (port: number) => string;
}

export interface SeedResult {
  keys: number;
  byType: Record<SeedKeyType, number>;
  withTtl: number;
}

// Wait for replicas to have every write before `up` returns, so a test that
// fails over right away does not lose seeded keys.
const REPLICA_ACK_TIMEOUT_MS = 10_000;
// Every this many keys, let the queued pipelines drain, so memory stays
// bounded however many keys are asked for.
const DRAIN_EVERY_KEYS = 50_000;

/**
 * Write the deterministic key set into a formed cluster. Plain connections to
 * the masters, each key routed by its slot (we assigned the slots ourselves,
 * so no MOVED can occur), pipelined in batches; one sequential chain per
 * master keeps each connection's commands in order while masters work in
 * parallel. Ends by checking that the cluster holds exactly `keys` keys.
 */
export async function seedCluster(o: SeedOptions): Promise<SeedResult> {
  const started = Date.now();
  const batchSize = o.batchSize ?? 1000;
  const owner = new Int16Array(SLOT_COUNT).fill(-1);
  o.masters.forEach((m, i) => {
    for (const [a, b] of m.ranges) owner.fill(i, a, b + 1);
  });
  const byType = Object.fromEntries(SEED_KEY_TYPES.map((t) => [t, 0])) as Record<SeedKeyType, number>;
  let withTtl = 0;

  const conns: Redis[] = [];
  try {
    for (const m of o.masters) {
      conns.push(
        await wrap(m.port, 'connecting', () =>
          openNode(m.port, { password: o.password, tls: o.tls, host: o.addrOf?.(m.port), commandTimeoutMs: 30_000 }),
        ),
      );
    }
    o.onProgress?.(`${o.label ?? 'source'}: seeding ${o.keys} keys over ${o.masters.length} master(s)`);
    const pending: SeedCommand[][] = o.masters.map(() => []);
    const chains: Promise<void>[] = o.masters.map(() => Promise.resolve());
    const flush = (i: number) => {
      const batch = pending[i]!;
      if (batch.length === 0) return;
      pending[i] = [];
      chains[i] = chains[i]!.then(() => sendBatch(conns[i]!, o.masters[i]!.port, batch));
    };

    let n = 0;
    for (const k of seedKeys(o.keys, undefined, o.expireBaseMs)) {
      const i = owner[keySlot(k.key)]!;
      if (i < 0)
        throw failedError('E_SANDBOX_SEED', `slot ${keySlot(k.key)} of ${k.key} has no master in the sandbox layout`);
      pending[i]!.push(...k.commands);
      if (pending[i]!.length >= batchSize) flush(i);
      byType[k.type]++;
      if (k.ttlSeconds !== undefined) withTtl++;
      if (++n % DRAIN_EVERY_KEYS === 0) await Promise.all(chains);
    }
    o.masters.forEach((_, i) => flush(i));
    await Promise.all(chains);

    await Promise.all(
      o.masters.map(async (m, i) => {
        if (m.replicas.length === 0) return;
        const acked = Number(
          await wrap(m.port, 'WAIT', () => conns[i]!.call('WAIT', m.replicas.length, REPLICA_ACK_TIMEOUT_MS)),
        );
        if (acked < m.replicas.length) {
          throw failedError(
            'E_SANDBOX_SEED',
            `only ${acked} of ${m.replicas.length} replica(s) of ${LOOPBACK}:${m.port} acknowledged the seeded data within ${REPLICA_ACK_TIMEOUT_MS / 1000} s`,
            `check the replicas' logs under nodes/<port>/redis.log`,
          );
        }
      }),
    );

    const sizes = await Promise.all(
      o.masters.map((m, i) => wrap(m.port, 'DBSIZE', async () => Number(await callText(conns[i]!, 'DBSIZE')))),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== o.keys) {
      throw failedError(
        'E_SANDBOX_SEED',
        `source holds ${total} keys after seeding, expected exactly ${o.keys} (per master: ${o.masters.map((m, i) => `${m.port}=${sizes[i]}`).join(', ')})`,
        'the sandbox must start empty: run `redis-runbook sandbox down` for it and up again',
      );
    }
    const mix = SEED_KEY_TYPES.map((t) => `${t} ${byType[t]}`).join(', ');
    o.onProgress?.(
      `${o.label ?? 'source'}: seeded ${total} keys (${mix}; ${withTtl} with TTL) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return { keys: total, byType, withTtl };
  } finally {
    for (const c of conns) c.disconnect();
  }
}

async function sendBatch(conn: Redis, port: number, batch: SeedCommand[]): Promise<void> {
  // Through `call`: pipeline([...]) invokes methods by name, and not every command has one.
  const replies = await wrap(port, `pipeline of ${batch.length} commands`, () =>
    conn.pipeline(batch.map((c) => ['call', ...c])).exec(),
  );
  if (!replies) throw failedError('E_SANDBOX_SEED', `${LOOPBACK}:${port}: pipeline was discarded`);
  for (const [idx, [err]] of replies.entries()) {
    if (err) {
      const cmd = batch[idx]!;
      throw failedError(
        'E_SANDBOX_SEED',
        `${LOOPBACK}:${port}: ${cmd[0]} ${cmd[0] === 'XGROUP' || cmd[0] === 'XREADGROUP' ? '' : String(cmd[1])} failed: ${err.message}`.replace(
          /  +/g,
          ' ',
        ),
      );
    }
  }
}

async function wrap<T>(port: number, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error && err.name === 'RunbookError') throw err;
    throw failedError('E_SANDBOX_SEED', `${LOOPBACK}:${port}: ${what} failed: ${messageOf(err)}`);
  }
}
