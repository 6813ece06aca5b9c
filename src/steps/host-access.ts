import { preconditionError, failedError } from '../errors.js';
import { redactCommandLine, type AuditSink } from '../redis/audit.js';
import type { Access } from '../redis/connect.js';
import type { HostConfig, Inventory } from '../inventory/types.js';
import { expandTemplate, hostFor, hostOf, runOnHost, type HostResult } from '../hosts/host.js';

export type ServiceAction = 'start' | 'stop' | 'kill';

/** A node's host as steps see it: its service templates, and commands run on it, journaled. */
export interface HostHandle {
  name: string;
  config: HostConfig;
  /** The filled-in service command for this node, or undefined when the inventory has none. */
  service(action: ServiceAction): string | undefined;
  /** Run a command line on the host; journaled before it is sent, like a Redis write. */
  run(command: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<HostResult>;
}

export function hostAccess(inventory: Inventory, access: Access, audit: AuditSink | undefined, address: string, secrets: () => string[] = () => []): HostHandle | undefined {
  const config = hostFor(inventory, address);
  if (!config) return undefined;
  return {
    name: config.name,
    config,
    service: (action) => {
      const t = config.service?.[action];
      return t ? expandTemplate(t, address) : undefined;
    },
    async run(command, opts = {}) {
      if (access === 'read-only') {
        throw preconditionError('E_READ_ONLY', `refused to run \`${redactCommandLine(command, secrets())}\` on host ${config.name}: this is a read-only (plan) session`, 'use `run` to make changes');
      }
      const started = Date.now();
      // What is journaled and printed is the command with its secrets replaced.
      const shown = redactCommandLine(command, secrets());
      const event = { at: started, target: `host ${config.name}`, command: 'HOST', args: [shown], durationMs: 0, ok: false };
      const id = audit?.intent(event);
      let result: HostResult | undefined;
      let error: string | undefined;
      try {
        result = await runOnHost(config, hostOf(address), command, { timeoutMs: opts.timeoutMs ?? 60_000, signal: opts.signal });
        if (result.exitCode !== 0) error = redactCommandLine(`exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}: ${(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ')}`, secrets());
        return result;
      } catch (err) {
        error = redactCommandLine((err as Error).message, secrets());
        throw failedError('E_HOST_COMMAND', `cannot run \`${shown}\` on host ${config.name}: ${error}`, config.transport === 'ssh' ? 'check that `ssh` reaches the host in batch mode (key, known_hosts, user)' : 'check the command in the inventory');
      } finally {
        const outcome = { ok: error === undefined, durationMs: Date.now() - started, error };
        if (id !== undefined) audit?.complete(id, outcome);
        else audit?.record({ ...event, ...outcome });
      }
    },
  };
}
