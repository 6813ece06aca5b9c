import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';

export interface ScanCopyReport {
  keys: number;
  bytes: number;
  vanished: number;
  ms: number;
}

/**
 * Copy some keys of one source node into the target: DUMP and PTTL in one
 * pipeline, then `RESTORE ... REPLACE` on each key's owner. A key gone from
 * the source is skipped, or, with `deleteMissing` (a key changed since the
 * copy: it may have been deleted), deleted from the target too.
 */
export async function copyKeys(
  node: NodeClient,
  keys: Buffer[],
  target: Endpoint,
  o: { deleteMissing?: boolean } = {},
): Promise<{ copied: number; bytes: number; vanished: number }> {
  let copied = 0;
  let bytes = 0;
  let vanished = 0;
  if (!keys.length) return { copied, bytes, vanished };
  const replies = await node.pipeline(keys.flatMap((k) => [['DUMP', k] as const, ['PTTL', k] as const]));
  const byOwner = new Map<NodeClient, Array<[string, ...Array<string | Buffer>]>>();
  const push = (owner: NodeClient, c: [string, ...Array<string | Buffer>]) => {
    const l = byOwner.get(owner) ?? [];
    l.push(c);
    byOwner.set(owner, l);
  };
  keys.forEach((k, i) => {
    const [e1, payload] = replies[2 * i]!;
    const [e2, pttl] = replies[2 * i + 1]!;
    if (e1 || e2) throw new Error(`reading ${k.toString()} from ${node.address}: ${(e1 ?? e2)!.message}`);
    // PTTL 0: under a millisecond left (RESTORE with TTL 0 would make it persistent): gone.
    if (payload === null || Number(pttl) === -2 || Number(pttl) === 0) {
      vanished++;
      if (o.deleteMissing) push(target.route(k), ['DEL', k]);
      return;
    }
    push(target.route(k), ['RESTORE', k, Number(pttl) > 0 ? String(pttl) : '0', payload as Buffer, 'REPLACE']);
    bytes += (payload as Buffer).length;
    copied++;
  });
  for (const [owner, cmds] of byOwner) {
    const res = await owner.pipeline(cmds);
    const bad = res.findIndex(([err]) => err);
    if (bad >= 0) {
      const msg = res[bad]![0]!.message;
      throw new Error(
        `${cmds[bad]![0]} of ${String(cmds[bad]![1])} on ${owner.address} failed: ${msg}${/payload version/i.test(msg) ? ' (the target is an older Redis than the source: use psync mode, which rebuilds keys with type commands)' : ''}`,
      );
    }
  }
  return { copied, bytes, vanished };
}

/**
 * Scan mode, for sources that refuse PSYNC (managed services): every key of
 * every source master is read with DUMP and PTTL in pipelines and written to
 * its owner in the target with RESTORE ... REPLACE. It is a copy as of the
 * scan, not a snapshot: keys changed during the scan are copied in whatever
 * state the scan met them (the verify rounds catch the rest).
 */
export async function scanCopy(
  source: Pick<Endpoint, 'masters'>,
  target: Endpoint,
  o: { batch?: number; onProgress?: (keys: number) => void; signal?: AbortSignal } = {},
): Promise<ScanCopyReport> {
  const started = Date.now();
  const batch = o.batch ?? 500;
  const total = { keys: 0, bytes: 0, vanished: 0 };
  for (const node of source.masters) {
    let cursor = '0';
    do {
      if (o.signal?.aborted) throw new Error('stopped');
      // A pipeline: a scan of millions of keys does not fill the journal with SCAN reads (the session records a summary).
      const [err, reply] = (await node.pipeline([['SCAN', cursor, 'COUNT', batch]]))[0]!;
      if (err) throw err;
      const [next, found] = reply as [Buffer | string, Array<Buffer | string>];
      cursor = String(next);
      const r = await copyKeys(
        node,
        found.map((k) => (Buffer.isBuffer(k) ? k : Buffer.from(k))),
        target,
      );
      total.keys += r.copied;
      total.bytes += r.bytes;
      total.vanished += r.vanished;
      o.onProgress?.(total.keys);
    } while (cursor !== '0');
  }
  return { ...total, ms: Date.now() - started };
}
