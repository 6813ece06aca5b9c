import type { HostConfig } from '../inventory/types.js';
import type { HostResult } from './host.js';
import type { CopyOptions, Digest } from './copy.js';

export type ServiceAction = 'start' | 'stop' | 'kill';

/** A node's host as steps see it: its service templates, and commands run on it, journaled. */
export interface HostHandle {
  name: string;
  config: HostConfig;
  /** The filled-in service command for this node, or undefined when the inventory has none. */
  service(action: ServiceAction): string | undefined;
  /** A command line as the journal and the plan show it: the inventory's passwords redacted. */
  shown(command: string): string;
  /** Run a command line on the host; journaled before it is sent, like a Redis write. */
  run(command: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<HostResult>;
  /** Run a command that only reads (df, /proc/meminfo): not journaled, allowed in a plan. The caller vouches it changes nothing. */
  read(command: string, opts?: { timeoutMs?: number }): Promise<HostResult>;
}

/** Files on the nodes' hosts, as steps see them: digests (reads) and copies (journaled writes). */
export interface FileOps {
  digest(address: string, path: string, kind: 'file' | 'dir', signal?: AbortSignal): Promise<Digest | undefined>;
  copy(
    from: { address: string; path: string },
    to: { address: string; path: string },
    kind: 'file' | 'dir',
    signal?: AbortSignal,
    opts?: CopyOptions,
  ): Promise<void>;
}
