import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { readFileSync } from 'node:fs';
import { messageOf, usageError } from '../errors.js';
import type { TlsConfig } from '../inventory/types.js';

/**
 * Bounds on every network wait, so nothing the tool waits on can wait
 * forever (a SYN that is never answered, a peer that goes silent). Each is
 * the default of an option of the connection that uses it.
 */
export const NET_LIMITS = {
  /** TCP connect plus the TLS handshake. */
  connectTimeoutMs: 10_000,
  /**
   * Silence from a replication source before the link is declared dead: the
   * master sends something at least every repl-ping-replica-period (10 s),
   * newlines while it prepares an RDB.
   */
  replicationIdleMs: 60_000,
  /** A pipelined batch without any reply from the target. */
  pipeReplyTimeoutMs: 120_000,
  /** A pub/sub subscriber whose PING goes unanswered this long is dropped (its shard is copied again). */
  subscriberIdleMs: 30_000,
};

/**
 * The TLS socket options of a cluster's `tls:` settings, for every
 * connection the tool opens (ioredis and raw sockets alike): the CA, the
 * client certificate and key, the server name and whether the server's
 * certificate is verified. A file that cannot be read is refused before
 * anything connects.
 */
export function tlsSocketOptions(tls: TlsConfig, where = 'tls'): ConnectionOptions {
  const file = (path: string | undefined, key: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      // The inventory's fault (exit 2, naming the key), not an unreachable cluster.
      throw usageError(
        'E_TLS_FILE',
        `${where}.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`,
        `fix the path of ${where}.${key} in the inventory, or make the file readable`,
      );
    }
  };
  return {
    ca: file(tls.ca, 'ca'),
    cert: file(tls.cert, 'cert'),
    key: file(tls.key, 'key'),
    servername: tls.servername,
    rejectUnauthorized: tls.verify,
  };
}

export interface OpenSocketOptions {
  host: string;
  port: number;
  /** The cluster's TLS settings: a TLS connection when set, plain TCP otherwise. */
  tls?: TlsConfig;
  /** Where the TLS settings come from, for messages (e.g. `clusters.source.tls`). */
  tlsWhere?: string;
  /** Bound on the TCP connect and the TLS handshake together. */
  connectTimeoutMs?: number;
  /** Aborting destroys the socket being opened and rejects. */
  signal?: AbortSignal;
}

/**
 * The one way a raw socket to a Redis node is opened: TLS exactly when the
 * inventory says so, resolved once connected (and, for TLS, once the
 * handshake is done), rejected when the connect or the handshake takes
 * longer than its bound or is aborted. Its timer never outlives it.
 */
export function openSocket(o: OpenSocketOptions): Promise<Socket> {
  const timeoutMs = o.connectTimeoutMs ?? NET_LIMITS.connectTimeoutMs;
  const where = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  return new Promise<Socket>((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new Error(`connecting to ${where}: stopped`));
      return;
    }
    let socket: Socket;
    try {
      socket = o.tls
        ? tlsConnect({ host: o.host, port: o.port, ...tlsSocketOptions(o.tls, o.tlsWhere) })
        : netConnect({ host: o.host, port: o.port });
    } catch (err) {
      reject(err as Error);
      return;
    }
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onError = (err: Error) => finish(new Error(`connecting to ${where}${o.tls ? ' (TLS)' : ''}: ${err.message}`));
    const onClose = () => finish(new Error(`connecting to ${where}${o.tls ? ' (TLS)' : ''}: the connection closed`));
    const onAbort = () => finish(new Error(`connecting to ${where}: stopped`));
    const timer = setTimeout(
      () => finish(new Error(`connecting to ${where}${o.tls ? ' (TLS)' : ''}: no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    socket.once(o.tls ? 'secureConnect' : 'connect', () => finish());
    socket.on('error', onError);
    socket.on('close', onClose);
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
