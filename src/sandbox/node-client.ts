import { createConnection } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';

export const LOOPBACK = '127.0.0.1';

export interface NodeClientOptions {
  password?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** A --tls sandbox: its nodes speak TLS only. */
  tls?: ConnectionOptions;
  /** The node's address: loopback, or its host's address in a --hosts sandbox. */
  host?: string;
}

/**
 * One plain (non-cluster) connection to one sandbox node, tuned to fail fast:
 * no reconnects, no retries and no offline queue, so a dead node is an error
 * within connectTimeoutMs instead of a hang; every command is bounded by
 * commandTimeoutMs. Callers must disconnect() (see withNode) so the process can exit.
 */
export async function openNode(port: number, o: NodeClientOptions = {}): Promise<Redis> {
  const redis = new Redis({
    host: o.host ?? LOOPBACK,
    port,
    password: o.password,
    tls: o.tls,
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
 * Does a Redis server answer PING on the port? Spoken as raw RESP without
 * AUTH, on purpose: a node with requirepass answers `-NOAUTH`, which proves
 * it runs just as well as `+PONG`, and `status` still counts a node whose
 * password file was lost or changed (ioredis would drop such a connection).
 */
export function nodeAnswers(
  port: number,
  timeoutMs = 1000,
  tls?: ConnectionOptions,
  host = LOOPBACK,
): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = tls ? tlsConnect({ host, port, ...tls }) : createConnection({ host, port });
    let reply = '';
    const done = (answered: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(answered);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply[0] === '+' || reply[0] === '-');
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/** Commands go through `call` because several (ADDSLOTSRANGE, SET-CONFIG-EPOCH) have no typed wrapper. */
export async function callText(r: Redis, command: string, ...args: (string | number)[]): Promise<string> {
  const reply = await r.call(command, ...args);
  return typeof reply === 'string' ? reply : Buffer.isBuffer(reply) ? reply.toString() : String(reply);
}
