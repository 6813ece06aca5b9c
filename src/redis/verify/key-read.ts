/**
 * What one side says about one key, and the pipelined commands that ask it.
 * Pure: building commands and parsing replies need no server.
 */
export type VerifyMode = 'full' | 'length' | 'keys';

export interface KeyRead {
  /** `none` when the key does not exist. */
  type: string;
  pttl: number;
  length?: number;
  /** Full mode, first page only; `more` says whether the key has more than one page. */
  string?: Buffer;
  list?: Buffer[];
  hash?: Map<string, Buffer>;
  set?: Set<string>;
  zset?: Map<string, string>;
  stream?: Array<[string, Buffer[]]>;
  more: boolean;
}

type Command = [string, ...(string | number | Buffer)[]];

const LENGTH: Record<string, string> = { string: 'STRLEN', list: 'LLEN', hash: 'HLEN', set: 'SCARD', zset: 'ZCARD', stream: 'XLEN' };

/** Commands asking about a key of (expected) `type`; the first is always TYPE. */
export function readCommands(key: Buffer, type: string, mode: VerifyMode, page: number): Command[] {
  if (mode === 'keys') return [['TYPE', key]];
  const cmds: Command[] = [['TYPE', key], ['PTTL', key]];
  const len = LENGTH[type];
  if (len) cmds.push([len, key]);
  if (mode === 'full') {
    switch (type) {
      case 'string': cmds.push(['GET', key]); break;
      case 'list': cmds.push(['LRANGE', key, 0, page - 1]); break;
      case 'hash': cmds.push(['HSCAN', key, '0', 'COUNT', page]); break;
      case 'set': cmds.push(['SSCAN', key, '0', 'COUNT', page]); break;
      case 'zset': cmds.push(['ZSCAN', key, '0', 'COUNT', page]); break;
      case 'stream': cmds.push(['XRANGE', key, '-', '+', 'COUNT', page]); break;
    }
  }
  return cmds;
}

const str = (b: unknown) => (Buffer.isBuffer(b) ? b.toString('latin1') : String(b));

/** Parse the replies of `readCommands(key, expectedType, ...)`. */
export function parseRead(replies: Array<[Error | null, unknown]>, expectedType: string, mode: VerifyMode, page: number): KeyRead {
  const type = str(replies[0]?.[1] ?? 'none');
  const read: KeyRead = { type, pttl: -1, more: false };
  if (mode === 'keys') return read;
  read.pttl = Number(str(replies[1]?.[1] ?? -2));
  // The value commands were chosen for the expected type; if the key is of
  // another type they answered WRONGTYPE, and the type difference is what counts.
  if (type !== expectedType) return read;
  if (LENGTH[type]) read.length = Number(str(replies[2]?.[1] ?? 0));
  if (mode !== 'full') return read;
  const [err, v] = replies[LENGTH[type] ? 3 : 2] ?? [null, null];
  if (err) return read;
  switch (type) {
    case 'string': read.string = v as Buffer; break;
    case 'list': read.list = v as Buffer[]; read.more = (read.length ?? 0) > page; break;
    case 'hash': {
      const [cursor, flat] = v as [Buffer, Buffer[]];
      read.hash = new Map();
      for (let i = 0; i < flat.length; i += 2) read.hash.set(str(flat[i]), flat[i + 1]!);
      read.more = str(cursor) !== '0';
      break;
    }
    case 'set': {
      const [cursor, members] = v as [Buffer, Buffer[]];
      read.set = new Set(members.map(str));
      read.more = str(cursor) !== '0';
      break;
    }
    case 'zset': {
      const [cursor, flat] = v as [Buffer, Buffer[]];
      read.zset = new Map();
      for (let i = 0; i < flat.length; i += 2) read.zset.set(str(flat[i]), str(flat[i + 1]));
      read.more = str(cursor) !== '0';
      break;
    }
    case 'stream':
      read.stream = (v as Array<[Buffer, Buffer[]]>).map(([id, fields]) => [str(id), fields]);
      read.more = (read.length ?? 0) > page;
      break;
  }
  return read;
}
