import type { KeyRead, VerifyMode } from './key-read.js';

export type DifferenceKind = 'missing' | 'extra' | 'type' | 'value' | 'ttl' | 'field-ttl';

export interface Difference {
  key: Buffer;
  kind: DifferenceKind;
  source: string;
  target: string;
}

/** Outcome of comparing one key from what both sides said. */
export type Verdict =
  | { same: true }
  | { same: false; kind: DifferenceKind; source: string; target: string }
  | { page: true }
  /** Both sides gave digests, and they differ: read the values to name the difference. */
  | { reread: true };

export const ttlText = (pttl: number) => (pttl === -1 ? 'no TTL' : pttl < 0 ? 'gone' : `TTL ${pttl} ms`);

/**
 * Compare one key (pure). Scores compare exactly (as Redis prints them, and
 * as numbers); hashes, sets and zsets compare as collections since both sides
 * may iterate in different orders. A key with more than one page on either
 * side is handed to the paged comparison.
 */
export function compareKey(
  src: KeyRead,
  tgt: KeyRead,
  mode: VerifyMode,
  ttlToleranceMs: number | undefined, // undefined: TTLs are not compared
): Verdict {
  if (tgt.type === 'none') return { same: false, kind: 'missing', source: src.type, target: 'no such key' };
  if (src.type !== tgt.type) return { same: false, kind: 'type', source: src.type, target: tgt.type };
  if (mode === 'keys') return { same: true };

  // Digests (full mode's first pass): equal ones settle the value, unequal ones need the values.
  if (mode === 'full' && src.digest !== undefined && tgt.digest !== undefined) {
    if (src.digest !== tgt.digest) return { reread: true };
  } else if (mode === 'full' && !src.more && !tgt.more) {
    // Full mode names the first differing element when both values are at hand; the length
    // then only catches what the target has in excess (a set member the source lacks).
    const v = compareValue(src, tgt);
    if (v) return { same: false, kind: 'value', source: v[0], target: v[1] };
  }
  if (mode === 'full' && (src.more || tgt.more)) return { page: true };
  if (src.length !== tgt.length)
    return {
      same: false,
      kind: 'value',
      source: `${src.type} length ${src.length}`,
      target: `${tgt.type} length ${tgt.length}`,
    };
  const ttlDiff = ttlToleranceMs !== undefined && compareTtl(src.pttl, tgt.pttl, ttlToleranceMs);
  if (ttlDiff) return { same: false, kind: 'ttl', source: ttlText(src.pttl), target: ttlText(tgt.pttl) };
  return { same: true };
}

export function compareTtl(src: number, tgt: number, toleranceMs: number): boolean {
  if (src === -1 || tgt === -1) return src !== tgt;
  return Math.abs(src - tgt) > toleranceMs;
}

/**
 * What one side says about the own TTLs of some hash fields (Redis 7.4 HEXPIRE): the
 * HPEXPIRETIME reply, one absolute expiry in Unix ms per field (-1: no TTL, -2: no such
 * field), or why that side was not asked (its server cannot hold field TTLs).
 */
export type FieldExpiry = { at: number[] } | { cannot: string };

export const fieldTtlText = (at: number) =>
  at === -1 ? 'no TTL' : at === -2 ? 'absent' : `expires ${new Date(at).toISOString()}`;

/**
 * The first of `fields` whose own TTL differs, as [source, target], or undefined (pure).
 * The rule is the key TTLs' one (compareTtl): a TTL on one side only differs, two TTLs
 * differ by more than the tolerance. These are absolute times, which do not tick while
 * read (PTTLs do, so keys add the read time to the slack): the configured tolerance is
 * the whole slack. A side that cannot hold field TTLs has none, and says why: a field
 * TTL the other side has was lost, a real difference.
 */
export function compareFieldTtls(
  fields: Buffer[],
  src: FieldExpiry,
  tgt: FieldExpiry,
  toleranceMs: number,
): [string, string] | undefined {
  const at = (x: FieldExpiry, i: number) => ('at' in x ? (x.at[i] ?? -2) : -1);
  for (let i = 0; i < fields.length; i++) {
    const [a, b] = [at(src, i), at(tgt, i)];
    if (!compareTtl(a, b, toleranceMs)) continue;
    const name = `field ${JSON.stringify(fields[i]!.toString())}`;
    const side = (x: FieldExpiry, t: number) =>
      'cannot' in x ? `${name} ${fieldTtlText(t)} (${x.cannot})` : `${name} ${fieldTtlText(t)}`;
    return [side(src, a), side(tgt, b)];
  }
  return undefined;
}

export const sameScore = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && (a === b || Number(a) === Number(b));

const show = (b: Buffer | undefined) => {
  if (!b) return '(none)';
  const s = b.toString('utf8');
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
};

/** The first difference in value, as [source summary, target summary], or undefined. */
function compareValue(src: KeyRead, tgt: KeyRead): [string, string] | undefined {
  switch (src.type) {
    case 'string':
      return src.string!.equals(tgt.string!) ? undefined : [`string ${show(src.string)}`, `string ${show(tgt.string)}`];
    case 'list': {
      const i = src.list!.findIndex((e, k) => !tgt.list![k] || !e.equals(tgt.list![k]!));
      return i === -1 ? undefined : [`list[${i}] = ${show(src.list![i])}`, `list[${i}] = ${show(tgt.list![i])}`];
    }
    case 'hash':
    case 'set':
    case 'zset':
      return sameBuffers(src.flat!, tgt.flat!) ? undefined : collectionDiff(src.type, src.flat!, tgt.flat!);
    case 'stream':
      return streamDiff(src.stream!, tgt.stream!);
  }
  return undefined;
}

function sameBuffers(a: Buffer[], b: Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!a[i]!.equals(b[i]!)) return false;
  return true;
}

/** The order differs (or the content does): compare as collections. */
function collectionDiff(type: string, a: Buffer[], b: Buffer[]): [string, string] | undefined {
  const key = (x: Buffer) => x.toString('latin1');
  if (type === 'set') {
    const other = new Set(b.map(key));
    for (const m of a) if (!other.has(key(m))) return [`member ${JSON.stringify(m.toString())}`, 'member absent'];
    return undefined;
  }
  const other = new Map<string, Buffer>();
  for (let i = 0; i < b.length; i += 2) other.set(key(b[i]!), b[i + 1]!);
  for (let i = 0; i < a.length; i += 2) {
    const name = a[i]!.toString();
    const mine = a[i + 1]!;
    const theirs = other.get(key(a[i]!));
    if (type === 'hash' && (!theirs || !theirs.equals(mine)))
      return [`field ${JSON.stringify(name)} = ${show(mine)}`, `field ${JSON.stringify(name)} = ${show(theirs)}`];
    if (type === 'zset' && !sameScore(mine.toString(), theirs?.toString())) {
      return [
        `member ${JSON.stringify(name)} score ${mine}`,
        theirs === undefined ? 'member absent' : `member ${JSON.stringify(name)} score ${theirs}`,
      ];
    }
  }
  return undefined;
}

export function streamDiff(a: Array<[string, Buffer[]]>, b: Array<[string, Buffer[]]>): [string, string] | undefined {
  for (let i = 0; i < a.length; i++) {
    const [id, fields] = a[i]!;
    const other = b[i];
    if (!other || other[0] !== id) return [`entry ${i} id ${id}`, other ? `entry ${i} id ${other[0]}` : 'entry absent'];
    if (fields.length !== other[1].length || fields.some((f, k) => !f.equals(other[1][k]!)))
      return [`entry ${id} fields differ`, `entry ${id}`];
  }
  return undefined;
}

/** A key, printable: UTF-8 as is, other bytes escaped. */
export function printableKey(key: Buffer): string {
  const s = key.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(key) && !/[\x00-\x1f\x7f]/.test(s)) return s;
  return [...key]
    .map((b) =>
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
    )
    .join('');
}
