import { loadInventory } from '../inventory/load.js';
import type { Inventory } from '../inventory/types.js';
import { createStepEnv, type ClosableEnv } from '../steps/env.js';
import { Store } from '../engine/store.js';
import { usageError } from '../errors.js';
import type { AuditSink } from '../redis/audit.js';
import { stateDirFrom } from './state-dir.js';

/** Everything one command needs, opened lazily and closed once. */
export class Session {
  private envs: ClosableEnv[] = [];
  private storeValue: Store | undefined;
  constructor(readonly stateDir: string) {}

  static from(opts: { stateDir?: string }): Session {
    return new Session(stateDirFrom(opts.stateDir));
  }

  get store(): Store {
    if (!this.storeValue) {
      this.storeValue = new Store(this.stateDir);
      for (const n of this.storeValue.notices) console.error(`note: ${n}`);
    }
    return this.storeValue;
  }

  inventory(path: string | undefined): Inventory {
    if (!path)
      throw usageError(
        'E_USAGE',
        'no inventory given',
        'pass --inventory FILE (`redis-runbook sandbox up` prints one)',
      );
    return loadInventory(path);
  }

  env(inv: Inventory, access: 'read-only' | 'read-write', audit?: AuditSink): ClosableEnv {
    const e = createStepEnv(inv, access, audit);
    this.envs.push(e);
    return e;
  }

  async close(): Promise<void> {
    await Promise.all(this.envs.map((e) => e.close()));
    this.storeValue?.close();
  }
}
