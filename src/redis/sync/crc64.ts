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
    if (low) { hi = (hi ^ POLY_HI) >>> 0; lo = (lo ^ POLY_LO) >>> 0; }
  }
  T_HI[n] = hi;
  T_LO[n] = lo;
}

/** Write the CRC of b[start, end) at b[end, end + 8), little-endian (the DUMP footer's byte order). */
export function crcInto(b: Buffer, end: number, start = 0): void {
  let hi = 0;
  let lo = 0;
  for (let i = start; i < end; i++) {
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
