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
