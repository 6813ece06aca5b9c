import { Redis } from 'ioredis';

export const LOOPBACK = '127.0.0.1';

export interface NodeClientOptions {
  password?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

/**
 * One plain (non-cluster) connection to one sandbox node, tuned to fail fast:
 * no reconnects, no retries and no offline queue, so a dead node is an error
 * within connectTimeoutMs instead of a hang; every command is bounded by
 * commandTimeoutMs. Callers must disconnect() (see withNode) so the process can exit.
 */
export async function openNode(port: number, o: NodeClientOptions = {}): Promise<Redis> {
  const redis = new Redis({
    host: LOOPBACK,
    port,
    password: o.password,
    lazyConnect: true,
    connectTimeout: o.connectTimeoutMs ?? 2000,
    commandTimeout: o.commandTimeoutMs ?? 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: () => false,
    enableOfflineQueue: false,
    // The ready check would poll INFO while a node loads; sandbox nodes start empty.
    enableReadyCheck: false,
  });
  // Failures surface as rejected commands; without a listener ioredis would
  // also print "Unhandled error event" to stderr.
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}

export async function withNode<T>(port: number, o: NodeClientOptions, fn: (r: Redis) => Promise<T>): Promise<T> {
  const redis = await openNode(port, o);
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/**
 * Does a Redis server answer on the port? Any reply counts, even an auth
 * error: `status` asks whether the node runs, not whether we may use it.
 */
export async function nodeAnswers(port: number, password: string | undefined): Promise<boolean> {
  try {
    return await withNode(port, { password, connectTimeoutMs: 1000, commandTimeoutMs: 1000 }, async (r) => {
      try {
        await r.ping();
        return true;
      } catch (err) {
        return isReplyError(err);
      }
    });
  } catch (err) {
    return isReplyError(err);
  }
}

/** A reply from the server (as opposed to a connection failure or timeout). */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/** Commands go through `call` because several (ADDSLOTSRANGE, SET-CONFIG-EPOCH) have no typed wrapper. */
export async function callText(r: Redis, command: string, ...args: (string | number)[]): Promise<string> {
  const reply = await r.call(command, ...args);
  return typeof reply === 'string' ? reply : Buffer.isBuffer(reply) ? reply.toString() : String(reply);
}
