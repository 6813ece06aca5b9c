import { posix } from 'node:path';
import { preconditionError } from '../errors.js';
import { shellQuote } from './copy.js';

/**
 * Which files of a Redis node may be deleted or moved aside, and the exact
 * shell that does it. Pure path logic, shared by delete-node-files and
 * backup-node-files, so that both refuse the same things: a name that leaves
 * the data directory (`..`, `a/b`, an absolute name), a relative or root data
 * directory, an AOF directory the node does not use (appendonly no: it may
 * belong to another instance, or hold data an operator kept), and any file
 * another instance on the same host uses.
 */

/** What CONFIG GET reports about a node's files. */
export interface NodePersistence {
  dir: string;
  dbfilename: string;
  appendonly: boolean;
  /** '' when the server has no such setting: Redis before 7.0, whose AOF is one file (see aofLayout). */
  appenddirname: string;
  /** The single AOF file's name before Redis 7; from 7.0 the prefix of the files inside appenddirname. */
  appendfilename: string;
  clusterConfigFile: string;
}

/**
 * How a node keeps its AOF. Redis 7.0 brought both the multi-part AOF (a
 * directory: manifest, base, incr files) and the appenddirname setting that
 * names it, and refuses an empty one; so a node that reports no appenddirname
 * writes the older single file, `appendfilename` inside `dir`. Told by the
 * setting rather than by a version number: that is what decides the files.
 */
export type AofLayout = 'single-file' | 'multi-part';

export const aofLayout = (p: Pick<NodePersistence, 'appenddirname'>): AofLayout =>
  p.appenddirname ? 'multi-part' : 'single-file';

/** The node's own AOF, by its layout: the setting that names it and that name (inside `dir`). */
export function aofName(p: NodePersistence): { setting: 'appenddirname' | 'appendfilename'; name: string } {
  return aofLayout(p) === 'multi-part'
    ? { setting: 'appenddirname', name: p.appenddirname }
    : { setting: 'appendfilename', name: p.appendfilename };
}

export type NodeFileKind = 'rdb' | 'aof' | 'nodes-conf';

export interface NodeFile {
  kind: NodeFileKind;
  /** Name inside the data directory (no slash). */
  name: string;
  /** Absolute, normalised path: always `<dir>/<name>`. */
  path: string;
}

export interface NodeFiles {
  address: string;
  dir: string;
  files: NodeFile[];
}

const unsafe = (address: string, what: string, fix: string) =>
  preconditionError('E_UNSAFE_PATH', `${address}: ${what}`, fix);

/** The data directory, absolute and normalised; refused when relative, root or odd. */
export function dataDir(address: string, dir: string): string {
  if (!dir || !dir.startsWith('/') || dir.includes('\0') || /[\n\r]/.test(dir)) {
    throw unsafe(
      address,
      `reports dir \`${dir}\`: files are touched only under an absolute data directory`,
      'handle its files by hand, or leave them (deleteFiles=false)',
    );
  }
  const norm = posix.normalize(dir).replace(/\/+$/, '');
  if (norm === '' || norm === '/')
    throw unsafe(
      address,
      `reports dir \`${dir}\`: the root directory is never a data directory to delete from`,
      'handle its files by hand',
    );
  return norm;
}

/**
 * A file name Redis resolves inside `dir`. Redis itself refuses a path in
 * dbfilename and appenddirname, but a CONFIG SET or a hand-edited config may
 * still carry `..`, `.`, or an empty value: each would name the directory
 * itself or its parent, so it is refused, never passed to rm or mv.
 */
export function fileInDir(address: string, dir: string, setting: string, name: string): string {
  const bad =
    name === ''
      ? 'is empty'
      : name === '.' || name === '..'
        ? `is \`${name}\`, the directory itself or its parent`
        : name.includes('/')
          ? `\`${name}\` contains a slash (a path, not a file name)`
          : /[\0\n\r]/.test(name)
            ? 'contains a control character'
            : undefined;
  if (bad)
    throw unsafe(
      address,
      `${setting} ${bad}`,
      `fix ${setting} on the node (CONFIG SET ${setting} <name>), or handle its files by hand`,
    );
  const path = posix.join(dir, name);
  if (posix.dirname(path) !== dir)
    throw unsafe(address, `${setting} \`${name}\` resolves to ${path}, outside ${dir}`, 'handle its files by hand');
  return path;
}

/**
 * cluster-config-file may be a path; it counts only when it resolves to a
 * file directly inside the data directory. Anything else is refused: its
 * place is the operator's choice and it is not deleted blindly.
 */
function clusterConfigInDir(address: string, dir: string, file: string): string {
  const path = file.startsWith('/') ? posix.normalize(file) : posix.join(dir, file);
  if (posix.dirname(path) !== dir || posix.basename(path) === '..' || posix.basename(path) === '.' || path === dir) {
    throw unsafe(
      address,
      `cluster-config-file \`${file}\` resolves to ${path}, not a file inside ${dir}`,
      'delete it by hand, or leave the files (deleteFiles=false)',
    );
  }
  return path;
}

/**
 * The files a node itself uses, as absolute paths inside its data directory:
 * the RDB, the AOF only with appendonly yes (an AOF left from an earlier
 * setting is not known to be this node's) — the directory from Redis 7, the
 * single file before — and nodes.conf when asked.
 *
 * `legacyAof`: a Redis 7+ node with appendonly yes also counts the old
 * single file `appendfilename` in `dir`: when its AOF directory is missing it
 * adopts that file at start (moves it in as its base), so the file is what it
 * would load. Moving files aside asks for it; deleting does not (a file the
 * node has not adopted may be an operator's).
 */
export function nodeFiles(
  address: string,
  p: NodePersistence,
  opts: { nodesConf: boolean; legacyAof?: boolean },
): NodeFiles {
  const dir = dataDir(address, p.dir);
  const files: NodeFile[] = [];
  const rdb = fileInDir(address, dir, 'dbfilename', p.dbfilename);
  files.push({ kind: 'rdb', name: posix.basename(rdb), path: rdb });
  if (p.appendonly) {
    const { setting, name } = aofName(p);
    const aof = fileInDir(address, dir, setting, name);
    files.push({ kind: 'aof', name: posix.basename(aof), path: aof });
    if (opts.legacyAof && setting === 'appenddirname') {
      const old = fileInDir(address, dir, 'appendfilename', p.appendfilename);
      files.push({ kind: 'aof', name: posix.basename(old), path: old });
    }
  }
  if (opts.nodesConf) {
    const conf = clusterConfigInDir(address, dir, p.clusterConfigFile || 'nodes.conf');
    files.push({ kind: 'nodes-conf', name: posix.basename(conf), path: conf });
  }
  return { address, dir, files };
}

/**
 * Paths another instance uses, for the overlap check: its files (its AOF
 * whatever its appendonly, which may change at any time: the directory from
 * Redis 7, the single file before) and its data directory. Lenient: an odd
 * setting of the other node is not our refusal, it only adds what can be named.
 */
export function usedPaths(p: NodePersistence): { dir?: string; files: string[] } {
  if (!p.dir?.startsWith('/')) return { files: [] };
  const dir = posix.normalize(p.dir).replace(/\/+$/, '') || '/';
  const inDir = (f: string) => (f.startsWith('/') ? posix.normalize(f) : posix.join(dir, f));
  const files = [p.dbfilename, aofName(p).name, p.clusterConfigFile].filter((f) => !!f).map(inDir);
  return { dir, files };
}

const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}/`);

/**
 * Which of `mine` another instance (on the same host) uses: the same path, a
 * path inside one of mine, or its data directory inside or equal to one of
 * mine. Another node sharing only the directory, with its own file names, is
 * not a conflict.
 */
export function conflicts(mine: NodeFiles, others: Array<{ address: string; persistence: NodePersistence }>): string[] {
  const out: string[] = [];
  for (const o of others) {
    const used = usedPaths(o.persistence);
    for (const f of mine.files) {
      const hit =
        used.files.find((u) => within(u, f.path) || within(f.path, u)) ??
        (used.dir && within(used.dir, f.path) ? used.dir : undefined);
      if (hit) out.push(`${o.address} uses ${hit}, which deleting or moving ${f.path} would touch`);
    }
  }
  return out;
}

/**
 * Shell that exits 6 when a redis-server process on the host works in `dir`
 * (Redis chdirs into its data directory, so /proc/PID/cwd names it): another
 * instance the inventory does not know may still use the files. Processes of
 * other users are seen only by root; what cannot be read is not assumed.
 */
export function noOtherRedisGuard(dir: string): string {
  const d = shellQuote(dir);
  // `read` is a shell builtin: one fork per redis-server found, not two per process on the host.
  return `for p in /proc/[0-9]*; do c=; { read -r c < "$p/comm"; } 2>/dev/null; case "$c" in redis-server*|valkey-server*) [ "$(readlink "$p/cwd" 2>/dev/null)" = ${d} ] && { printf 'a redis or valkey server (pid %s) runs in %s\\n' "\${p#/proc/}" ${d} >&2; exit 6; };; esac; done;`;
}
