import { LzfStream } from './lzf.js';
import {
  hashMetadataReader,
  parseListpack,
  parseZiplist,
  RdbError,
  readStreamNode,
  readStreamTrailer,
  T,
  Truncated,
  type HashField,
  type RdbStream,
  type RdbValue,
  type Reader,
} from './rdb.js';

/**
 * A value too big to hold whole (a 200 MB string, a 1M-member sorted set),
 * read from the RDB a piece at a time as its bytes arrive. Each piece holds
 * whole elements (or a run of string bytes); the first piece is marked so the
 * key can be emptied before it, the last so its expiry (and a stream's ids
 * and groups) can follow it.
 */
export interface BigPiece {
  db: number;
  key: Buffer;
  expireAtMs: number | null;
  piece: RdbValue;
  first: boolean;
  last: boolean;
}

export interface BigValue {
  /** A piece of whole elements the buffer holds, or `need`: how far into the buffer the next element reaches. */
  step(r: Reader): { piece: BigPiece } | { need: number };
}

/** Input bytes per piece: pieces stay small whatever chunk the link delivers. */
const PIECE_BYTES = 256 * 1024;
/**
 * Elements per piece, too: decoded, an element costs far more than its RDB
 * bytes (a Buffer object each, an array per pair). 256 KB of a stream whose
 * entries share field names is over 10k entries; 2000 keeps a piece a few MB.
 */
export const PIECE_ITEMS = 2000;

type Item = Buffer | [Buffer, number] | HashField | RdbStream['entries'][number];

type Collection = { kind: 'list' | 'set' | 'zset' | 'hash' | 'stream'; read: (r: Reader, out: Item[]) => void };

// Built at first use: rdb.ts and this module import each other, and T is not defined yet while they load.
let collections: Record<number, Collection> | undefined;
const COLLECTIONS = (): Record<number, Collection> =>
  (collections ??= {
    [T.LIST]: {
      kind: 'list',
      read: (r, out) => {
        out.push(r.string());
      },
    },
    [T.SET]: {
      kind: 'set',
      read: (r, out) => {
        out.push(r.string());
      },
    },
    [T.ZSET]: {
      kind: 'zset',
      read: (r, out) => {
        const m = r.string();
        out.push([m, r.textDouble()]);
      },
    },
    [T.ZSET_2]: {
      kind: 'zset',
      read: (r, out) => {
        const m = r.string();
        out.push([m, r.binaryDouble()]);
      },
    },
    [T.HASH]: {
      kind: 'hash',
      read: (r, out) => {
        const f = r.string();
        out.push([f, r.string()] as HashField);
      },
    },
    [T.LIST_QUICKLIST]: {
      kind: 'list',
      read: (r, out) => {
        out.push(...parseZiplist(r.string()));
      },
    },
    [T.LIST_QUICKLIST_2]: {
      kind: 'list',
      // 1: a plain node holding one big element; 2: a listpack of elements.
      read: (r, out) => {
        const container = r.len();
        const blob = r.string();
        if (container === 1) out.push(blob);
        else out.push(...parseListpack(blob));
      },
    },
    [T.STREAM_LISTPACKS]: {
      kind: 'stream',
      read: (r, out) => {
        out.push(...readStreamNode(r));
      },
    },
    [T.STREAM_LISTPACKS_2]: {
      kind: 'stream',
      read: (r, out) => {
        out.push(...readStreamNode(r));
      },
    },
    [T.STREAM_LISTPACKS_3]: {
      kind: 'stream',
      read: (r, out) => {
        out.push(...readStreamNode(r));
      },
    },
  });

/**
 * Start reading the value of `type` at the reader's position (its header:
 * the string's length, the collection's count) in pieces. Undefined for an
 * encoding that is one blob bounded by the server's config (listpacks,
 * intsets) or an integer string: those are read whole. Throws Truncated if
 * even the header is not in yet.
 */
export function startBigValue(
  r: Reader,
  type: number,
  at: { db: number; key: Buffer; expireAtMs: number | null },
): BigValue | undefined {
  if (type === T.STRING) {
    const n = r.length();
    if (r.enc === -1) return new BigString(at, n);
    if (r.enc === 3) {
      const clen = r.len();
      const ulen = r.len();
      return new BigString(at, clen, new LzfStream(ulen));
    }
    return undefined;
  }
  if (type === T.HASH_METADATA || type === T.HASH_METADATA_PRE_GA) {
    // A hashtable hash with field TTLs (Redis 7.4): its header holds the earliest expiry the
    // fields' TTLs are relative to, so the reader of each field is made from it.
    const field = hashMetadataReader(r, type);
    const read = (rr: Reader, out: Item[]): void => {
      out.push(field(rr));
    };
    return new BigCollection(at, type, 'hash', read, r.len());
  }
  const c = COLLECTIONS()[type];
  return c ? new BigCollection(at, type, c.kind, c.read, r.len()) : undefined;
}

class Pieces {
  private first = true;
  constructor(private readonly at: { db: number; key: Buffer; expireAtMs: number | null }) {}
  make(piece: RdbValue, last: boolean): { piece: BigPiece } {
    const p = { ...this.at, piece, first: this.first, last };
    this.first = false;
    return { piece: p };
  }
}

/** A string's bytes as they come (plain), or decompressed a piece at a time (LZF). */
class BigString implements BigValue {
  private readonly pieces: Pieces;
  constructor(
    at: { db: number; key: Buffer; expireAtMs: number | null },
    private left: number,
    private readonly lzf?: LzfStream,
  ) {
    this.pieces = new Pieces(at);
  }

  step(r: Reader): { piece: BigPiece } | { need: number } {
    const from = r.pos;
    const end = Math.min(r.buf.length, r.pos + this.left);
    if (end <= r.pos) return { need: r.pos + 1 };
    let value: Buffer;
    if (!this.lzf) {
      const to = Math.min(end, r.pos + PIECE_BYTES);
      value = Buffer.from(r.buf.subarray(r.pos, to));
      r.pos = to;
    } else {
      const d = this.lzf.decode(r.buf, r.pos, end);
      if (d.at === r.pos) {
        // Not one whole token in: wait for the longest a token can be (a literal run: 33 bytes).
        if (end === r.pos + this.left) throw new RdbError('LZF string data ends inside a token', r.pos);
        return { need: r.pos + Math.min(this.left, 34) };
      }
      value = d.out;
      r.pos = d.at;
    }
    this.left -= r.pos - from;
    const last = this.left === 0;
    if (last && this.lzf && this.lzf.produced !== this.lzf.outLen)
      throw new RdbError(`LZF string of ${this.lzf.outLen} bytes decompressed to ${this.lzf.produced}`, r.pos);
    return this.pieces.make({ type: 'string', value }, last);
  }
}

/** A collection read element by element (or quicklist / stream node by node). */
class BigCollection implements BigValue {
  private readonly pieces: Pieces;
  constructor(
    at: { db: number; key: Buffer; expireAtMs: number | null },
    private readonly type: number,
    private readonly kind: 'list' | 'set' | 'zset' | 'hash' | 'stream',
    private readonly read: (r: Reader, out: Item[]) => void,
    private left: number,
  ) {
    this.pieces = new Pieces(at);
  }

  step(r: Reader): { piece: BigPiece } | { need: number } {
    const start = r.pos;
    const items: Item[] = [];
    let need = 0;
    while (this.left > 0 && r.pos - start < PIECE_BYTES && items.length < PIECE_ITEMS) {
      const at = r.pos;
      const got = items.length;
      try {
        this.read(r, items);
        this.left--;
      } catch (err) {
        if (!(err instanceof Truncated)) throw err;
        r.pos = at;
        items.length = got;
        need = err.until;
        break;
      }
    }
    let stream: RdbStream | undefined;
    if (this.left === 0 && this.kind === 'stream' && !need) {
      const at = r.pos;
      try {
        stream = readStreamTrailer(r, this.type, []);
      } catch (err) {
        if (!(err instanceof Truncated)) throw err;
        r.pos = at;
        need = err.until;
      }
    }
    const last = this.left === 0 && (this.kind !== 'stream' || stream !== undefined);
    if (!items.length && !last) return { need };
    return this.pieces.make(this.value(items, stream), last);
  }

  private value(items: Item[], stream: RdbStream | undefined): RdbValue {
    switch (this.kind) {
      case 'list':
      case 'set':
        return { type: this.kind, value: items as Buffer[] };
      case 'zset':
        return { type: 'zset', value: items as Array<[Buffer, number]> };
      case 'hash':
        return { type: 'hash', value: items as HashField[] };
      case 'stream': {
        const entries = items as RdbStream['entries'];
        return {
          type: 'stream',
          value: stream ? { ...stream, entries } : { entries, length: 0, lastId: '', groups: [] },
        };
      }
    }
  }
}
