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

/** The CRC of `parts` in sequence, as 8 little-endian bytes (the DUMP footer's byte order). */
export function crc64(...parts: Buffer[]): Buffer {
  let hi = 0;
  let lo = 0;
  for (const b of parts) {
    for (let i = 0; i < b.length; i++) {
      const idx = (lo ^ b[i]!) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ T_LO[idx]!) >>> 0;
      hi = ((hi >>> 8) ^ T_HI[idx]!) >>> 0;
    }
  }
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32LE(lo, 0);
  out.writeUInt32LE(hi, 4);
  return out;
}

/**
 * A RESTORE payload from an object's bytes as an RDB stores them (its type
 * byte, then its value): Redis appends the RDB version (2 bytes, LE) and the
 * CRC-64 of everything before it (rdbSaveObjectType + rdbSaveObject + footer,
 * cluster.c createDumpPayload).
 */
export function dumpPayload(objectBytes: Buffer, rdbVersion: number): Buffer {
  const ver = Buffer.from([rdbVersion & 0xff, (rdbVersion >> 8) & 0xff]);
  return Buffer.concat([objectBytes, ver, crc64(objectBytes, ver)]);
}

/** The RDB version in a DUMP payload's footer. */
export function payloadVersion(payload: Buffer): number {
  return payload.readUInt16LE(payload.length - 10);
}
