import { aofLayout, type NodePersistence } from '../../hosts/node-files.js';

/** What one source master's AOF becomes on its target master. */
export type AofCopy =
  | {
      ok: true;
      /** The name it takes inside the target's dir. */
      name: string;
      kind: 'file' | 'dir';
      /** A path inside the target's dir that must not exist when the target starts (see below). */
      mustBeAbsent?: string;
    }
  | { ok: false; writes: string; reads: string };

const dirOf = (p: NodePersistence) => p.dir.replace(/\/+$/, '');

/**
 * The AOF copy, decided by the two layouts (aofLayout):
 *
 * - multi-part to multi-part (Redis 7+ both): the directory, under the
 *   target's appenddirname.
 * - single file to single file (Redis 6 both): the file, under the target's
 *   appendfilename, the only name Redis 6 reads.
 * - single file to multi-part (Redis 6 to Redis 7+ or Valkey): the file, under
 *   the target's appendfilename, in its dir. A Redis 7+ server with appendonly
 *   yes that finds no AOF directory at start moves such a file into a new
 *   directory as its base, with a manifest, and loads it (seen with Redis 7.2,
 *   7.4 and Valkey 8.0: "Successfully migrated an old-style AOF file"). Only
 *   under its own appendfilename: another name is ignored and the node starts
 *   empty. And only when the directory is absent or holds no manifest: an
 *   existing one wins, the file is ignored, again an empty node. The backup
 *   step moves the directory aside; the copy step checks it is gone.
 * - multi-part to single file (Redis 7+ to Redis 6): nothing Redis 6 reads
 *   (it knows neither the manifest nor the directory), refused.
 */
export function aofCopy(src: NodePersistence, dst: NodePersistence): AofCopy {
  const from = aofLayout(src);
  const to = aofLayout(dst);
  if (from === 'multi-part' && to === 'multi-part') return { ok: true, name: dst.appenddirname, kind: 'dir' };
  if (from === 'single-file' && to === 'single-file') return { ok: true, name: dst.appendfilename, kind: 'file' };
  if (from === 'single-file')
    return {
      ok: true,
      name: dst.appendfilename,
      kind: 'file',
      mustBeAbsent: `${dirOf(dst)}/${dst.appenddirname}`,
    };
  return {
    ok: false,
    writes: `a multi-part AOF (directory ${src.appenddirname}: manifest, base and incr files)`,
    reads: `only a single-file AOF (${dst.appendfilename})`,
  };
}
