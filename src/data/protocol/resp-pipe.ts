import type { Socket } from 'node:net';
import type { Command } from '../writer/apply.js';
import { crcInto } from './crc64.js';
import { parseAddress } from '../../inventory/load.js';
import type { TlsConfig } from '../../inventory/types.js';
import { NET_LIMITS, openSocket } from '../../redis/socket.js';

/** Bytes a command takes as a RESP array of bulk strings. */
function frameSize(c: Command): number {
  let n = 1 + String(c.length).length + 2;
  for (const a of c) {
    const len = typeof a === 'string' ? Buffer.byteLength(a) : a.length;
    n += 1 + String(len).length + 2 + len + 2;
  }
  return n;
}

/** Many commands as one buffer, written in one go (one allocation per batch, not one per argument). */
export function encodeBatch(cmds: Command[]): Buffer {
  let size = 0;
  for (const c of cmds) size += frameSize(c);
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  for (const c of cmds) p = commandInto(b, p, c);
  return b;
}

/** Bytes commandInto writes for `c`. */
export const commandSize = frameSize;

/** A command as RESP at b[p] (room for commandSize(c) bytes); returns the end. */
export function commandInto(b: Buffer, p: number, c: Command): number {
  p += b.write(`*${c.length}\r\n`, p, 'latin1');
  for (const a of c) {
    if (typeof a === 'string') {
      p += b.write(`$${Buffer.byteLength(a)}\r\n`, p, 'latin1');
      p += b.write(a, p, 'utf8');
    } else {
      p += b.write(`$${a.length}\r\n`, p, 'latin1');
      p += a.copy(b, p);
    }
    b[p++] = 13;
    b[p++] = 10;
  }
  return p;
}

const HEAD5 = Buffer.from('*5\r\n$7\r\nRESTORE\r\n$');
const HEAD6 = Buffer.from('*6\r\n$7\r\nRESTORE\r\n$');
const TAIL5 = Buffer.from('\r\n$7\r\nREPLACE\r\n');
const TAIL6 = Buffer.from('\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n');

const digits = (n: number) => (n < 10 ? 1 : Math.floor(Math.log10(n)) + 1);

/** A non-negative integer in decimal at b[p]; returns the end. */
function writeInt(b: Buffer, p: number, n: number): number {
  const d = digits(n);
  let q = p + d;
  do {
    b[--q] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return p + d;
}

/** Bytes of the RESTORE command restoreFrameInto writes (`ttl`: 0, or an absolute expiry in ms). */
export function restoreFrameSize(keyLength: number, ttl: number, valueLength: number): number {
  const plen = 1 + valueLength + 10;
  const abs = ttl > 0;
  return (
    (abs ? HEAD6 : HEAD5).length +
    digits(keyLength) +
    2 +
    keyLength +
    3 +
    digits(digits(ttl)) +
    2 +
    digits(ttl) +
    3 +
    digits(plen) +
    2 +
    plen +
    (abs ? TAIL6 : TAIL5).length
  );
}

/**
 * One `RESTORE key ttl payload REPLACE [ABSTTL]` command written into `b` at
 * `at`, the payload built in place from an RDB entry: type byte, value
 * bytes, RDB version, CRC-64 (crc64.ts). Many go into one buffer per batch:
 * no allocation and no string per key, one copy of its value. `ttl`: 0, or
 * an absolute expiry in ms (then ABSTTL). Returns the end offset.
 */
export function restoreFrameInto(
  b: Buffer,
  at: number,
  key: Buffer,
  ttl: number,
  type: number,
  value: Buffer,
  rdbVersion: number,
): number {
  const abs = ttl > 0;
  const plen = 1 + value.length + 10;
  const head = abs ? HEAD6 : HEAD5;
  b.set(head, at);
  let p = writeInt(b, at + head.length, key.length);
  b[p++] = 13;
  b[p++] = 10;
  b.set(key, p);
  p += key.length;
  b[p++] = 13;
  b[p++] = 10;
  b[p++] = 36; // \r\n$
  p = writeInt(b, p, digits(ttl));
  b[p++] = 13;
  b[p++] = 10;
  p = writeInt(b, p, ttl);
  b[p++] = 13;
  b[p++] = 10;
  b[p++] = 36;
  p = writeInt(b, p, plen);
  b[p++] = 13;
  b[p++] = 10;
  const start = p;
  b[p++] = type;
  b.set(value, p);
  p += value.length;
  b[p++] = rdbVersion & 0xff;
  b[p++] = (rdbVersion >> 8) & 0xff;
  crcInto(b, p, start);
  p += 8;
  const tail = abs ? TAIL6 : TAIL5;
  b.set(tail, p);
  return p + tail.length;
}

/** The same command in a buffer of its own. */
export function restoreFrame(key: Buffer, ttl: number, type: number, value: Buffer, rdbVersion: number): Buffer {
  const b = Buffer.allocUnsafe(restoreFrameSize(key.length, ttl, value.length));
  restoreFrameInto(b, 0, key, ttl, type, value, rdbVersion);
  return b;
}

/** Commands already encoded, back to back (restoreFrameInto). */
export interface Encoded {
  bytes: Buffer;
  count: number;
}

/** The end of the reply starting at `at`, or -1 when more bytes are needed. Pure. */
export function replyEnd(b: Buffer, at: number): number {
  if (at >= b.length) return -1;
  const nl = b.indexOf(10, at);
  if (nl < 0) return -1;
  const t = b[at];
  if (t === 0x2b || t === 0x2d || t === 0x3a) return nl + 1; // + - :
  const n = Number(b.toString('latin1', at + 1, nl - 1));
  if (t === 0x24) return n < 0 ? nl + 1 : nl + 1 + n + 2 <= b.length ? nl + 1 + n + 2 : -1; // $
  if (t === 0x2a) {
    // *
    let p = nl + 1;
    for (let i = 0; i < n; i++) {
      p = replyEnd(b, p);
      if (p < 0) return -1;
    }
    return p;
  }
  throw new Error(`unexpected reply byte ${t}`);
}

export interface PipeOptions {
  /** The target cluster's TLS settings: the pipe (and its AUTH) goes over TLS when set. */
  tls?: TlsConfig;
  tlsWhere?: string;
  /** Bound on the TCP connect and TLS handshake (default NET_LIMITS.connectTimeoutMs). */
  connectTimeoutMs?: number;
  /** A batch waiting this long without any reply fails the pipe (default NET_LIMITS.pipeReplyTimeoutMs). */
  replyTimeoutMs?: number;
}

interface Batch {
  left: number;
  errors: Array<{ index: number; message: string }>;
  index: number;
  resolve(e: Batch['errors']): void;
  reject(err: Error): void;
}

/**
 * A bare pipelined connection for bulk writes whose replies are only checked
 * for errors (RESTORE during a full sync): commands are encoded straight
 * into one buffer per batch, and replies are counted, not turned into
 * objects. Ten times less work per command than a full client, which is
 * what a full sync of millions of keys spends its time on.
 */
export class RespPipe {
  private buf: Buffer = Buffer.alloc(0);
  private readonly batches: Batch[] = [];
  private failure: Error | undefined;

  private lastReply = Date.now();
  private readonly watchdog: NodeJS.Timeout;

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    replyTimeoutMs: number,
  ) {
    socket.setKeepAlive(true, 10_000);
    // A target that stops answering (half-open connection, stuck node) fails the load instead of hanging it.
    this.watchdog = setInterval(
      () => {
        if (this.batches.length && Date.now() - this.lastReply > replyTimeoutMs)
          socket.destroy(new Error(`${address} sent no reply for ${replyTimeoutMs / 1000} s`));
      },
      Math.min(5000, Math.max(100, Math.floor(replyTimeoutMs / 4))),
    );
    this.watchdog.unref();
    socket.on('data', (d) => this.onData(d));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error(`the connection to ${address} closed`)));
  }

  static async open(
    address: string,
    credentials: { username?: string; password?: string },
    o: PipeOptions = {},
  ): Promise<RespPipe> {
    const { host, port } = parseAddress(address)!;
    const socket = await openSocket({
      host,
      port,
      tls: o.tls,
      tlsWhere: o.tlsWhere,
      connectTimeoutMs: o.connectTimeoutMs,
    });
    socket.setNoDelay(true);
    const pipe = new RespPipe(socket, address, o.replyTimeoutMs ?? NET_LIMITS.pipeReplyTimeoutMs);
    if (credentials.password !== undefined) {
      const [err] = await pipe.send([
        credentials.username ? ['AUTH', credentials.username, credentials.password] : ['AUTH', credentials.password],
      ]);
      if (err) {
        socket.destroy();
        throw new Error(`AUTH on ${address} refused: ${err.message.split(credentials.password).join('***')}`);
      }
    }
    return pipe;
  }

  /**
   * Send the commands (and blocks of commands already encoded); resolves
   * with the errors among their replies, by reply index.
   */
  send(cmds: Array<Command | Encoded>): Promise<Array<{ index: number; message: string }>> {
    if (this.failure) return Promise.reject(this.failure);
    const count = cmds.reduce((n, c) => n + (Array.isArray(c) ? 1 : c.count), 0);
    if (!count) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (!this.batches.length) this.lastReply = Date.now();
      this.batches.push({ left: count, errors: [], index: 0, resolve, reject });
      this.socket.cork();
      let plain: Command[] = [];
      for (const c of cmds) {
        if (Array.isArray(c)) {
          plain.push(c);
          continue;
        }
        if (plain.length) {
          this.socket.write(encodeBatch(plain));
          plain = [];
        }
        this.socket.write(c.bytes);
      }
      if (plain.length) this.socket.write(encodeBatch(plain));
      this.socket.uncork();
    });
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(err: Error): void {
    clearInterval(this.watchdog);
    this.failure ??= err;
    for (const b of this.batches.splice(0)) b.reject(this.failure);
  }

  private onData(d: Buffer): void {
    this.lastReply = Date.now();
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let p = 0;
    while (this.batches.length) {
      const end = replyEnd(this.buf, p);
      if (end < 0) break;
      const b = this.batches[0]!;
      if (this.buf[p] === 0x2d) b.errors.push({ index: b.index, message: this.buf.toString('utf8', p + 1, end - 2) });
      b.index++;
      p = end;
      if (--b.left === 0) {
        this.batches.shift();
        b.resolve(b.errors);
      }
    }
    this.buf = this.buf.subarray(p);
  }
}
