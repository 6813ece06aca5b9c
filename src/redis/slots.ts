/** Slot maths for Redis Cluster: pure, no server. */

export const SLOT_COUNT = 16384;

// CRC16-XMODEM (poly 0x1021, init 0), table-driven as in redis src/crc16.c.
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

export function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/**
 * The slot of a key. Hash tags: if the key has `{` and a later `}` with at
 * least one byte between them, only that part is hashed (cluster.c keyHashSlot).
 */
export function keySlot(key: string | Uint8Array): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) & (SLOT_COUNT - 1);
  }
  return crc16(bytes) & (SLOT_COUNT - 1);
}

export type SlotRange = readonly [start: number, end: number];

/** Sorted, merged ranges from a list of slots. */
export function toRanges(slots: Iterable<number>): SlotRange[] {
  const sorted = [...new Set(slots)].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === s - 1) last[1] = s;
    else out.push([s, s]);
  }
  return out;
}

export function rangesToSlots(ranges: readonly SlotRange[]): number[] {
  const out: number[] = [];
  for (const [a, b] of ranges) for (let s = a; s <= b; s++) out.push(s);
  return out;
}

export function countSlots(ranges: readonly SlotRange[]): number {
  return ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
}

export function formatRanges(ranges: readonly SlotRange[]): string {
  if (ranges.length === 0) return '(none)';
  return ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

/** The inverse of formatRanges ("0-5460,5462"). */
export function parseRanges(text: string): SlotRange[] {
  if (text === '(none)') return [];
  return text.split(',').map((part) => {
    const [a, b] = part.split('-').map(Number);
    return [a!, b ?? a!] as const;
  });
}

/** Split 0..16383 evenly over n masters, as redis-cli --cluster create does. */
export function evenRanges(n: number): SlotRange[] {
  const out: SlotRange[] = [];
  const per = SLOT_COUNT / n;
  let first = 0;
  for (let i = 0; i < n; i++) {
    const last = i === n - 1 ? SLOT_COUNT - 1 : Math.round(per * (i + 1)) - 1;
    out.push([first, last]);
    first = last + 1;
  }
  return out;
}

let slotKeyCache: Buffer[] | undefined;
/** A short key of the given slot (found once for all slots): to ask a router who owns a slot. */
export function slotKey(slot: number): Buffer {
  if (!slotKeyCache) {
    const out: Array<Buffer | undefined> = new Array(SLOT_COUNT);
    let found = 0;
    for (let i = 0; found < SLOT_COUNT; i++) {
      const s = keySlot(String(i));
      if (!out[s]) {
        out[s] = Buffer.from(String(i));
        found++;
      }
    }
    slotKeyCache = out as Buffer[];
  }
  return slotKeyCache[slot]!;
}
