import type { NodeClient } from '../connect.js';
import type { Endpoint } from '../verify/endpoint.js';

export interface ScanCopyReport { keys: number; bytes: number; vanished: number; ms: number }

/**
 * Scan mode, for sources that refuse PSYNC (managed services): every key of
 * every source master is read with DUMP and PTTL in pipelines and written to
 * its owner in the target with RESTORE ... REPLACE. It is a copy as of the
 * scan, not a snapshot: keys changed during the scan are copied in whatever
 * state the scan met them (the verify rounds catch the rest).
 */
export async function scanCopy(source: Endpoint, target: Endpoint, o: { batch?: number; onProgress?: (keys: number) => void; signal?: AbortSignal } = {}): Promise<ScanCopyReport> {
  const started = Date.now();
  const batch = o.batch ?? 500;
  let keys = 0;
  let bytes = 0;
  let vanished = 0;
  for (const node of source.masters) {
    let cursor = '0';
    do {
      if (o.signal?.aborted) throw new Error('stopped');
      const [next, found] = (await node.call('SCAN', cursor, 'COUNT', batch)) as [Buffer | string, Array<Buffer | string>];
      cursor = String(next);
      if (!found.length) continue;
      const ks = found.map((k) => (Buffer.isBuffer(k) ? k : Buffer.from(k)));
      const replies = await node.pipeline(ks.flatMap((k) => [['DUMP', k] as const, ['PTTL', k] as const]));
      const byOwner = new Map<NodeClient, Array<[string, ...Array<string | Buffer>]>>();
      ks.forEach((k, i) => {
        const [e1, payload] = replies[2 * i]!;
        const [e2, pttl] = replies[2 * i + 1]!;
        if (e1 || e2) throw new Error(`reading ${k.toString()} from ${node.address}: ${(e1 ?? e2)!.message}`);
        // PTTL 0: under a millisecond left (RESTORE with TTL 0 would make it persistent): gone.
        if (payload === null || Number(pttl) === -2 || Number(pttl) === 0) { vanished++; return; }
        const ttl = Number(pttl) > 0 ? String(pttl) : '0';
        const owner = target.route(k);
        const list = byOwner.get(owner) ?? [];
        list.push(['RESTORE', k, ttl, payload as Buffer, 'REPLACE']);
        byOwner.set(owner, list);
        bytes += (payload as Buffer).length;
      });
      for (const [owner, cmds] of byOwner) {
        const res = await owner.pipeline(cmds);
        const bad = res.findIndex(([err]) => err);
        if (bad >= 0) {
          const msg = res[bad]![0]!.message;
          throw new Error(`RESTORE of ${String(cmds[bad]![1])} on ${owner.address} failed: ${msg}${/payload version/i.test(msg) ? ' (the target is an older Redis than the source: use psync mode, which rebuilds keys with type commands)' : ''}`);
        }
        keys += cmds.length;
      }
      o.onProgress?.(keys);
    } while (cursor !== '0');
  }
  return { keys, bytes, vanished, ms: Date.now() - started };
}
