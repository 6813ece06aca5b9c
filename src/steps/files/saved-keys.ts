import { RdbParser } from '../../data/protocol/rdb.js';
import { shellQuote } from '../../hosts/copy.js';
import type { HostHandle } from '../host-access.js';

const HEAD = 65536;

/**
 * The keys a saved RDB holds, as the saving server counted them at its fork
 * (RESIZEDB, near the start of the file): exact however many writes came
 * between a DBSIZE and the fork. undefined when the header does not say.
 */
export function rdbKeysFromHeader(head: Buffer, whole: boolean): number | undefined {
  const p = new RdbParser({ raw: true });
  try {
    p.push(head, whole);
  } catch {
    return undefined;
  }
  if (p.keysAtSave !== null) return p.keysAtSave;
  // Redis writes no RESIZEDB for an empty database.
  return p.done ? 0 : undefined;
}

/** Read the first bytes of a saved RDB on its host (a read: not journaled) and count its keys. */
export async function savedRdbKeys(host: HostHandle, path: string): Promise<number | undefined> {
  const r = await host.read(`head -c ${HEAD} -- ${shellQuote(path)} | base64 -w0`);
  if (r.exitCode !== 0) return undefined;
  const buf = Buffer.from(r.stdout.trim(), 'base64');
  return rdbKeysFromHeader(buf, buf.length < HEAD);
}
