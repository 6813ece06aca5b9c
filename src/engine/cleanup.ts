import { rmSync } from 'node:fs';
import { basename, isAbsolute } from 'node:path';
import { messageOf } from '../errors.js';
import { shellQuote } from '../hosts/copy.js';
import type { RunState, StepEnv } from './step-contract.js';
import type { CleanupItem, CleanupSink } from '../leftovers.js';

/**
 * What a run created that must not outlive it, persisted in the run's state
 * (SQLite, run_state) the moment it is created, so that a run killed at any
 * point still says what to undo. Never a secret: paths and setting values.
 *
 * - `local-dir`: a private directory on this machine (RedisShake's config,
 *   which holds passwords; a copy's staging area, which holds a full RDB);
 * - `host-dir`: rsync's partial directory beside a copy's destination on a
 *   node's host (a cut-off transfer of a full RDB);
 * - `config`: a setting the run changed on a node, with the value to put back
 *   (notify-keyspace-events of a scan sync).
 *
 * The run's end, `abort`, and a resumed step that starts over, walk it.
 */
export type { CleanupItem } from '../leftovers.js';

const KEY = 'cleanup';

/** Only what this tool creates is ever removed: a path of any other shape is left and reported. */
export function removable(item: CleanupItem): boolean {
  if (item.kind === 'config') return true;
  if (!isAbsolute(item.path) || item.path.includes('\0')) return false;
  const name = basename(item.path);
  return item.kind === 'local-dir' ? name.startsWith('redis-runbook-') : name === '.redis-runbook-partial';
}

export class Cleanup implements CleanupSink {
  constructor(private readonly state: RunState) {}

  private all(): Record<string, CleanupItem> {
    return this.state.get<Record<string, CleanupItem>>(KEY) ?? {};
  }

  /** Record before creating (a crash right after must still find it). Synchronous: parallel callers cannot lose an entry. */
  add(id: string, item: CleanupItem): void {
    const all = this.all();
    all[id] = item;
    this.state.set(KEY, all);
  }

  done(id: string): void {
    const all = this.all();
    if (!(id in all)) return;
    delete all[id];
    this.state.set(KEY, all);
  }

  items(): Array<[string, CleanupItem]> {
    return Object.entries(this.all());
  }

  /** Remove the local directories now, synchronously (a forced exit has no time for more). */
  removeLocalDirs(): string[] {
    const out: string[] = [];
    for (const [id, item] of this.items()) {
      if (item.kind !== 'local-dir' || !removable(item)) continue;
      rmSync(item.path, { recursive: true, force: true });
      this.done(id);
      out.push(`removed ${item.what} ${item.path}`);
    }
    return out;
  }

  /**
   * Undo what is recorded, of the given kinds; each success is dropped from
   * the registry, each failure stays (for the next walk) and is reported.
   * `env` must allow writes for `host-dir` and `config` (they are journaled).
   */
  async walk(env: StepEnv | undefined, kinds: Array<CleanupItem['kind']>): Promise<{ done: string[]; left: string[] }> {
    const done: string[] = [];
    const left: string[] = [];
    for (const [id, item] of this.items()) {
      if (!kinds.includes(item.kind)) continue;
      if (!removable(item)) {
        left.push(`${item.what}: ${'path' in item ? item.path : ''} is not a path this tool creates; left alone`);
        continue;
      }
      try {
        if (item.kind === 'local-dir') {
          rmSync(item.path, { recursive: true, force: true });
          done.push(`removed ${item.what} ${item.path}`);
        } else if (item.kind === 'host-dir') {
          const host = env?.host(item.address);
          if (!host) throw new Error(`no inventory host lists ${item.address}`);
          const r = await host.run(`rm -rf -- ${shellQuote(item.path)}`, { timeoutMs: 60_000 });
          if (r.exitCode !== 0) throw new Error(`rm exited ${r.exitCode}: ${r.stderr.trim()}`);
          done.push(`removed ${item.what} ${item.path} on host ${host.name}`);
        } else {
          if (!env) throw new Error('no connection to the cluster');
          await env.pool(item.cluster).node(item.address).call('CONFIG', 'SET', item.parameter, item.value);
          done.push(`set ${item.parameter} back to ${JSON.stringify(item.value)} on ${item.address} (${item.what})`);
        }
        this.done(id);
      } catch (err) {
        const where =
          item.kind === 'config'
            ? `${item.address}: CONFIG SET ${item.parameter} ${JSON.stringify(item.value)}`
            : item.path;
        left.push(`${item.what} (${where}) not undone: ${messageOf(err).split('\n')[0]}`);
      }
    }
    return { done, left };
  }
}
