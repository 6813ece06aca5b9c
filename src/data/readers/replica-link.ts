import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { encodeBatch } from '../protocol/resp-pipe.js';
import type { Command } from '../writer/apply.js';
import type { TlsConfig } from '../../inventory/types.js';
import { NET_LIMITS, openSocket } from '../../redis/socket.js';
import { scrubText } from '../../scrub.js';

/**
 * One replication link to a source master, speaking the replica side of the
 * protocol over a plain socket (replication.c): AUTH, REPLCONF, PSYNC; then
 * the RDB of a full resync (the disk `$<len>` form and the diskless
 * `$EOF:<mark>` form), then the stream of write commands, with REPLCONF ACK
 * sent back every second and on GETACK so the master sees a healthy replica.
 *
 * Events: `fullsync` ({ replid, offset }), `rdb-data` (a chunk of the RDB,
 * as it arrives), `rdb-end`, `rdb` (the whole RDB, only when someone
 * listens for it), `continue` ({ replid }), `command` (Buffer[], offset
 * after it), `error`, `close`.
 */
export interface LinkOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** Resume: the replication id and the offset of the last byte applied (PSYNC replid offset+1). */
  resume?: { replid: string; offset: number };
  /** The port this replica claims to listen on (shown in the master's INFO). */
  listeningPort?: number;
  /**
   * The offset to acknowledge: what has been applied, not just received, so
   * the master's view of this replica (and WAIT) never runs ahead of the
   * target. Defaults to the offset received.
   */
  ackOffset?: () => number;
  /** The source cluster's TLS settings: the link (and the AUTH it sends) goes over TLS when set. */
  tls?: TlsConfig;
  tlsWhere?: string;
  /** Bound on the TCP connect and TLS handshake (default NET_LIMITS.connectTimeoutMs). */
  connectTimeoutMs?: number;
  /** Silence from the master (not counting our own pauses) after which the link is dead (default NET_LIMITS.replicationIdleMs). */
  idleTimeoutMs?: number;
}

const CRLF = Buffer.from('\r\n');

/**
 * Parse one RESP array of bulk strings at the start of `buf`: the command and
 * the bytes it took, or undefined when more bytes are needed. Pure.
 */
export function parseCommand(buf: Buffer, at = 0): { args: Buffer[]; size: number } | undefined {
  if (at >= buf.length) return undefined;
  if (buf[at] !== 0x2a)
    throw new Error(
      `replication stream: expected '*' at byte ${at}, got ${JSON.stringify(String.fromCharCode(buf[at]!))}`,
    );
  let p = buf.indexOf(CRLF, at);
  if (p < 0) return undefined;
  const n = Number(buf.subarray(at + 1, p).toString());
  p += 2;
  const args: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (p >= buf.length) return undefined;
    if (buf[p] !== 0x24) throw new Error(`replication stream: expected '$' at byte ${p}`);
    const e = buf.indexOf(CRLF, p);
    if (e < 0) return undefined;
    const len = Number(buf.subarray(p + 1, e).toString());
    const start = e + 2;
    if (start + len + 2 > buf.length) return undefined;
    args.push(buf.subarray(start, start + len));
    p = start + len + 2;
  }
  return { args, size: p - at };
}

type Phase = 'handshake' | 'rdb-header' | 'rdb-body' | 'rdb-eof' | 'stream';

export class ReplicaLink extends EventEmitter {
  private socket: Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private phase: Phase = 'handshake';
  private replies: Array<(line: string) => void> = [];
  private rdbLen = 0;
  private eofMark: Buffer | undefined;
  private rdbParts: Buffer[] | undefined;
  /** RDB bytes received, and the size announced (undefined for a diskless transfer). */
  rdbReceived = 0;
  rdbSize: number | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private lastData = Date.now();
  private paused = false;
  private closed = false;
  /** Aborts a connect in progress when the link is closed. */
  private readonly connecting = new AbortController();
  /** Replication offset of the last byte received and applied. */
  offset = 0;
  replid = '';

  constructor(private readonly o: LinkOptions) {
    super();
  }

  async start(): Promise<void> {
    let s: Socket;
    try {
      // Bounded: a connect the network never answers (no SYN-ACK) must not keep start(), and
      // the stop() waiting for it, pending forever.
      s = await openSocket({
        host: this.o.host,
        port: this.o.port,
        tls: this.o.tls,
        tlsWhere: this.o.tlsWhere,
        connectTimeoutMs: this.o.connectTimeoutMs,
        signal: this.connecting.signal,
      });
    } catch (err) {
      this.markClosed();
      throw err;
    }
    if (this.closed) {
      s.destroy();
      throw new Error(`the link to ${this.o.host}:${this.o.port} was closed while connecting`);
    }
    this.socket = s;
    s.setKeepAlive(true, 10_000);
    // A minute of silence (not counting our own pauses) is a dead link; this also bounds
    // every handshake reply (AUTH, REPLCONF, PSYNC): the master sends newlines while it waits.
    const idleMs = this.o.idleTimeoutMs ?? NET_LIMITS.replicationIdleMs;
    this.lastData = Date.now();
    this.idle = setInterval(
      () => {
        if (!this.paused && Date.now() - this.lastData > idleMs)
          this.fail(new Error(`no data from ${this.o.host}:${this.o.port} for ${idleMs / 1000} s`));
      },
      Math.min(5000, Math.max(100, Math.floor(idleMs / 4))),
    );
    this.idle.unref();
    s.on('data', (d) => {
      this.lastData = Date.now();
      try {
        this.onData(d);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    s.on('error', (err) => this.fail(err));
    s.on('close', () => this.markClosed());
    if (this.o.password !== undefined) {
      await this.expectOk(
        this.o.username ? ['AUTH', this.o.username, this.o.password] : ['AUTH', this.o.password],
        'AUTH',
      );
    }
    await this.expectOk(['REPLCONF', 'listening-port', String(this.o.listeningPort ?? 0)], 'REPLCONF listening-port');
    await this.expectOk(['REPLCONF', 'capa', 'eof', 'capa', 'psync2'], 'REPLCONF capa');
    const r = this.o.resume;
    const line = await this.request(r ? ['PSYNC', r.replid, String(r.offset + 1)] : ['PSYNC', '?', '-1']);
    const full = /^\+FULLRESYNC (\S+) (\d+)/.exec(line);
    const cont = /^\+CONTINUE(?: (\S+))?/.exec(line);
    if (line.startsWith('-')) throw new Error(`PSYNC refused: ${line}`);
    if (full) {
      this.replid = full[1]!;
      this.offset = Number(full[2]);
      this.phase = 'rdb-header';
      this.rdbReceived = 0;
      this.rdbParts = this.listenerCount('rdb') ? [] : undefined;
      this.emit('fullsync', { replid: this.replid, offset: this.offset });
    } else if (cont) {
      this.replid = cont[1] ?? r!.replid;
      this.offset = r!.offset;
      this.phase = 'stream';
      this.emit('continue', { replid: this.replid });
      this.startAcks();
    } else {
      throw new Error(`PSYNC answered ${line}`);
    }
    this.onData(Buffer.alloc(0));
  }

  /** Acknowledge what was applied; the master uses it for WAIT and its lag view. */
  ack(): void {
    this.socket?.write(encodeBatch([['REPLCONF', 'ACK', String(this.o.ackOffset?.() ?? this.offset)]]));
  }

  /** Stop reading from the master (the target is behind); TCP pushes back on it. */
  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }
  resume(): void {
    if (this.paused) this.lastData = Date.now();
    this.paused = false;
    this.socket?.resume();
  }

  close(): void {
    this.stopAcks();
    this.connecting.abort();
    if (this.socket) this.socket.destroy();
  }

  /** Once, whatever ended the link (closed, failed, never connected): timers cleared, waiters answered, `close` emitted. */
  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopAcks();
    if (this.idle) clearInterval(this.idle);
    this.idle = undefined;
    // A handshake cut off must not leave start() waiting for a reply forever.
    for (const reply of this.replies.splice(0)) reply('-ERR connection closed during the handshake');
    this.emit('close');
  }

  private startAcks(): void {
    this.ackTimer = setInterval(() => this.ack(), 1000);
    this.ackTimer.unref();
  }

  private stopAcks(): void {
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = undefined;
  }

  private fail(err: Error): void {
    this.stopAcks();
    this.socket?.destroy();
    this.emit('error', err);
  }

  private request(args: string[]): Promise<string> {
    return new Promise((resolve) => {
      if (this.closed) {
        resolve('-ERR connection closed during the handshake');
        return;
      }
      this.replies.push(resolve);
      this.socket!.write(encodeBatch([args as Command]));
    });
  }

  private async expectOk(args: string[], what: string): Promise<void> {
    const line = await this.request(args);
    if (!line.startsWith('+')) throw new Error(`${what} refused: ${scrubText(line, [this.o.password])}`);
  }

  private onData(d: Buffer): void {
    if (this.passDisklessRead(d)) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    // Each step takes what it can from the buffer (and may move to the next phase); false: it needs more bytes.
    while (this.step());
  }

  /** One step of reading `buf`, by phase: see onData. */
  private step(): boolean {
    switch (this.phase) {
      case 'handshake':
        return this.takeHandshakeReply();
      case 'rdb-header':
        return this.takeRdbHeader();
      case 'rdb-body':
        return this.takeRdbBody();
      case 'rdb-eof':
        return this.takeDisklessRdb();
      case 'stream':
        return this.takeStreamCommand();
    }
  }

  /** The fast path of a diskless transfer; true when it took the whole read. */
  private passDisklessRead(d: Buffer): boolean {
    // Diskless transfer: most reads hold neither the end mark nor the start of one: pass them
    // on without joining them to the 40 bytes held back (no copy of the RDB per read).
    const mark = this.eofMark;
    if (this.phase === 'rdb-eof' && mark && this.buf.length < mark.length && d.length > 2 * mark.length) {
      const boundary = Buffer.concat([this.buf, d.subarray(0, mark.length)]);
      if (boundary.indexOf(mark) < 0 && d.indexOf(mark) < 0) {
        if (this.buf.length) this.rdbData(this.buf);
        this.rdbData(d.subarray(0, d.length - mark.length));
        this.buf = d.subarray(d.length - mark.length);
        return true;
      }
    }
    return false;
  }

  /** One reply line of the handshake (AUTH, REPLCONF, PSYNC), to whoever waits for it. */
  private takeHandshakeReply(): boolean {
    // While it waits to start a (diskless) full sync, the master sends bare newlines.
    let nl = 0;
    while (this.buf[nl] === 0x0a) nl++;
    if (nl) this.buf = this.buf.subarray(nl);
    const e = this.buf.indexOf(CRLF);
    if (e < 0 || !this.replies.length) return false;
    const line = this.buf.subarray(0, e).toString();
    this.buf = this.buf.subarray(e + 2);
    this.replies.shift()!(line);
    return true;
  }

  /** The line before the RDB: `$<len>` (disk) or `$EOF:<mark>` (diskless). */
  private takeRdbHeader(): boolean {
    // While it prepares the RDB the master sends bare newlines to keep the link alive.
    let i = 0;
    while (this.buf[i] === 0x0a) i++;
    this.buf = this.buf.subarray(i);
    const e = this.buf.indexOf(CRLF);
    if (e < 0) return false;
    const head = this.buf.subarray(0, e).toString();
    this.buf = this.buf.subarray(e + 2);
    if (head.startsWith('$EOF:')) {
      this.eofMark = Buffer.from(head.slice(5));
      this.phase = 'rdb-eof';
    } else if (head.startsWith('$')) {
      this.rdbLen = Number(head.slice(1));
      this.rdbSize = this.rdbLen;
      this.phase = 'rdb-body';
    } else {
      throw new Error(`expected the RDB payload, got ${JSON.stringify(head.slice(0, 80))}`);
    }
    return true;
  }

  /** RDB bytes of a disk transfer, up to the length announced. */
  private takeRdbBody(): boolean {
    const n = Math.min(this.buf.length, this.rdbLen - this.rdbReceived);
    if (n > 0) this.rdbData(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    if (this.rdbReceived < this.rdbLen) return false;
    this.finishRdb();
    return true;
  }

  /** RDB bytes of a diskless transfer, up to its end mark. */
  private takeDisklessRdb(): boolean {
    // Diskless: the payload ends with the 40-byte mark announced in the header. The
    // last bytes are held back until more arrive: the mark may span two reads.
    const mark = this.eofMark!;
    const at = this.buf.indexOf(mark);
    if (at < 0) {
      const safe = this.buf.length - mark.length;
      if (safe > 0) {
        this.rdbData(this.buf.subarray(0, safe));
        this.buf = this.buf.subarray(safe);
      }
      return false;
    }
    if (at > 0) this.rdbData(this.buf.subarray(0, at));
    this.buf = this.buf.subarray(at + mark.length);
    this.finishRdb();
    return true;
  }

  /** One command of the stream: answered (GETACK) or emitted, the offset moved past it. */
  private takeStreamCommand(): boolean {
    const c = parseCommand(this.buf);
    if (!c) return false;
    this.buf = this.buf.subarray(c.size);
    const name = c.args[0]!.toString().toUpperCase();
    if (name === 'REPLCONF' && c.args[1]?.toString().toUpperCase() === 'GETACK') {
      // The answer gives the offset before the GETACK itself, as a Redis replica does.
      this.ack();
      this.offset += c.size;
      return true;
    }
    this.offset += c.size;
    this.emit('command', c.args, this.offset);
    return true;
  }

  private rdbData(chunk: Buffer): void {
    // Each socket read is a buffer of its own (never reused by Node): no copy needed.
    const own = chunk;
    this.rdbReceived += own.length;
    this.rdbParts?.push(own);
    this.emit('rdb-data', own);
  }

  private finishRdb(): void {
    this.phase = 'stream';
    this.emit('rdb-end');
    if (this.rdbParts) this.emit('rdb', Buffer.concat(this.rdbParts));
    this.rdbParts = undefined;
    this.startAcks();
  }
}
