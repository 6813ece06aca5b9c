/**
 * Just enough parsing of CLUSTER NODES / CLUSTER INFO / INFO to tell whether
 * a freshly formed sandbox cluster has converged. Deliberately private to the
 * sandbox: it ignores everything (link state, epochs, migrating slots) that a
 * new, idle cluster does not have.
 */
export interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  /** Master's id for a replica; undefined for a master. */
  masterId: string | undefined;
  /** Slot ranges as printed (`0-5460`, `7`), without import/migrate markers. */
  slots: string[];
}

export function parseClusterNodes(text: string): NodeLine[] {
  const out: NodeLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    // ip:port@cport[,hostname]
    const port = Number(/:(\d+)@/.exec(f[1]!)?.[1] ?? NaN);
    out.push({
      id: f[0]!,
      port,
      flags: f[2]!.split(','),
      masterId: f[3] === '-' ? undefined : f[3],
      slots: f.slice(8).filter((s) => !s.startsWith('[')),
    });
  }
  return out;
}

/** `key:value` lines of CLUSTER INFO or INFO, sections and comments dropped. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const i = l.indexOf(':');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/**
 * One node's view of who owns what and who replicates whom, as a string that
 * is equal on two nodes exactly when they agree. Transient flags (pfail,
 * handshake) are left out; only the role counts.
 */
export function topologySignature(nodes: NodeLine[]): string {
  return nodes
    .map((n) => `${n.id} ${n.flags.includes('master') ? 'master' : n.flags.includes('slave') ? 'replica' : '?'} ${n.masterId ?? '-'} ${[...n.slots].sort().join(',')}`)
    .sort()
    .join('\n');
}

/** Number of slots a node's view assigns to any master. */
export function assignedSlots(nodes: NodeLine[]): number {
  let n = 0;
  for (const node of nodes) {
    for (const s of node.slots) {
      const [a, b] = s.split('-').map(Number);
      n += b === undefined ? 1 : b - a! + 1;
    }
  }
  return n;
}
