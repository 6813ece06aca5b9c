import type { NodeClient } from '../../redis/connect.js';
import { sameScore, streamDiff } from './compare.js';
import { STRING_PAGE_BYTES } from './key-read.js';

/** The first difference as [source, target], or undefined, and the pages read. */
type PagedResult = { diff?: [string, string]; pages: number };

/**
 * Compare a key too big for one reply, page by page: never one giant reply.
 * Strings, lists and streams are read in the same pages from both sides;
 * unordered ones are scanned on the source and looked up on the target
 * (HMGET, SMISMEMBER, ZMSCORE), with the lengths already known equal.
 * Returns the first difference as [source, target], or undefined, and the pages read.
 */
export async function compareBigKey(
  src: NodeClient,
  tgt: NodeClient,
  key: Buffer,
  type: string,
  page: number,
): Promise<PagedResult> {
  // Lengths first: the lookups below only prove the source is contained in the target.
  const lenCmd = (
    { string: 'STRLEN', list: 'LLEN', hash: 'HLEN', set: 'SCARD', zset: 'ZCARD', stream: 'XLEN' } as Record<
      string,
      string
    >
  )[type];
  if (lenCmd) {
    const [a, b] = await Promise.all([one(src, [lenCmd, key]), one(tgt, [lenCmd, key])]);
    if (text(a) !== text(b)) return { diff: [`${type} length ${text(a)}`, `${type} length ${text(b)}`], pages: 0 };
  }

  if (type === 'string') return compareStringPages(src, tgt, key);
  if (type === 'list') return compareListPages(src, tgt, key, page);
  if (type === 'stream') return compareStreamPages(src, tgt, key, page);
  return compareByLookup(src, tgt, key, type, page);
}

/** One command, its reply or its error thrown. */
async function one(node: NodeClient, cmd: [string, ...(string | number | Buffer)[]]): Promise<unknown> {
  const [[err, v]] = (await node.pipeline([cmd])) as [[Error | null, unknown]];
  if (err) throw err;
  return v;
}

function text(b: unknown): string {
  return Buffer.isBuffer(b) ? b.toString('latin1') : String(b);
}

/** A string, GETRANGE by GETRANGE on both sides; a difference names its first differing byte. */
async function compareStringPages(src: NodeClient, tgt: NodeClient, key: Buffer): Promise<PagedResult> {
  let pages = 0;
  const len = Number(text(await one(src, ['STRLEN', key])));
  for (let i = 0; i < len; i += STRING_PAGE_BYTES) {
    pages++;
    const end = i + STRING_PAGE_BYTES - 1;
    const [a, b] = (await Promise.all([one(src, ['GETRANGE', key, i, end]), one(tgt, ['GETRANGE', key, i, end])])) as [
      Buffer,
      Buffer,
    ];
    if (a.equals(b)) continue;
    let k = 0;
    while (k < a.length && a[k] === b[k]) k++;
    const around = (x: Buffer) => JSON.stringify(x.subarray(k, k + 16).toString('latin1'));
    return { diff: [`string byte ${i + k} = ${around(a)}...`, `string byte ${i + k} = ${around(b)}...`], pages };
  }
  return { pages };
}

/** A list, LRANGE page by LRANGE page on both sides. */
async function compareListPages(src: NodeClient, tgt: NodeClient, key: Buffer, page: number): Promise<PagedResult> {
  let pages = 0;
  const len = Number(text(await one(src, ['LLEN', key])));
  for (let i = 0; i < len; i += page) {
    pages++;
    const [a, b] = (await Promise.all([
      one(src, ['LRANGE', key, i, i + page - 1]),
      one(tgt, ['LRANGE', key, i, i + page - 1]),
    ])) as [Buffer[], Buffer[]];
    const k = a.findIndex((e, j) => !b[j] || !e.equals(b[j]!));
    if (k !== -1)
      return {
        diff: [
          `list[${i + k}] = ${JSON.stringify(text(a[k]))}`,
          `list[${i + k}] = ${b[k] ? JSON.stringify(text(b[k])) : '(none)'}`,
        ],
        pages,
      };
  }
  return { pages };
}

/** A stream, XRANGE page by XRANGE page on both sides, each page starting after the last id of the one before. */
async function compareStreamPages(src: NodeClient, tgt: NodeClient, key: Buffer, page: number): Promise<PagedResult> {
  let pages = 0;
  let start = '-';
  for (;;) {
    pages++;
    const [a, b] = (await Promise.all([
      one(src, ['XRANGE', key, start, '+', 'COUNT', page]),
      one(tgt, ['XRANGE', key, start, '+', 'COUNT', page]),
    ])) as [Array<[Buffer, Buffer[]]>, Array<[Buffer, Buffer[]]>];
    const d = streamDiff(
      a.map(([id, f]) => [text(id), f]),
      b.map(([id, f]) => [text(id), f]),
    );
    if (d) return { diff: d, pages };
    if (a.length < page) return { pages };
    start = `(${text(a[a.length - 1]![0])}`;
  }
}

/** A hash, set or sorted set: scanned on the source, each page looked up on the target. */
async function compareByLookup(
  src: NodeClient,
  tgt: NodeClient,
  key: Buffer,
  type: string,
  page: number,
): Promise<PagedResult> {
  let pages = 0;
  const scan = type === 'hash' ? 'HSCAN' : type === 'set' ? 'SSCAN' : 'ZSCAN';
  let cursor = '0';
  do {
    pages++;
    const [next, flat] = (await one(src, [scan, key, cursor, 'COUNT', page])) as [Buffer, Buffer[]];
    cursor = text(next);
    if (type === 'set') {
      if (flat.length === 0) continue;
      const present = (await one(tgt, ['SMISMEMBER', key, ...flat])) as number[];
      const k = present.findIndex((p) => Number(p) !== 1);
      if (k !== -1) return { diff: [`member ${JSON.stringify(text(flat[k]))}`, 'member absent'], pages };
      continue;
    }
    const diff = await lookUpPairs(tgt, key, type, flat);
    if (diff) return { diff, pages };
  } while (cursor !== '0');
  return { pages };
}

/** One HSCAN/ZSCAN page (name, value, name, value...) looked up on the target: the first pair it differs on. */
async function lookUpPairs(
  tgt: NodeClient,
  key: Buffer,
  type: string,
  flat: Buffer[],
): Promise<[string, string] | undefined> {
  const names = flat.filter((_, i) => i % 2 === 0);
  const values = flat.filter((_, i) => i % 2 === 1);
  if (names.length === 0) return undefined;
  const got = (await one(tgt, [type === 'hash' ? 'HMGET' : 'ZMSCORE', key, ...names])) as Array<Buffer | null>;
  for (let i = 0; i < names.length; i++) {
    const same =
      type === 'hash'
        ? !!got[i] && got[i]!.equals(values[i]!)
        : sameScore(text(values[i]), got[i] === null ? undefined : text(got[i]));
    if (!same) {
      const what = type === 'hash' ? 'field' : 'member';
      return [
        `${what} ${JSON.stringify(text(names[i]))} = ${text(values[i])}`,
        got[i] === null ? `${what} absent` : `${what} ${JSON.stringify(text(names[i]))} = ${text(got[i])}`,
      ];
    }
  }
  return undefined;
}
