import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { preconditionError, usageError } from '../errors.js';

/**
 * Which server binary a sandbox cluster runs. `--source-server` and
 * `--target-server` take a build name, looked up in the directory named by
 * REDIS_RUNBOOK_BUILDS (one `<name>/bin/` per build, as `make install
 * PREFIX=<dir>/<name>` lays it out), or a path to a server binary or to its
 * `bin/` directory. Without either, `redis-server` from PATH.
 */
export interface SandboxServer {
  /** What was asked for: a build name, a path, or "redis-server" (PATH). */
  spec: string;
  /** The binary to run: an absolute path, or "redis-server" to take it from PATH. */
  binary: string;
  flavor: 'redis' | 'valkey';
  /** X.Y.Z as the binary reports it. */
  version: string;
}

export const BUILDS_ENV = 'REDIS_RUNBOOK_BUILDS';

/** The builds named in REDIS_RUNBOOK_BUILDS, by name (empty when it is unset or not a directory). */
export function availableBuilds(dir = process.env[BUILDS_ENV]): string[] {
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && serverIn(join(dir, e.name, 'bin')) !== undefined)
    .map((e) => e.name)
    .sort();
}

/**
 * The server binary in a bin/ directory. Valkey's tree has a `redis-server`
 * link to `valkey-server`; it is not always a usable link once copied, so
 * the real name wins.
 */
function serverIn(binDir: string): string | undefined {
  for (const name of ['valkey-server', 'redis-server']) {
    const p = join(binDir, name);
    try {
      const st = statSync(p);
      if (st.isFile() && (st.mode & 0o111) !== 0) return p;
    } catch {
      /* not there */
    }
  }
  return undefined;
}

function binaryFor(spec: string): string {
  if (spec.includes('/')) {
    const p = resolve(spec);
    if (!existsSync(p))
      throw usageError('E_SERVER_UNKNOWN', `no server at ${p}`, 'pass a build name, or the path of a redis-server');
    const found = statSync(p).isDirectory() ? (serverIn(p) ?? serverIn(join(p, 'bin'))) : p;
    if (!found)
      throw usageError(
        'E_SERVER_UNKNOWN',
        `${p} holds no redis-server or valkey-server`,
        'pass the path of the server binary, or of the bin/ directory that holds it',
      );
    return found;
  }
  const dir = process.env[BUILDS_ENV];
  const found = dir ? serverIn(join(dir, spec, 'bin')) : undefined;
  if (!found) {
    const known = availableBuilds(dir);
    throw usageError(
      'E_SERVER_UNKNOWN',
      dir
        ? `no build named \`${spec}\` in ${dir} (${BUILDS_ENV})`
        : `no build named \`${spec}\`: ${BUILDS_ENV} is not set`,
      known.length
        ? `use one of: ${known.join(', ')}, or a path to a server binary`
        : `set ${BUILDS_ENV} to a directory of builds (<name>/bin/redis-server), or pass a path to a server binary`,
    );
  }
  return found;
}

/** `Redis server v=7.2.6 sha=...` or `Valkey server v=8.0.1 ...` → flavor and version. Pure. */
export function parseServerVersion(text: string): { flavor: 'redis' | 'valkey'; version: string } | undefined {
  const m = /^(Redis|Valkey) server v=(\d+\.\d+\.\d+)/m.exec(text);
  return m ? { flavor: m[1] === 'Valkey' ? 'valkey' : 'redis', version: m[2]! } : undefined;
}

export async function resolveServer(spec?: string): Promise<SandboxServer> {
  const binary = spec ? binaryFor(spec) : 'redis-server';
  const r = await execa(binary, ['--version'], { reject: false, timeout: 10_000, stdin: 'ignore' });
  if ((r as { code?: string }).code === 'ENOENT')
    throw preconditionError(
      'E_REDIS_SERVER_MISSING',
      `${binary} is not ${spec ? 'there' : 'on PATH'}`,
      spec ? 'pass another build or path' : 'install Redis 7 (e.g. `apt-get install redis-server`) and re-run',
    );
  const v = parseServerVersion(String(r.stdout ?? ''));
  if (r.failed || !v)
    throw preconditionError(
      'E_SERVER_UNKNOWN',
      `${binary} --version did not say which server it is: ${String(r.stderr || r.stdout || r.exitCode).slice(0, 200)}`,
      'pass the path of a redis-server or valkey-server binary that runs on this machine',
    );
  return { spec: spec ?? 'redis-server', binary, ...v };
}

/** Redis before 7.0 refuses the 7.0 directives the sandbox's redis.conf uses (enable-*-command). */
export function hasEnableDirectives(s: Pick<SandboxServer, 'flavor' | 'version'>): boolean {
  return s.flavor === 'valkey' || Number(s.version.split('.')[0]) >= 7;
}
