import { readFileSync, writeFileSync } from 'node:fs';

/**
 * sandbox.json: what `down` and `status` need without asking any node. It is
 * written before the first node starts, so a sandbox that failed half-way
 * can still be found and stopped.
 */
export interface SandboxMetaCluster {
  name: 'source' | 'target';
  ports: number[];
  masters: number;
  replicasPerMaster: number;
}

export interface SandboxMeta {
  version: 1;
  name: string;
  createdAt: string;
  basePort: number;
  nodeTimeoutMs: number;
  keys: number;
  clusters: SandboxMetaCluster[];
}

export function writeMeta(path: string, meta: SandboxMeta): void {
  writeFileSync(path, JSON.stringify(meta, null, 2) + '\n');
}

/** undefined when the file is missing or not ours: callers then fall back to what is on disk. */
export function readMeta(path: string): SandboxMeta | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (!doc || typeof doc !== 'object') return undefined;
  const m = doc as Partial<SandboxMeta>;
  if (m.version !== 1 || typeof m.name !== 'string' || !Array.isArray(m.clusters)) return undefined;
  const clusters = m.clusters.filter((c): c is SandboxMetaCluster =>
    !!c && (c.name === 'source' || c.name === 'target') && Array.isArray(c.ports) && c.ports.every((p) => Number.isInteger(p)));
  return { ...(m as SandboxMeta), clusters };
}
