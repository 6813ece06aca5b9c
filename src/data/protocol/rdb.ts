import { lzfDecompress } from './lzf.js';
import { startBigValue, type BigPiece, type BigValue } from './rdb-big.js';

export type { BigPiece } from './rdb-big.js';

/**
 * An RDB file, parsed into keys (the full-sync half of the sync engine).
 * Pure: a Buffer in, entries out. Covers the encodings Redis 6.2
 * to 7.4 (and Valkey 8.0) write for strings, lists, sets, sorted sets, hashes
 * (with Redis 7.4's per-field TTLs) and streams (with consumer groups and
 * pending entries). Module types and Redis 7.0 RC functions stop with a clear
 * error; libraries (FUNCTION2) are kept as aux.
 */
export type RdbValue =
  | { type: 'string'; value: Buffer }
  | { type: 'list'; value: Buffer[] }
  | { type: 'set'; value: Buffer[] }
  | { type: 'zset'; value: Array<[Buffer, number]> }
  | { type: 'hash'; value: HashField[] }
  | { type: 'stream'; value: RdbStream };

/**
 * A hash field and its value, and (Redis 7.4 HEXPIRE) the absolute time in ms
 * at which the field expires; none for a field without a TTL of its own. Kept
 * per field so a value read in pieces (rdb-big.ts) carries each field's TTL
 * with it. A field already expired is still listed: the parser says what the
 * file holds, the writer decides what is still alive.
 */
export type HashField = [field: Buffer, value: Buffer, expireAtMs?: number];

/** A stream as the RDB stores it: entries, ids, and consumer groups with their pending entries. */
export interface RdbStream {
  entries: Array<{ id: string; fields: Buffer[] }>;
  length: number;
  lastId: string;
  /** RDB_TYPE_STREAM_LISTPACKS_2 and later. */
  firstId?: string;
  maxDeletedId?: string;
  entriesAdded?: number;
  groups: Array<{
    name: Buffer;
    lastId: string;
    entriesRead?: number;
    pending: Array<{ id: string; deliveryTimeMs: number; deliveryCount: number; consumer?: Buffer }>;
    consumers: Array<{ name: Buffer; seenTimeMs: number; activeTimeMs?: number; pending: string[] }>;
  }>;
}

export interface RdbEntry {
  db: number;
  key: Buffer;
  expireAtMs: number | null;
  value: RdbValue;
}
export interface RdbFile {
  version: number;
  aux: Record<string, string>;
  entries: RdbEntry[];
}

export class RdbError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`RDB at byte ${offset}: ${message}`);
    this.name = 'RdbError';
  }
}

/**
 * More bytes are needed: `until` is how far the reader wanted to read. Not
 * an Error: it is thrown at every chunk boundary of a streamed RDB, and an
 * Error's stack trace would cost more than the parse.
 */
export class Truncated {
  constructor(readonly until: number) {}
}

// Object types (rdb.h RDB_TYPE_*) and opcodes (RDB_OPCODE_*).
export const T = {
  STRING: 0,
  LIST: 1,
  SET: 2,
  ZSET: 3,
  HASH: 4,
  ZSET_2: 5,
  MODULE: 6,
  MODULE_2: 7,
  HASH_ZIPMAP: 9,
  LIST_ZIPLIST: 10,
  SET_INTSET: 11,
  ZSET_ZIPLIST: 12,
  HASH_ZIPLIST: 13,
  LIST_QUICKLIST: 14,
  STREAM_LISTPACKS: 15,
  HASH_LISTPACK: 16,
  ZSET_LISTPACK: 17,
  LIST_QUICKLIST_2: 18,
  STREAM_LISTPACKS_2: 19,
  SET_LISTPACK: 20,
  STREAM_LISTPACKS_3: 21,
  // Redis 7.4 hashes with field TTLs. PRE_GA: what the 7.4 release candidates wrote (no minimum
  // expiry first, and absolute TTLs in the metadata form); 7.4 GA still loads them, so do we.
  HASH_METADATA_PRE_GA: 22,
  HASH_LISTPACK_EX_PRE_GA: 23,
  HASH_METADATA: 24,
  HASH_LISTPACK_EX: 25,
} as const;
const OP = {
  SLOT_INFO: 0xf4,
  FUNCTION2: 0xf5,
  FUNCTION: 0xf6,
  MODULE_AUX: 0xf7,
  IDLE: 0xf8,
  FREQ: 0xf9,
  AUX: 0xfa,
  RESIZEDB: 0xfb,
  EXPIRETIME_MS: 0xfc,
  EXPIRETIME: 0xfd,
  SELECTDB: 0xfe,
  EOF: 0xff,
} as const;

export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Truncated(this.pos + n);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  /** Step over n bytes (no view made: skipping is most of a raw parse). */
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A length, or a special string encoding (then `enc` is set). */
  /** The string encoding the last length() read, or -1 for a plain length (a field, not an object: read once per string). */
  enc = -1;
  /** A length, or a special string encoding (then `enc` is set and the length is 0). */
  length(): number {
    const first = this.u8();
    const kind = first >> 6;
    this.enc = -1;
    if (kind === 0) return first & 0x3f;
    if (kind === 1) return ((first & 0x3f) << 8) | this.u8();
    if (kind === 3) {
      this.enc = first & 0x3f;
      return 0;
    }
    if (first === 0x80) {
      this.need(4);
      const v = this.buf.readUInt32BE(this.pos);
      this.pos += 4;
      return v;
    }
    if (first === 0x81) {
      const v = this.bytes(8).readBigUInt64BE(0);
      // 2^64-1 is how Redis writes "unknown" (-1) into an unsigned length (a group's entries_read).
      return v === 0xffffffffffffffffn ? -1 : Number(v);
    }
    throw new RdbError(`bad length byte 0x${first.toString(16)}`, this.pos - 1);
  }
  len(): number {
    const n = this.length();
    if (this.enc !== -1) throw new RdbError('a length was expected, found a string encoding', this.pos - 1);
    return n;
  }
  /** A string; `view`: a plain one is returned as a view of the input, not a copy. */
  string(view = false): Buffer {
    const n = this.length();
    const enc = this.enc;
    if (enc === -1) return view ? this.bytes(n) : Buffer.from(this.bytes(n));
    if (enc === 0) return Buffer.from(String(this.bytes(1).readInt8(0)));
    if (enc === 1) return Buffer.from(String(this.bytes(2).readInt16LE(0)));
    if (enc === 2) return Buffer.from(String(this.bytes(4).readInt32LE(0)));
    if (enc === 3) {
      const clen = this.len();
      const ulen = this.len();
      return lzfDecompress(this.bytes(clen), ulen);
    }
    throw new RdbError(`unknown string encoding ${enc}`, this.pos - 1);
  }
  /** Step over a string without decoding it (no LZF decompression). */
  skipString(): void {
    const n = this.length();
    const enc = this.enc;
    if (enc === -1) {
      this.skip(n);
      return;
    }
    if (enc <= 2) {
      this.skip(1 << enc);
      return;
    }
    if (enc === 3) {
      const clen = this.len();
      this.len();
      this.skip(clen);
      return;
    }
    throw new RdbError(`unknown string encoding ${enc}`, this.pos - 1);
  }
  /** A stream id written as two lengths (ms, seq). */
  streamId(): string {
    return `${this.bigLength()}-${this.bigLength()}`;
  }
  /** A length kept exact past 2^53 (stream id parts). */
  bigLength(): bigint {
    const first = this.buf[this.pos];
    if (first === 0x81) {
      this.pos++;
      return this.bytes(8).readBigUInt64BE(0);
    }
    return BigInt(this.len());
  }
  /** A stream id written raw: 16 bytes, ms and seq big-endian. */
  rawStreamId(): string {
    const b = this.bytes(16);
    return `${b.readBigUInt64BE(0)}-${b.readBigUInt64BE(8)}`;
  }
  u64le(): number {
    return Number(this.bytes(8).readBigUInt64LE(0));
  }
  /** The old text double of RDB_TYPE_ZSET. */
  textDouble(): number {
    const n = this.u8();
    if (n === 253) return NaN;
    if (n === 254) return Infinity;
    if (n === 255) return -Infinity;
    return Number(this.bytes(n).toString('ascii'));
  }
  binaryDouble(): number {
    return this.bytes(8).readDoubleLE(0);
  }
}

/** A listpack (listpack.c): total bytes, count, entries each followed by its back-length, 0xFF. */
export function parseListpack(lp: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 6;
  const backlen = (l: number) => (l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5);
  for (;;) {
    const b = lp[p];
    if (b === undefined) throw new RdbError('listpack without its end byte', p);
    if (b === 0xff) break;
    let entry: Buffer;
    let size: number;
    if ((b & 0x80) === 0) {
      entry = Buffer.from(String(b & 0x7f));
      size = 1;
    } else if ((b & 0xc0) === 0x80) {
      const n = b & 0x3f;
      entry = Buffer.from(lp.subarray(p + 1, p + 1 + n));
      size = 1 + n;
    } else if ((b & 0xe0) === 0xc0) {
      let v = ((b & 0x1f) << 8) | lp[p + 1]!;
      if (v >= 1 << 12) v -= 1 << 13;
      entry = Buffer.from(String(v));
      size = 2;
    } else if ((b & 0xf0) === 0xe0) {
      const n = ((b & 0x0f) << 8) | lp[p + 1]!;
      entry = Buffer.from(lp.subarray(p + 2, p + 2 + n));
      size = 2 + n;
    } else if (b === 0xf0) {
      const n = lp.readUInt32LE(p + 1);
      entry = Buffer.from(lp.subarray(p + 5, p + 5 + n));
      size = 5 + n;
    } else if (b === 0xf1) {
      entry = Buffer.from(String(lp.readInt16LE(p + 1)));
      size = 3;
    } else if (b === 0xf2) {
      entry = Buffer.from(String(lp.readIntLE(p + 1, 3)));
      size = 4;
    } else if (b === 0xf3) {
      entry = Buffer.from(String(lp.readInt32LE(p + 1)));
      size = 5;
    } else if (b === 0xf4) {
      entry = Buffer.from(String(lp.readBigInt64LE(p + 1)));
      size = 9;
    } else throw new RdbError(`unknown listpack entry encoding 0x${b.toString(16)}`, p);
    out.push(entry);
    p += size + backlen(size);
  }
  return out;
}

/** A ziplist (ziplist.c, Redis < 7): header, entries with prevlen + encoding, 0xFF. */
export function parseZiplist(zl: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 10;
  for (;;) {
    if (zl[p] === 0xff) break;
    p += zl[p] === 0xfe ? 5 : 1; // prevlen
    const b = zl[p]!;
    const top = b >> 6;
    if (top === 0) {
      const n = b & 0x3f;
      out.push(Buffer.from(zl.subarray(p + 1, p + 1 + n)));
      p += 1 + n;
    } else if (top === 1) {
      const n = ((b & 0x3f) << 8) | zl[p + 1]!;
      out.push(Buffer.from(zl.subarray(p + 2, p + 2 + n)));
      p += 2 + n;
    } else if (top === 2) {
      const n = zl.readUInt32BE(p + 1);
      out.push(Buffer.from(zl.subarray(p + 5, p + 5 + n)));
      p += 5 + n;
    } else if (b === 0xc0) {
      out.push(Buffer.from(String(zl.readInt16LE(p + 1))));
      p += 3;
    } else if (b === 0xd0) {
      out.push(Buffer.from(String(zl.readInt32LE(p + 1))));
      p += 5;
    } else if (b === 0xe0) {
      out.push(Buffer.from(String(zl.readBigInt64LE(p + 1))));
      p += 9;
    } else if (b === 0xf0) {
      out.push(Buffer.from(String(zl.readIntLE(p + 1, 3))));
      p += 4;
    } else if (b === 0xfe) {
      out.push(Buffer.from(String(zl.readInt8(p + 1))));
      p += 2;
    } else if (b >= 0xf1 && b <= 0xfd) {
      out.push(Buffer.from(String((b & 0x0f) - 1)));
      p += 1;
    } else throw new RdbError(`unknown ziplist entry encoding 0x${b.toString(16)}`, p);
  }
  return out;
}

/** An intset (intset.c): element width, count, sorted little-endian integers. */
export function parseIntset(is: Buffer): Buffer[] {
  const width = is.readUInt32LE(0);
  const count = is.readUInt32LE(4);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * width;
    const v = width === 2 ? is.readInt16LE(at) : width === 4 ? is.readInt32LE(at) : is.readBigInt64LE(at);
    out.push(Buffer.from(String(v)));
  }
  return out;
}

/** A score stored as text in a listpack or ziplist ("inf", "-inf", "1.5"). */
function score(b: Buffer): number {
  const t = b.toString().toLowerCase();
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  return Number(t);
}

const pairs = <A, B>(xs: Buffer[], f: (a: Buffer, b: Buffer) => [A, B]): Array<[A, B]> => {
  const out: Array<[A, B]> = [];
  for (let i = 0; i + 1 < xs.length; i += 2) out.push(f(xs[i]!, xs[i + 1]!));
  return out;
};

/**
 * A listpack-ex hash (Redis 7.4, RDB_TYPE_HASH_LISTPACK_EX): field, value,
 * TTL triplets; the TTL is the absolute expiry in ms, 0 for a field without
 * one (what redis-7.4.1 writes: its fields with a TTL first, soonest first).
 */
function listpackExFields(lp: Buffer[]): HashField[] {
  const out: HashField[] = [];
  for (let i = 0; i + 2 < lp.length; i += 3) {
    const ttl = Number(lp[i + 2]!.toString());
    out.push(ttl === 0 ? [lp[i]!, lp[i + 1]!] : [lp[i]!, lp[i + 1]!, ttl]);
  }
  return out;
}

/**
 * A hashtable hash with field TTLs (RDB_TYPE_HASH_METADATA): after the type,
 * the earliest field expiry (u64 ms, little-endian), the field count, then per
 * field its TTL as a length, the field, the value. The TTL is 0 for none,
 * else expiry - earliest + 1 (small numbers: a few bytes each). The 7.4
 * release candidates' form (PRE_GA) has no earliest expiry and absolute TTLs.
 * Reads the header; returns the reader of one field (rdb-big.ts reads a big
 * one a field at a time).
 */
export function hashMetadataReader(r: Reader, type: number): (r: Reader) => HashField {
  const min = type === T.HASH_METADATA ? r.u64le() : 1;
  return (rr) => {
    const ttl = rr.len();
    const field = rr.string();
    const value = rr.string();
    return ttl === 0 ? [field, value] : [field, value, ttl + min - 1];
  };
}

/** A hash in any of its encodings, Redis 2.6's to 7.4's (with field TTLs). */
function readHash(r: Reader, type: number): HashField[] {
  switch (type) {
    case T.HASH_ZIPLIST:
      return pairs(parseZiplist(r.string()), (f, v) => [f, v]);
    case T.HASH_LISTPACK:
      return pairs(parseListpack(r.string()), (f, v) => [f, v]);
    case T.HASH_LISTPACK_EX:
    case T.HASH_LISTPACK_EX_PRE_GA:
      if (type === T.HASH_LISTPACK_EX) r.skip(8); // the hash's earliest field expiry: a hint, each field has its own
      return listpackExFields(parseListpack(r.string()));
    default: {
      // RDB_TYPE_HASH (field, value pairs) and the same with a TTL before each field.
      const read =
        type === T.HASH ? (rr: Reader): HashField => [rr.string(), rr.string()] : hashMetadataReader(r, type);
      const n = r.len();
      const value: HashField[] = [];
      for (let i = 0; i < n; i++) value.push(read(r));
      return value;
    }
  }
}

function readValue(r: Reader, type: number): RdbValue {
  switch (type) {
    case T.STRING:
      return { type: 'string', value: r.string() };
    case T.LIST: {
      const n = r.len();
      return { type: 'list', value: Array.from({ length: n }, () => r.string()) };
    }
    case T.SET: {
      const n = r.len();
      return { type: 'set', value: Array.from({ length: n }, () => r.string()) };
    }
    case T.ZSET:
    case T.ZSET_2: {
      const n = r.len();
      const value: Array<[Buffer, number]> = [];
      for (let i = 0; i < n; i++) {
        const m = r.string();
        value.push([m, type === T.ZSET ? r.textDouble() : r.binaryDouble()]);
      }
      return { type: 'zset', value };
    }
    case T.HASH:
    case T.HASH_ZIPLIST:
    case T.HASH_LISTPACK:
    case T.HASH_LISTPACK_EX:
    case T.HASH_LISTPACK_EX_PRE_GA:
    case T.HASH_METADATA:
    case T.HASH_METADATA_PRE_GA:
      return { type: 'hash', value: readHash(r, type) };
    case T.LIST_ZIPLIST:
      return { type: 'list', value: parseZiplist(r.string()) };
    case T.SET_INTSET:
      return { type: 'set', value: parseIntset(r.string()) };
    case T.SET_LISTPACK:
      return { type: 'set', value: parseListpack(r.string()) };
    case T.ZSET_ZIPLIST:
      return { type: 'zset', value: pairs(parseZiplist(r.string()), (m, s) => [m, score(s)]) };
    case T.ZSET_LISTPACK:
      return { type: 'zset', value: pairs(parseListpack(r.string()), (m, s) => [m, score(s)]) };
    case T.LIST_QUICKLIST: {
      const n = r.len();
      const value: Buffer[] = [];
      for (let i = 0; i < n; i++) value.push(...parseZiplist(r.string()));
      return { type: 'list', value };
    }
    case T.LIST_QUICKLIST_2: {
      const n = r.len();
      const value: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const container = r.len();
        const blob = r.string();
        // 1: a plain node holding one big element; 2: a listpack of elements.
        if (container === 1) value.push(blob);
        else value.push(...parseListpack(blob));
      }
      return { type: 'list', value };
    }
    case T.STREAM_LISTPACKS:
    case T.STREAM_LISTPACKS_2:
    case T.STREAM_LISTPACKS_3:
      return { type: 'stream', value: readStream(r, type) };
    case T.MODULE:
    case T.MODULE_2:
      throw new RdbError(
        'a module type (ReJSON, search, ...) cannot be carried: its data is opaque to anything but the module',
        r.pos,
      );
    case T.HASH_ZIPMAP:
      throw new RdbError('zipmap hashes (Redis 2.x) are not supported', r.pos);
    default:
      throw new RdbError(`unknown object type ${type}`, r.pos - 1);
  }
}

/**
 * A stream node's listpack (t_stream.c): a master entry (count, deleted,
 * master field names, 0), then entries of flags, ms-diff, seq-diff, their
 * values (only values when they share the master fields), and a count.
 */
export function streamNode(nodeKey: Buffer, lp: Buffer[]): Array<{ id: string; fields: Buffer[] }> {
  const masterMs = nodeKey.readBigUInt64BE(0);
  const masterSeq = nodeKey.readBigUInt64BE(8);
  const num = (b: Buffer | undefined) => Number(b!.toString());
  let i = 0;
  const count = num(lp[i++]);
  const deleted = num(lp[i++]);
  const nMaster = num(lp[i++]);
  const masterFields = lp.slice(i, i + nMaster);
  i += nMaster + 1; // the master entry's terminating 0
  const out: Array<{ id: string; fields: Buffer[] }> = [];
  for (let e = 0; e < count + deleted; e++) {
    const flags = num(lp[i++]);
    const id = `${masterMs + BigInt(lp[i++]!.toString())}-${masterSeq + BigInt(lp[i++]!.toString())}`;
    let fields: Buffer[];
    if (flags & 2) {
      fields = masterFields.flatMap((f) => [f, lp[i++]!]);
    } else {
      const n = num(lp[i++]);
      fields = lp.slice(i, i + 2 * n);
      i += 2 * n;
    }
    i++; // lp-count of the entry
    if (!(flags & 1)) out.push({ id, fields });
  }
  return out;
}

function readStream(r: Reader, type: number): RdbStream {
  const nodes = r.len();
  const entries: RdbStream['entries'] = [];
  for (let n = 0; n < nodes; n++) entries.push(...readStreamNode(r));
  return readStreamTrailer(r, type, entries);
}

/** One node of a stream: its 16-byte key (master id) and its listpack of entries. */
export function readStreamNode(r: Reader): RdbStream['entries'] {
  const key = r.string();
  if (key.length !== 16) throw new RdbError(`stream node key of ${key.length} bytes`, r.pos);
  return streamNode(key, parseListpack(r.string()));
}

/** What follows a stream's nodes: length, ids, consumer groups with their pending entries. */
export function readStreamTrailer(r: Reader, type: number, entries: RdbStream['entries']): RdbStream {
  const s: RdbStream = { entries, length: r.len(), lastId: r.streamId(), groups: [] };
  if (type >= T.STREAM_LISTPACKS_2) {
    s.firstId = r.streamId();
    s.maxDeletedId = r.streamId();
    s.entriesAdded = r.len();
  }
  const groups = r.len();
  for (let g = 0; g < groups; g++) {
    const name = r.string();
    const lastId = r.streamId();
    const read = type >= T.STREAM_LISTPACKS_2 ? r.len() : undefined;
    const entriesRead = read === undefined || read < 0 ? undefined : read;
    const pel = r.len();
    const pending: RdbStream['groups'][number]['pending'] = [];
    for (let p = 0; p < pel; p++)
      pending.push({ id: r.rawStreamId(), deliveryTimeMs: r.u64le(), deliveryCount: r.len() });
    const nConsumers = r.len();
    const consumers: RdbStream['groups'][number]['consumers'] = [];
    for (let c = 0; c < nConsumers; c++) {
      const cname = r.string();
      const seenTimeMs = r.u64le();
      const activeTimeMs = type >= T.STREAM_LISTPACKS_3 ? r.u64le() : undefined;
      const n = r.len();
      const ids: string[] = [];
      for (let k = 0; k < n; k++) ids.push(r.rawStreamId());
      consumers.push({ name: cname, seenTimeMs, activeTimeMs, pending: ids });
      for (const id of ids) {
        const p = pending.find((x) => x.id === id);
        if (p) p.consumer = cname;
      }
    }
    s.groups.push({ name, lastId, entriesRead, pending, consumers });
  }
  return s;
}

/**
 * Step over one value, finding where it ends without decoding it: the full
 * sync copies most values as they are (RESTORE payloads), so only their
 * extent is needed.
 */
function skipValue(r: Reader, type: number): void {
  const strings = (n: number) => {
    for (let i = 0; i < n; i++) r.skipString();
  };
  switch (type) {
    case T.STRING:
    case T.LIST_ZIPLIST:
    case T.SET_INTSET:
    case T.SET_LISTPACK:
    case T.ZSET_ZIPLIST:
    case T.ZSET_LISTPACK:
    case T.HASH_ZIPLIST:
    case T.HASH_LISTPACK:
    case T.HASH_LISTPACK_EX_PRE_GA:
      r.skipString();
      return;
    case T.HASH_LISTPACK_EX:
      r.skip(8);
      r.skipString();
      return;
    case T.HASH_METADATA:
    case T.HASH_METADATA_PRE_GA: {
      if (type === T.HASH_METADATA) r.skip(8);
      const n = r.len();
      for (let i = 0; i < n; i++) {
        r.len();
        r.skipString();
        r.skipString();
      }
      return;
    }
    case T.LIST:
    case T.SET:
    case T.LIST_QUICKLIST:
      strings(r.len());
      return;
    case T.HASH:
      strings(2 * r.len());
      return;
    case T.ZSET: {
      const n = r.len();
      for (let i = 0; i < n; i++) {
        r.skipString();
        const d = r.u8();
        if (d < 253) r.skip(d);
      }
      return;
    }
    case T.ZSET_2: {
      const n = r.len();
      for (let i = 0; i < n; i++) {
        r.skipString();
        r.skip(8);
      }
      return;
    }
    case T.LIST_QUICKLIST_2: {
      const n = r.len();
      for (let i = 0; i < n; i++) {
        r.len();
        r.skipString();
      }
      return;
    }
    case T.STREAM_LISTPACKS:
    case T.STREAM_LISTPACKS_2:
    case T.STREAM_LISTPACKS_3:
      skipStream(r, type);
      return;
    default:
      readValue(r, type); // the errors for what cannot be carried
  }
}

/** Step over a stream: the layout readStream reads, nothing decoded. */
function skipStream(r: Reader, type: number): void {
  const id = () => {
    r.len();
    r.len();
  };
  const nodes = r.len();
  for (let i = 0; i < nodes; i++) {
    r.skipString();
    r.skipString();
  }
  r.len(); // length
  id(); // last id
  if (type >= T.STREAM_LISTPACKS_2) {
    id();
    id();
    r.len();
  }
  const groups = r.len();
  for (let g = 0; g < groups; g++) {
    r.skipString();
    id();
    if (type >= T.STREAM_LISTPACKS_2) r.len();
    const pel = r.len();
    for (let p = 0; p < pel; p++) {
      r.skip(24);
      r.len();
    }
    const consumers = r.len();
    for (let c = 0; c < consumers; c++) {
      r.skipString();
      r.skip(type >= T.STREAM_LISTPACKS_3 ? 16 : 8);
      r.skip(16 * r.len());
    }
  }
}

/**
 * An entry as the RDB stores it, not decoded: its object type and a view of
 * its value's bytes in the input (no copy: a RESTORE frame is written
 * straight from it, resp-pipe.ts).
 */
export interface RawEntry {
  db: number;
  key: Buffer;
  expireAtMs: number | null;
  type: number;
  value: Buffer;
}

/** The object's bytes as a DUMP payload starts with them: type byte, then value. */
export function objectBytes(e: RawEntry): Buffer {
  const b = Buffer.allocUnsafe(1 + e.value.length);
  b[0] = e.type;
  e.value.copy(b, 1);
  return b;
}

/** Decode a raw entry's value (for rebuilding it with type commands). */
export function decodeRaw(e: RawEntry): RdbValue {
  return readValue(new Reader(e.value), e.type);
}

/**
 * An RDB parsed as it arrives (a replication link delivers it in chunks):
 * `push` returns the entries completed so far. An entry cut by a chunk
 * boundary is parsed again from its start once enough bytes are in, and the
 * parser waits for the buffered bytes to double before trying again, so a
 * big key spread over many chunks costs linear, not quadratic, work.
 *
 * With `bigBytes` (raw mode), a value found to be at least that big while
 * its bytes are still arriving is not held whole: it is read a piece at a
 * time as they come (rdb-big.ts) and returned as BigPieces, so the memory a
 * parse needs does not grow with the size of the biggest key.
 */
export class RdbParser {
  version = 0;
  readonly aux: Record<string, string> = {};
  done = false;
  /** Keys the saving server counted at its fork (the RESIZEDB sizes, summed over databases), once read. */
  keysAtSave: number | null = null;
  /** Bytes consumed so far (entries completed). */
  consumed = 0;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private chunks: Buffer[] = [];
  private chunked = 0;
  private want = 9;
  private db = 0;
  private expireAtMs: number | null = null;
  private started = false;
  private big: BigValue | undefined;

  constructor(private readonly o: { raw?: boolean; bigBytes?: number } = {}) {}

  /** Bytes held: received but not yet returned as entries or pieces. */
  get buffered(): number {
    return this.buf.length - this.pos + this.chunked;
  }

  /** Everything `feed` yields for this chunk, at once (a whole file, a test). */
  push(chunk: Buffer, final = false): Array<RdbEntry | RawEntry | BigPiece> {
    return [...this.feed(chunk, final)];
  }

  /**
   * The entries (and big values' pieces) completed with this chunk, one at a
   * time as the caller takes them: nothing is decoded before it is asked
   * for. The sync loads each before taking the next, so what the runner
   * holds is bounded by the target's pace, not by how much RDB one pass
   * covers: 8 MB of a stream's RDB, whose entries share field names, is
   * hundreds of thousands of entries once decoded. Take every entry before
   * the next call.
   */
  *feed(chunk: Buffer, final = false): Generator<RdbEntry | RawEntry | BigPiece> {
    if (this.done) return;
    this.chunks.push(chunk);
    this.chunked += chunk.length;
    if (!final && this.buf.length - this.pos + this.chunked < this.want) return;
    this.buf = Buffer.concat([this.buf.subarray(this.pos), ...this.chunks]);
    this.pos = 0;
    this.chunks = [];
    this.chunked = 0;
    const r = new Reader(this.buf);
    while (!this.done) {
      const start = r.pos;
      if (this.big) {
        const s = this.big.step(r);
        this.consumed += r.pos - start;
        this.pos = r.pos;
        if ('need' in s) {
          this.want = s.need - r.pos;
          break;
        }
        if (s.piece.last) this.big = undefined;
        yield s.piece;
        continue;
      }
      let e: RdbEntry | RawEntry | undefined;
      try {
        e = this.next(r);
        this.consumed += r.pos - start;
        this.pos = r.pos;
      } catch (err) {
        if (!(err instanceof Truncated)) throw err;
        this.pos = start;
        const have = this.buf.length - start;
        if (
          this.o.raw &&
          this.o.bigBytes !== undefined &&
          Math.max(err.until, this.buf.length) - start >= this.o.bigBytes &&
          this.startBig(r, start)
        )
          continue;
        // Doubling what is held finds an entry's end in few passes, but past bigBytes it would
        // hold up to twice that of one value before seeing it is big: a value just under
        // 2 x bigBytes arrived whole and, over bigKeyBytes, was decoded whole. Stop at bigBytes.
        const grow = 2 * have;
        this.want = Math.max(
          err.until - start,
          this.o.raw && this.o.bigBytes !== undefined && have < this.o.bigBytes
            ? Math.min(grow, this.o.bigBytes)
            : grow,
        );
        break;
      }
      if (e) yield e;
    }
  }

  /** The entry at `start` is a key whose value is big and still arriving: read it in pieces from here on. */
  private startBig(r: Reader, start: number): boolean {
    r.pos = start;
    try {
      const type = r.u8();
      if (type >= OP.FUNCTION2) return false;
      const key = Buffer.from(r.string(true));
      this.big = startBigValue(r, type, { db: this.db, key, expireAtMs: this.expireAtMs });
    } catch (err) {
      if (!(err instanceof Truncated)) throw err;
      this.big = undefined;
    }
    if (!this.big) {
      r.pos = start;
      return false;
    }
    this.expireAtMs = null;
    this.consumed += r.pos - start;
    this.pos = r.pos;
    return true;
  }

  /** The link says the RDB is complete: the entries still held back; it must have ended with its EOF opcode. */
  end(): Array<RdbEntry | RawEntry | BigPiece> {
    return [...this.rest()];
  }

  /** `end`, one entry at a time (see `feed`). */
  *rest(): Generator<RdbEntry | RawEntry | BigPiece> {
    yield* this.feed(Buffer.alloc(0), true);
    if (!this.done)
      throw new RdbError('the RDB ended before its EOF marker (a cut-off transfer)', this.consumed + this.chunked);
  }

  private next(r: Reader): RdbEntry | RawEntry | undefined {
    if (!this.started) {
      const magic = r.bytes(5).toString('ascii');
      if (magic !== 'REDIS') throw new RdbError(`not an RDB file (starts with ${JSON.stringify(magic)})`, 0);
      this.version = Number(r.bytes(4).toString('ascii'));
      this.started = true;
      return undefined;
    }
    const op = r.u8();
    if (op === OP.EOF) {
      this.done = true;
      return undefined;
    }
    if (op === OP.AUX) {
      const k = r.string().toString();
      this.aux[k] = r.string().toString();
      return undefined;
    }
    if (op === OP.SELECTDB) {
      this.db = r.len();
      return undefined;
    }
    if (op === OP.RESIZEDB) {
      this.keysAtSave = (this.keysAtSave ?? 0) + r.len();
      r.len();
      return undefined;
    }
    if (op === OP.EXPIRETIME_MS) {
      this.expireAtMs = Number(r.bytes(8).readBigUInt64LE(0));
      return undefined;
    }
    if (op === OP.EXPIRETIME) {
      this.expireAtMs = r.bytes(4).readUInt32LE(0) * 1000;
      return undefined;
    }
    if (op === OP.IDLE) {
      r.len();
      return undefined;
    }
    if (op === OP.FREQ) {
      r.u8();
      return undefined;
    }
    if (op === OP.SLOT_INFO) {
      // Redis 7.4 (RDB 12), cluster mode: before each slot's keys, the slot and its key and
      // expire counts, a sizing hint for the loader. Nothing of the data.
      r.len();
      r.len();
      r.len();
      return undefined;
    }
    if (op === OP.FUNCTION2) {
      this.aux[`function:${Object.keys(this.aux).length}`] = r.string().toString();
      return undefined;
    }
    if (op === OP.FUNCTION || op === OP.MODULE_AUX)
      throw new RdbError(
        `opcode 0x${op.toString(16)} (${op === OP.FUNCTION ? 'Redis 7.0 RC functions' : 'module aux data'}) is not supported`,
        r.pos - 1,
      );
    // The key is a view of the input while it is parsed raw: one copy less per key (the input
    // chunk lives until the key's RESTORE is sent).
    const key = r.string(this.o.raw);
    let e: RdbEntry | RawEntry;
    if (this.o.raw) {
      const valueAt = r.pos;
      skipValue(r, op);
      e = { db: this.db, key, expireAtMs: this.expireAtMs, type: op, value: this.buf.subarray(valueAt, r.pos) };
    } else {
      e = { db: this.db, key, expireAtMs: this.expireAtMs, value: readValue(r, op) };
    }
    this.expireAtMs = null;
    return e;
  }
}

/** A whole RDB file in one Buffer. */
export function parseRdb(buf: Buffer): RdbFile {
  const p = new RdbParser();
  const entries = [...p.push(buf), ...p.end()] as RdbEntry[];
  return { version: p.version, aux: p.aux, entries };
}
