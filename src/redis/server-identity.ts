/**
 * Which server a node runs, from its INFO server. Valkey reports a fixed
 * `redis_version:7.2.4` for client compatibility and its own version in
 * `valkey_version`: reading only `redis_version` would call Valkey 8.0
 * "Redis 7.2". Pure.
 */
export interface ServerIdentity {
  flavor: 'redis' | 'valkey';
  /** The server's own version (Valkey's for Valkey). */
  version: string;
  /** Highest RDB format version it writes (and the highest it can load). */
  rdbVersion: number;
}

export function serverIdentity(info: Record<string, string>): ServerIdentity {
  if (info.server_name === 'valkey' || info.valkey_version) {
    const version = info.valkey_version ?? info.redis_version ?? '0';
    return { flavor: 'valkey', version, rdbVersion: rdbVersionOf('valkey', version) };
  }
  const version = info.redis_version ?? '0';
  return { flavor: 'redis', version, rdbVersion: rdbVersionOf('redis', version) };
}

/** "valkey 8.0.1", "redis 7.0.15": how a node's server is shown. */
export function describeServer(s: Pick<ServerIdentity, 'flavor' | 'version'>): string {
  return `${s.flavor} ${s.version}`;
}

const majorMinor = (v: string): [number, number] => {
  const [a, b] = v.split('.').map(Number);
  return [a ?? 0, b ?? 0];
};

/**
 * The RDB format each release writes (rdb.h RDB_VERSION): Redis 6.0-6.2 write 9,
 * 7.0 writes 10, 7.2 writes 11, 7.4 writes 12; Valkey 7.2 and 8.0 write 11.
 * A server loads its own version and older ones, never a newer one.
 */
export function rdbVersionOf(flavor: 'redis' | 'valkey', version: string): number {
  const [major, min] = majorMinor(version);
  if (flavor === 'valkey') return major >= 7 ? 11 : 9;
  if (major > 7 || (major === 7 && min >= 4)) return 12;
  if (major === 7 && min >= 2) return 11;
  if (major === 7) return 10;
  if (major === 6) return 9;
  return major >= 5 ? 9 : 8;
}

/**
 * Whether a server can hold hash fields with their own TTL (the HEXPIRE family, HPEXPIRETIME to
 * read them): Redis 7.4+, the release that writes RDB 12. Valkey 8.0 and Redis 7.2 have no such
 * commands; a server without them is never sent one.
 */
export function holdsFieldTtls(s: Pick<ServerIdentity, 'rdbVersion'>): boolean {
  return s.rdbVersion >= 12;
}

/**
 * Whether a server prints a double (a zset score) in its shortest round-trip form ("0.1"):
 * Redis 7.2+ and Valkey, the releases that write RDB 11+. Redis 7.0 and before print
 * `%.17g` ("0.10000000000000001"). The same score reads alike on two servers of the same kind.
 */
export function printsShortestScores(s: Pick<ServerIdentity, 'rdbVersion'>): boolean {
  return s.rdbVersion >= 11;
}
