import { ClusterPool, type Access } from '../redis/connect.js';
import { discoverTopology } from '../redis/topology.js';
import type { AuditSink } from '../redis/audit.js';
import type { Inventory } from '../inventory/types.js';
import { usageError } from '../errors.js';
import { registerSecrets } from '../inventory/secret.js';
import type { StepEnv } from './kind.js';
import { fileAccess, hostAccess } from './host-access.js';

export interface ClosableEnv extends StepEnv {
  close(): Promise<void>;
  secrets(): string[];
}

/**
 * The one way steps reach clusters: a pool per inventory cluster, all sharing
 * the access mode (read-only for `plan`) and the audit sink (the run journal).
 */
export function createStepEnv(inventory: Inventory, access: Access, audit?: AuditSink): ClosableEnv {
  // Known to the scrubber before anything runs, not only once a cluster is first contacted.
  registerSecrets(inventory.clusters);
  const pools = new Map<string, ClusterPool>();
  const pool = (name: string) => {
    let p = pools.get(name);
    if (!p) {
      const config = inventory.clusters[name];
      if (!config) throw usageError('E_PARAM', `cluster \`${name}\` is not in the inventory ${inventory.file}`, `use one of: ${Object.keys(inventory.clusters).join(', ')}`);
      p = new ClusterPool(config, { access, audit });
      pools.set(name, p);
    }
    return p;
  };
  return {
    inventory,
    pool,
    topology: (name) => discoverTopology(pool(name)),
    files: fileAccess(inventory, access, audit),
    host: (address) => hostAccess(inventory, access, audit, address, () => [...pools.values()].flatMap((p) => p.secrets())),
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
    secrets: () => [...pools.values()].flatMap((p) => p.secrets()),
  };
}
