import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { preconditionError, messageOf } from '../errors.js';
import type { ClusterConfig } from '../inventory/types.js';
import { resolveSecret, describeSecret } from '../inventory/secret.js';
import { redactArgs, scrub, type AuditSink } from './audit.js';
import { tlsSocketOptions } from './socket.js';
import { hostOf, portOf } from '../address.js';

export type Access = 'read-only' | 'read-write';

// Commands a read-only connection may send. Plan mode enforces read-only here,
// at the one place effects go out, not in each step (the dry-run that executes
// is a classic bug: Argo 12944, Ansible modules that ignore check mode).
const READ_COMMANDS = new Set([
  'PING',
  'INFO',
  'ROLE',
  'DBSIZE',
  'LASTSAVE',
  'TIME',
  'SCAN',
  'TYPE',
  'PTTL',
  'TTL',
  'EXISTS',
  'GET',
  'DUMP',
  'STRLEN',
  'LLEN',
  'HLEN',
  'SCARD',
  'ZCARD',
  'XLEN',
  'MEMORY',
  'LRANGE',
  'GETRANGE',
  'HSCAN',
  // Hash fields' own expiry times (Redis 7.4+); only sent to servers that have the command.
  'HPEXPIRETIME',
  'SSCAN',
  'ZSCAN',
  'HMGET',
  'HGETALL',
  'SMEMBERS',
  'SMISMEMBER',
  'ZRANGE',
  'ZMSCORE',
  'XRANGE',
  'XINFO',
  'READONLY',
  // Read-only scripts: the server itself refuses any write they attempt (Redis 7.0+).
  'EVALSHA_RO',
  'EVAL_RO',
]);
const READ_SUBCOMMANDS: Record<string, Set<string>> = {
  CLUSTER: new Set(['NODES', 'INFO', 'MYID', 'SHARDS', 'SLOTS', 'COUNTKEYSINSLOT', 'GETKEYSINSLOT', 'KEYSLOT']),
  CONFIG: new Set(['GET']),
  CLIENT: new Set(['LIST', 'INFO', 'GETNAME']),
  // Loading a script changes the script cache only, never data.
  SCRIPT: new Set(['LOAD']),
};

export function isReadOnly(command: string, args: readonly unknown[]): boolean {
  const c = command.toUpperCase();
  if (READ_COMMANDS.has(c)) return true;
  const sub = READ_SUBCOMMANDS[c];
  return !!sub && sub.has(String(args[0] ?? '').toUpperCase());
}

export interface PoolOptions {
  access: Access;
  audit?: AuditSink;
  /** Which step the commands belong to, for the audit log. */
  stepId?: () => string | undefined;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

/**
 * Connections to the nodes of one cluster, one per address (plus the extra lanes of `lane`), created on first
 * use. Every command goes through `NodeClient.call`, which enforces the access
 * mode, audits the command with its secrets redacted, and turns connection and
 * auth failures into errors that name the node and the fix.
 */
export class ClusterPool {
  private readonly clients = new Map<string, NodeClient>();
  private password: string | undefined;
  /** The TLS socket options, built (files read) once per pool. */
  private tls: ConnectionOptions | undefined;

  constructor(
    readonly config: ClusterConfig,
    readonly options: PoolOptions,
  ) {}

  /** The secret values in use, so messages can be scrubbed of them. */
  secrets(): string[] {
    return this.password ? [this.password] : [];
  }

  node(address: string): NodeClient {
    let c = this.clients.get(address);
    if (!c) {
      if (this.config.auth?.password && this.password === undefined) {
        this.password = resolveSecret(this.config.auth.password, `clusters.${this.config.name}.auth.password`);
      }
      c = new NodeClient(address, this, this.redisOptions(address));
      this.clients.set(address, c);
    }
    return c;
  }

  /**
   * Connection `lane` to a node: lane 0 is `node(address)`, each other lane a connection of its
   * own, opened on first use and closed with the pool. For commands a server holds one at a time
   * per connection (Valkey 8's CLUSTER SETSLOT waits for the replicas' acknowledgement): spread
   * over lanes, their waits overlap. See src/redis/slot-move.ts.
   */
  lane(address: string, lane: number): NodeClient {
    if (lane === 0) return this.node(address);
    const key = `${address}#${lane}`;
    let c = this.clients.get(key);
    if (!c) {
      this.node(address);
      c = new NodeClient(address, this, this.redisOptions(address));
      this.clients.set(key, c);
    }
    return c;
  }

  private redisOptions(address: string): RedisOptions {
    const host = hostOf(address);
    const port = Number(portOf(address));
    const tls = this.config.tls;
    return {
      host,
      port,
      username: this.config.auth?.username,
      password: this.password,
      lazyConnect: true,
      connectTimeout: this.options.connectTimeoutMs ?? 3000,
      commandTimeout: this.options.commandTimeoutMs ?? 30000,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      enableOfflineQueue: true,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      tls: tls ? this.tlsOptions() : undefined,
    };
  }

  /** TLS socket options for a connection of this cluster opened elsewhere (a subscriber, a raw socket). */
  tlsOptions(): ConnectionOptions | undefined {
    if (this.config.tls && !this.tls) this.tls = tlsSocketOptions(this.config.tls, `clusters.${this.config.name}.tls`);
    return this.tls;
  }

  /** One audit event summing up bulk reads (pipelines are not audited one by one). */
  recordSummary(target: string, command: string, args: string[]): void {
    this.options.audit?.record({
      at: Date.now(),
      target,
      command,
      args,
      durationMs: 0,
      ok: true,
      stepId: this.options.stepId?.(),
    });
  }

  /** Credentials one node hands another (MIGRATE ... AUTH2): resolved here, redacted in the journal. */
  credentials(): { username?: string; password?: string } {
    if (this.config.auth?.password && this.password === undefined) {
      this.password = resolveSecret(this.config.auth.password, `clusters.${this.config.name}.auth.password`);
    }
    return { username: this.config.auth?.username, password: this.password };
  }

  /** Describe where the password comes from, for error remedies. */
  authSource(): string {
    return `clusters.${this.config.name}.auth.password (${describeSecret(this.config.auth?.password)})`;
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.disconnect();
    this.clients.clear();
  }
}

/**
 * A TLS-only node drops a plain connection without a word (and a plain node a
 * TLS one): messages about unreachable nodes name the inventory's `tls:` as a
 * likely cause.
 */
export function tlsHint(config: ClusterConfig): string {
  return config.tls
    ? `; clusters.${config.name}.tls is set: check that the nodes serve TLS on these ports and that their certificates match the inventory's ca/servername`
    : `; if the nodes accept only TLS, add \`tls:\` to clusters.${config.name} in the inventory`;
}

export class NodeClient {
  private redis: Redis | undefined;
  private connecting: Promise<Redis> | undefined;

  constructor(
    readonly address: string,
    private readonly pool: ClusterPool,
    private readonly opts: RedisOptions,
  ) {}

  private async connection(): Promise<Redis> {
    if (this.redis && this.redis.status === 'ready') return this.redis;
    if (this.redis && this.redis.status !== 'connecting' && this.redis.status !== 'connect') {
      this.redis.disconnect();
      this.redis = undefined;
      this.connecting = undefined;
    }
    if (!this.connecting) {
      const r = new Redis(this.opts);
      // The 'error' event carries the cause (ECONNREFUSED, WRONGPASS); connect() itself
      // often only rejects with "Connection is closed.". Keep the cause for the message.
      let cause: unknown;
      r.on('error', (err) => {
        cause ??= err;
      });
      this.redis = r;
      this.connecting = r.connect().then(
        () => r,
        async (err) => {
          // The 'error' event with the cause (WRONGPASS) can trail the rejection by a tick.
          if (cause === undefined) await new Promise((res) => setTimeout(res, 20));
          this.connecting = undefined;
          this.redis = undefined;
          r.disconnect();
          throw this.translate(cause ?? err);
        },
      );
    }
    return this.connecting;
  }

  /** Send one command. Read-only pools refuse anything that could change state. */
  async call(command: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
    const { access, audit, stepId } = this.pool.options;
    if (access === 'read-only' && !isReadOnly(command, args)) {
      throw preconditionError(
        'E_READ_ONLY',
        `refused to send ${command} ${String(args[0] ?? '')} to ${this.address}: this is a read-only (plan) session`,
        'use `run` to make changes',
      );
    }
    const started = Date.now();
    let ok = false;
    let error: string | undefined;
    const event = {
      at: started,
      target: this.address,
      command: command.toUpperCase(),
      args: redactArgs(command, args),
      durationMs: 0,
      ok: false,
      stepId: stepId?.(),
    };
    const intentId = isReadOnly(command, args) ? undefined : audit?.intent(event);
    try {
      const redis = await this.connection();
      const reply = await redis.call(command, ...args);
      ok = true;
      return reply;
    } catch (err) {
      const translated = err instanceof Error && err.name === 'RunbookError' ? err : this.translate(err);
      error = translated.message;
      throw translated;
    } finally {
      const outcome = {
        ok,
        durationMs: Date.now() - started,
        error: error === undefined ? undefined : scrub(error, this.pool.secrets()),
      };
      if (intentId !== undefined) audit?.complete(intentId, outcome);
      else audit?.record({ ...event, ...outcome });
    }
  }

  /**
   * Send many commands in one round trip; replies stay Buffers (keys and
   * values are binary-safe) and each reply carries its own error. Bulk reads
   * (a data comparison sends millions) are not audited one by one: the caller
   * records a summary instead.
   */
  async pipeline(
    commands: ReadonlyArray<readonly [string, ...(string | number | Buffer)[]]>,
  ): Promise<Array<[Error | null, unknown]>> {
    if (this.pool.options.access === 'read-only') {
      const bad = commands.find(([c, ...a]) => !isReadOnly(c, a));
      if (bad)
        throw preconditionError(
          'E_READ_ONLY',
          `refused to send ${bad[0]} to ${this.address}: this is a read-only session`,
          'use `run` to make changes',
        );
    }
    if (commands.length === 0) return [];
    try {
      const redis = await this.connection();
      const p = redis.pipeline();
      for (const [c, ...a] of commands) p.callBuffer(c, ...a);
      const res = await p.exec();
      return (res ?? []) as Array<[Error | null, unknown]>;
    } catch (err) {
      throw err instanceof Error && err.name === 'RunbookError' ? err : this.translate(err);
    }
  }

  /** Convenience: a command whose reply is a bulk string. */
  async text(command: string, ...args: (string | number)[]): Promise<string> {
    const r = await this.call(command, ...args);
    return Buffer.isBuffer(r) ? r.toString() : String(r);
  }

  private translate(err: unknown): Error {
    const msg = scrub(messageOf(err), this.pool.secrets());
    if (/WRONGPASS|invalid password|NOAUTH|invalid username-password/i.test(msg)) {
      return preconditionError(
        'E_AUTH',
        `authentication to ${this.address} failed (${msg.split(' ')[0]})`,
        `check ${this.pool.authSource()}`,
      );
    }
    if (
      /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|connect|Connection is closed|ECONNRESET|certificate|SSL|TLS|self.signed|handshake/i.test(
        msg,
      ) &&
      !/^ERR|^MOVED|^ASK/.test(msg)
    ) {
      return preconditionError(
        'E_NODE_UNREACHABLE',
        `${this.address} is unreachable (${msg})`,
        `check that the node is running and the address in the inventory is right${tlsHint(this.pool.config)}`,
      );
    }
    const e = new Error(msg);
    return e;
  }

  disconnect(): void {
    this.redis?.disconnect();
    this.redis = undefined;
    this.connecting = undefined;
  }
}
