import { join, resolve } from 'node:path';
import { usageError } from '../errors.js';

/**
 * Where a sandbox keeps its files. Everything a sandbox owns lives under one
 * directory, so `down` can remove it in one go and `status` can find every
 * sandbox by listing one parent directory.
 *
 *   ${stateDir}/sandbox/${name}/
 *     sandbox.json            metadata (written first: `down` needs it to clean a half-made sandbox)
 *     password                random hex, mode 0600; the only copy of the secret besides redis.conf
 *     inventory.yaml          refers to `password` by file, never by value
 *     nodes/<port>/           one directory per node: redis.conf nodes.conf redis.log redis.pid
 */
export interface SandboxPaths {
  dir: string;
  meta: string;
  password: string;
  inventory: string;
  nodesDir: string;
}

export interface NodePaths {
  dir: string;
  conf: string;
  nodesConf: string;
  log: string;
  pid: string;
}

// The name becomes a directory name and appears in shell commands in the
// inventory, so keep it to characters that need no quoting anywhere.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function validateSandboxName(name: string): void {
  if (!NAME.test(name) || name.includes('..')) {
    throw usageError(
      'E_SANDBOX_OPTIONS',
      `sandbox name \`${name.slice(0, 80)}\` is not usable`,
      'use letters, digits, `.`, `_` or `-` (up to 64), starting with a letter or digit, e.g. --name demo',
    );
  }
}

export function sandboxRoot(stateDir: string): string {
  return join(resolve(stateDir), 'sandbox');
}

export function sandboxPaths(stateDir: string, name: string): SandboxPaths {
  validateSandboxName(name);
  const dir = join(sandboxRoot(stateDir), name);
  return {
    dir,
    meta: join(dir, 'sandbox.json'),
    password: join(dir, 'password'),
    inventory: join(dir, 'inventory.yaml'),
    nodesDir: join(dir, 'nodes'),
  };
}

export function nodePaths(sandboxDir: string, port: number): NodePaths {
  const dir = join(sandboxDir, 'nodes', String(port));
  return {
    dir,
    conf: join(dir, 'redis.conf'),
    nodesConf: join(dir, 'nodes.conf'),
    log: join(dir, 'redis.log'),
    pid: join(dir, 'redis.pid'),
  };
}
