/** LZF decompression (liblzf's format, as Redis writes compressed RDB strings). Pure. */
export function lzfDecompress(input: Buffer, outLen: number): Buffer {
  const out = Buffer.alloc(outLen);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      // A literal run of ctrl + 1 bytes.
      const n = ctrl + 1;
      if (op + n > outLen || ip + n > input.length) throw new Error('LZF: literal run past the end');
      input.copy(out, op, ip, ip + n);
      ip += n;
      op += n;
    } else {
      // A back reference: length in the top 3 bits (7 = one more length byte), offset in 13 bits.
      let len = ctrl >> 5;
      if (len === 7) len += input[ip++]!;
      len += 2;
      const ref = op - ((ctrl & 0x1f) << 8) - input[ip++]! - 1;
      if (ref < 0 || op + len > outLen) throw new Error('LZF: back reference out of range');
      for (let i = 0; i < len; i++) out[op++] = out[ref + i]!;
    }
  }
  if (op !== outLen) throw new Error(`LZF: expected ${outLen} bytes, got ${op}`);
  return out;
}

/** LZF's longest back reference: what must be kept of earlier output. */
const WINDOW = 8192;

/**
 * LZF decompression a piece at a time, for a compressed value too big to
 * hold whole: output goes out in pieces of about `piece` bytes, and only the
 * last 8 KiB (the farthest a back reference reaches) is kept between them.
 */
export class LzfStream {
  produced = 0;
  // History (up to WINDOW bytes), then this piece's output; a token writes at most 264 bytes past a full piece.
  private readonly buf: Buffer;
  private hist = 0;

  constructor(
    readonly outLen: number,
    private readonly piece = 64 * 1024,
  ) {
    this.buf = Buffer.alloc(WINDOW + piece + 512);
  }

  /** Decode the whole tokens of input[at, end): a copy of their output, and how far the input was read. */
  decode(input: Buffer, at: number, end: number): { out: Buffer; at: number } {
    let op = this.hist;
    let ip = at;
    while (ip < end && op - this.hist < this.piece) {
      const ctrl = input[ip]!;
      if (ctrl < 32) {
        const n = ctrl + 1;
        if (ip + 1 + n > end) break;
        input.copy(this.buf, op, ip + 1, ip + 1 + n);
        op += n;
        ip += 1 + n;
        continue;
      }
      let p = ip + 1;
      let len = ctrl >> 5;
      if (len === 7) {
        if (p >= end) break;
        len += input[p++]!;
      }
      if (p >= end) break;
      len += 2;
      const ref = op - ((ctrl & 0x1f) << 8) - input[p++]! - 1;
      if (ref < 0) throw new Error('LZF: back reference out of range');
      for (let i = 0; i < len; i++) this.buf[op++] = this.buf[ref + i]!;
      ip = p;
    }
    const out = Buffer.from(this.buf.subarray(this.hist, op));
    this.produced += out.length;
    if (this.produced > this.outLen) throw new Error(`LZF: more than the expected ${this.outLen} bytes`);
    const keep = Math.min(WINDOW, op);
    this.buf.copy(this.buf, 0, op - keep, op);
    this.hist = keep;
    return { out, at: ip };
  }
}
