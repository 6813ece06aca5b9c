import { preconditionError, failedError } from '../errors.js';
import { redactCommandLine, type AuditSink } from '../redis/audit.js';
import type { Access } from '../redis/connect.js';
import type { Inventory } from '../inventory/types.js';
import { expandTemplate, hostFor, hostOf, runOnHost, validNodeAddress, type HostResult } from '../hosts/host.js';
import { copy, copyCommandLines, digest, partialDir, type Location } from '../hosts/copy.js';
import type { FileOps, HostHandle } from '../hosts/handles.js';

export type { FileOps, HostHandle, ServiceAction } from '../hosts/handles.js';

export function hostAccess(
  inventory: Inventory,
  access: Access,
  audit: AuditSink | undefined,
  address: string,
  secrets: () => string[] = () => [],
): HostHandle | undefined {
  const config = hostFor(inventory, address);
  if (!config) return undefined;
  return {
    name: config.name,
    config,
    service: (action) => {
      const t = config.service?.[action];
      if (!t) return undefined;
      // The address comes from CLUSTER NODES; only a plain HOST:PORT goes into a command line.
      if (!validNodeAddress(address))
        throw preconditionError(
          'E_BAD_ADDRESS',
          `the node address \`${address}\` is not a plain HOST:PORT, so it is not put into hosts.${config.name}.service.${action}`,
          "check the node's cluster-announce-ip / hostname settings",
        );
      return expandTemplate(t, address);
    },
    shown: (command) => redactCommandLine(command, secrets()),
    read: (command, opts = {}) => runOnHost(config, hostOf(address), command, { timeoutMs: opts.timeoutMs ?? 30_000 }),
    async run(command, opts = {}) {
      if (access === 'read-only') {
        throw preconditionError(
          'E_READ_ONLY',
          `refused to run \`${redactCommandLine(command, secrets())}\` on host ${config.name}: this is a read-only (plan) session`,
          'use `run` to make changes',
        );
      }
      const started = Date.now();
      // What is journaled and printed is the command with its secrets replaced.
      const shown = redactCommandLine(command, secrets());
      const event = {
        at: started,
        target: `host ${config.name}`,
        command: 'HOST',
        args: [shown],
        durationMs: 0,
        ok: false,
      };
      const id = audit?.intent(event);
      let result: HostResult | undefined;
      let error: string | undefined;
      try {
        result = await runOnHost(config, hostOf(address), command, {
          timeoutMs: opts.timeoutMs ?? 60_000,
          signal: opts.signal,
        });
        if (result.exitCode !== 0)
          error = redactCommandLine(
            `exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}: ${(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ')}`,
            secrets(),
          );
        return result;
      } catch (err) {
        error = redactCommandLine((err as Error).message, secrets());
        throw failedError(
          'E_HOST_COMMAND',
          `cannot run \`${shown}\` on host ${config.name}: ${error}`,
          config.transport === 'ssh'
            ? 'check that `ssh` reaches the host in batch mode (key, known_hosts, user)'
            : 'check the command in the inventory',
        );
      } finally {
        const outcome = { ok: error === undefined, durationMs: Date.now() - started, error };
        if (id !== undefined) audit?.complete(id, outcome);
        else audit?.record({ ...event, ...outcome });
      }
    },
  };
}

export function fileAccess(inventory: Inventory, access: Access, audit: AuditSink | undefined): FileOps {
  const locate = (address: string, path: string): Location => {
    const host = hostFor(inventory, address);
    if (!host)
      throw preconditionError(
        'E_NO_HOST',
        `no inventory host lists ${hostOf(address)} (node ${address})`,
        'add the host under hosts: with its transport (local or ssh)',
      );
    return { host, target: hostOf(address), path };
  };
  return {
    digest: (address, path, kind, signal) => digest(locate(address, path), kind, signal),
    async copy(from, to, kind, signal, opts = {}) {
      const src = locate(from.address, from.path);
      const dst = locate(to.address, to.path);
      if (access === 'read-only')
        throw preconditionError(
          'E_READ_ONLY',
          `refused to copy to host ${dst.host.name}: this is a read-only (plan) session`,
          'use `run` to make changes',
        );
      const started = Date.now();
      // The journal holds the exact rsync command lines, as the plan showed them.
      const event = {
        at: started,
        target: `host ${dst.host.name}`,
        command: 'COPY',
        args: [
          `${src.host.name}:${src.path}`,
          `${dst.host.name}:${dst.path}`,
          kind,
          ...copyCommandLines(src, dst, kind),
        ],
        durationMs: 0,
        ok: false,
      };
      const id = audit?.intent(event);
      let error: string | undefined;
      // A cut-off transfer leaves a partial file (a piece of the RDB) beside the destination:
      // recorded until the copy completes, so `abort` removes it on the host.
      const partial = partialDir(dst.path, kind);
      const pid = `partial:${to.address}:${partial}`;
      opts.cleanup?.add(pid, { kind: 'host-dir', address: to.address, path: partial, what: 'rsync partial directory' });
      try {
        await copy(src, dst, kind, signal, opts);
        opts.cleanup?.done(pid);
      } catch (err) {
        error = (err as Error).message;
        throw failedError(
          'E_COPY',
          `copy of ${src.host.name}:${src.path} to ${dst.host.name}:${dst.path} failed: ${error}`,
          'check disk space and ssh access on both hosts, then retry the step (the copy is made again)',
        );
      } finally {
        const outcome = { ok: error === undefined, durationMs: Date.now() - started, error };
        if (id !== undefined) audit?.complete(id, outcome);
        else audit?.record({ ...event, ...outcome });
      }
    },
  };
}
