import type { SlotRange } from './slots.js';

/** One line of `CLUSTER NODES`, parsed. Pure. */
export interface ClusterNodeLine {
  id: string;
  /** host:port as announced (the cluster bus port and hostname are dropped). */
  address: string;
  flags: string[];
  masterId: string | undefined;
  pingSent: number;
  pongRecv: number;
  configEpoch: number;
  linkState: string;
  slots: SlotRange[];
  /** Only on the `myself` line: slots this node is migrating to / importing from another id. */
  migrating: Array<{ slot: number; to: string }>;
  importing: Array<{ slot: number; from: string }>;
}

/** Parse `CLUSTER NODES` (format: redis cluster.c clusterGenNodeDescription). */
export function parseClusterNodes(text: string): ClusterNodeLine[] {
  const out: ClusterNodeLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(' ');
    if (f.length < 8) throw new Error(`unexpected CLUSTER NODES line: ${line}`);
    const addrField = f[1]!;
    const address = addrField.split('@')[0]!.split(',')[0]!;
    const slots: [number, number][] = [];
    const migrating: ClusterNodeLine['migrating'] = [];
    const importing: ClusterNodeLine['importing'] = [];
    for (const s of f.slice(8)) {
      let m: RegExpExecArray | null;
      if ((m = /^\[(\d+)->-([0-9a-f]+)\]$/.exec(s))) migrating.push({ slot: Number(m[1]), to: m[2]! });
      else if ((m = /^\[(\d+)-<-([0-9a-f]+)\]$/.exec(s))) importing.push({ slot: Number(m[1]), from: m[2]! });
      else if ((m = /^(\d+)(?:-(\d+))?$/.exec(s))) slots.push([Number(m[1]), Number(m[2] ?? m[1])]);
    }
    out.push({
      id: f[0]!,
      address,
      flags: f[2]!.split(','),
      masterId: f[3] === '-' ? undefined : f[3],
      pingSent: Number(f[4]),
      pongRecv: Number(f[5]),
      configEpoch: Number(f[6]),
      linkState: f[7]!,
      slots,
      migrating,
      importing,
    });
  }
  return out;
}

export const isMaster = (l: ClusterNodeLine) => l.flags.includes('master');

/** Parse `INFO` text into a flat map of field -> value. */
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

/** Number of keys in db0 from INFO keyspace (`db0:keys=N,expires=...`). */
export function keysFromInfo(info: Record<string, string>): number {
  const m = /keys=(\d+)/.exec(info.db0 ?? '');
  return m ? Number(m[1]) : 0;
}

/**
 * Keys in db0 that have hash fields with their own TTL (Redis 7.4+ `subexpiry=N`
 * of INFO keyspace); 0 on servers that do not report it, which cannot hold any.
 */
export function fieldTtlKeysFromInfo(info: Record<string, string>): number {
  const m = /subexpiry=(\d+)/.exec(info.db0 ?? '');
  return m ? Number(m[1]) : 0;
}
