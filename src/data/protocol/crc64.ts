/**
 * CRC-64 as Redis computes it for DUMP payloads and RDB files (crc64.c:
 * the Jones polynomial, reflected, initial value 0, no final xor). The
 * 64-bit register is kept as two 32-bit halves: BigInt arithmetic per byte
 * would cost more than the rest of a full sync.
 */
const POLY_HI = 0x95ac9329;
const POLY_LO = 0xac4bc9b5;
const T_HI = new Uint32Array(256);
const T_LO = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let hi = 0;
  let lo = n;
  for (let k = 0; k < 8; k++) {
    const low = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (low) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  T_HI[n] = hi;
  T_LO[n] = lo;
}

// Slicing-by-8: table k advances the CRC over a byte followed by k zero bytes, so eight
// bytes cost sixteen lookups instead of eight dependent steps.
const S_HI = new Uint32Array(8 * 256);
const S_LO = new Uint32Array(8 * 256);
S_HI.set(T_HI);
S_LO.set(T_LO);
for (let k = 1; k < 8; k++) {
  for (let n = 0; n < 256; n++) {
    const phi = S_HI[(k - 1) * 256 + n]!;
    const plo = S_LO[(k - 1) * 256 + n]!;
    const idx = plo & 0xff;
    S_LO[k * 256 + n] = (((plo >>> 8) | (phi << 24)) ^ T_LO[idx]!) >>> 0;
    S_HI[k * 256 + n] = ((phi >>> 8) ^ T_HI[idx]!) >>> 0;
  }
}

/** Write the CRC of b[start, end) at b[end, end + 8), little-endian (the DUMP footer's byte order). */
export function crcInto(b: Buffer, end: number, start = 0): void {
  let hi = 0;
  let lo = 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const xl = (lo ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))) >>> 0;
    const xh = (hi ^ (b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24))) >>> 0;
    const a = 7 * 256 + (xl & 0xff),
      c = 6 * 256 + ((xl >>> 8) & 0xff),
      d = 5 * 256 + ((xl >>> 16) & 0xff),
      e = 4 * 256 + (xl >>> 24);
    const f = 3 * 256 + (xh & 0xff),
      g = 2 * 256 + ((xh >>> 8) & 0xff),
      h = 256 + ((xh >>> 16) & 0xff),
      k = xh >>> 24;
    lo = (S_LO[a]! ^ S_LO[c]! ^ S_LO[d]! ^ S_LO[e]! ^ S_LO[f]! ^ S_LO[g]! ^ S_LO[h]! ^ S_LO[k]!) >>> 0;
    hi = (S_HI[a]! ^ S_HI[c]! ^ S_HI[d]! ^ S_HI[e]! ^ S_HI[f]! ^ S_HI[g]! ^ S_HI[h]! ^ S_HI[k]!) >>> 0;
  }
  for (; i < end; i++) {
    const idx = (lo ^ b[i]!) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ T_LO[idx]!) >>> 0;
    hi = ((hi >>> 8) ^ T_HI[idx]!) >>> 0;
  }
  b.writeUInt32LE(lo, end);
  b.writeUInt32LE(hi, end + 4);
}

/** The CRC of `data`, as 8 little-endian bytes. */
export function crc64(data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(data.length + 8);
  data.copy(b);
  crcInto(b, data.length);
  return b.subarray(data.length);
}

/**
 * A RESTORE payload from an object's bytes as an RDB stores them (its type
 * byte, then its value): Redis appends the RDB version (2 bytes, LE) and the
 * CRC-64 of everything before it (rdbSaveObjectType + rdbSaveObject + footer,
 * cluster.c createDumpPayload).
 */
export function dumpPayload(objectBytes: Buffer, rdbVersion: number): Buffer {
  const n = objectBytes.length;
  const b = Buffer.allocUnsafe(n + 10);
  objectBytes.copy(b);
  b.writeUInt16LE(rdbVersion, n);
  crcInto(b, n + 2);
  return b;
}

/** The RDB version in a DUMP payload's footer. */
export function payloadVersion(payload: Buffer): number {
  return payload.readUInt16LE(payload.length - 10);
}
