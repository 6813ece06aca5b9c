import { existsSync, readdirSync } from 'node:fs';
import { usageError } from '../errors.js';
import { formatRanges, toRanges } from '../redis/slots.js';
import { busPort } from './layout.js';
import { readMeta } from './metadata.js';
import { nodeAnswers } from './node-client.js';
import { sandboxPaths, sandboxRoot, validateSandboxName, type SandboxPaths } from './paths.js';
import { canBind } from './ports.js';

/**
 * Every port a sandbox directory refers to: those in sandbox.json plus any
 * node directory on disk. The union matters for a sandbox whose metadata is
 * damaged: its node directories still say which ports to stop.
 */
export function sandboxPorts(paths: SandboxPaths): number[] {
  const ports = new Set<number>();
  const meta = readMeta(paths.meta);
  for (const c of meta?.clusters ?? []) for (const p of c.ports) ports.add(p);
  for (const h of meta?.network?.hosts ?? []) for (const p of h.nodes) ports.add(p);
  if (existsSync(paths.nodesDir)) {
    for (const e of readdirSync(paths.nodesDir, { withFileTypes: true })) {
      if (e.isDirectory() && /^\d{1,5}$/.test(e.name)) ports.add(Number(e.name));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** How many of the sandbox's nodes answer right now. */
export async function runningNodes(
  paths: SandboxPaths,
  ports = sandboxPorts(paths),
  addrOf: (port: number) => string = () => '127.0.0.1',
): Promise<number> {
  const answers = await Promise.all(ports.map((p) => nodeAnswers(p, 1000, undefined, addrOf(p))));
  return answers.filter(Boolean).length;
}

/** Refuse to overwrite a sandbox that still runs; true when a stale (stopped) one is in the way. */
export async function checkNameFree(
  paths: SandboxPaths,
  name: string,
  addrOf?: (port: number) => string,
): Promise<boolean> {
  if (!existsSync(paths.dir)) return false;
  const running = await runningNodes(paths, sandboxPorts(paths), addrOf);
  if (running > 0) {
    throw usageError(
      'E_SANDBOX_EXISTS',
      `sandbox \`${name}\` already exists with ${running} running node(s) (${paths.dir})`,
      `use it as it is, or run \`redis-runbook sandbox down --name ${name}\` first, or pick another --name`,
    );
  }
  return true;
}

/**
 * Check every client and cluster-bus port before anything starts, so a
 * conflict never leaves half a sandbox behind. When another sandbox under the
 * same state dir owns a busy port, the remedy names it.
 */
export async function checkPortsFree(stateDir: string, name: string, ports: number[]): Promise<void> {
  const wanted = ports.flatMap((p) => [p, busPort(p)]);
  const free = await Promise.all(wanted.map((p) => canBind(p)));
  const busy = wanted.filter((_, i) => !free[i]);
  if (busy.length === 0) return;

  const owners = new Set<string>();
  const root = sandboxRoot(stateDir);
  if (existsSync(root)) {
    for (const e of readdirSync(root, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name === name) continue;
      try {
        validateSandboxName(e.name);
      } catch {
        continue;
      }
      const theirs = new Set(sandboxPorts(sandboxPaths(stateDir, e.name)).flatMap((p) => [p, busPort(p)]));
      if (busy.some((p) => theirs.has(p))) owners.add(e.name);
    }
  }
  const shown = busy.length > 8 ? `${busy.slice(0, 8).join(', ')} and ${busy.length - 8} more` : busy.join(', ');
  const needed = formatRanges(toRanges(ports));
  const neededBus = formatRanges(toRanges(ports.map(busPort)));
  const remedy =
    owners.size > 0
      ? `sandbox ${[...owners].map((o) => `\`${o}\``).join(', ')} uses them: run ${[...owners].map((o) => `\`redis-runbook sandbox down --name ${o}\``).join(', ')}, or choose other ports with --base-port`
      : `stop what listens there, or choose other ports with --base-port (this sandbox needs ${needed} and cluster-bus ports ${neededBus}); if it is an old sandbox, \`redis-runbook sandbox down --name NAME\``;
  throw usageError('E_PORT_IN_USE', `port(s) already in use on 127.0.0.1: ${shown}`, remedy);
}
