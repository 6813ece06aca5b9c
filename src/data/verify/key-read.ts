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
  /**
   * Hash, set and zset replies as the server sent them (field, value, ... /
   * member, ... / member, score, ...). Both sides usually list a small
   * collection in the same order, so equal arrays settle it without building
   * maps; only a mismatch is compared as a collection.
   */
  flat?: Buffer[];
  stream?: Array<[string, Buffer[]]>;
  /**
   * Read by the script's digest mode: a SHA-1 of the whole value in a canonical form
   * (members sorted, scores in one notation), made on the server, instead of the value.
   * Equal digests settle a key; unequal ones send it back for a value read that names the
   * difference.
   */
  digest?: string;
  more: boolean;
}

/** How the read script reads a value: the modes, plus `digest` (full mode's first pass). */
export type ScriptMode = VerifyMode | 'digest';

/**
 * The mode argument the scripts are sent. `digest-raw` is the digest with zset scores as the
 * server prints them, for when every node of both sides prints a double alike (see
 * printsShortestScores): the script then skips a tonumber and a string.format per member,
 * which made zsets the dearest type to digest. Were a node to print otherwise after all (a
 * failover onto another version mid-run), its zsets' digests differ and are read again whole,
 * where scores compare as numbers: slower, never wrong.
 */
export function scriptModeArg(mode: ScriptMode, rawScores: boolean): string {
  return mode === 'digest' && rawScores ? 'digest-raw' : mode;
}

type Command = [string, ...(string | number | Buffer)[]];

/**
 * Bytes of a string read at once. A longer string (a 200 MB blob) is read
 * one byte more than this to learn that it is longer, then compared in
 * GETRANGE pages of this size, so the runner never holds a whole one.
 */
export const STRING_PAGE_BYTES = 1 << 20;

const LENGTH: Record<string, string> = {
  string: 'STRLEN',
  list: 'LLEN',
  hash: 'HLEN',
  set: 'SCARD',
  zset: 'ZCARD',
  stream: 'XLEN',
};

/**
 * Commands asking one side about a key of (expected) `type`. The source's
 * type is already known (read in a first round trip), so the source side
 * skips TYPE; the target side starts with TYPE. In full mode no length
 * command is sent: a value read whole gives its length, and a key with more
 * than one page goes to the paged comparison, which compares lengths first.
 */
export function readCommands(key: Buffer, type: string, mode: VerifyMode, page: number, withType: boolean): Command[] {
  const cmds: Command[] = withType ? [['TYPE', key]] : [];
  if (mode === 'keys') return cmds;
  cmds.push(['PTTL', key]);
  if (mode === 'length') {
    const len = LENGTH[type];
    if (len) cmds.push([len, key]);
    return cmds;
  }
  switch (type) {
    case 'string':
      cmds.push(['GETRANGE', key, 0, STRING_PAGE_BYTES]);
      break;
    case 'list':
      cmds.push(['LRANGE', key, 0, page - 1]);
      break;
    case 'hash':
      cmds.push(['HSCAN', key, '0', 'COUNT', page]);
      break;
    case 'set':
      cmds.push(['SSCAN', key, '0', 'COUNT', page]);
      break;
    case 'zset':
      cmds.push(['ZSCAN', key, '0', 'COUNT', page]);
      break;
    case 'stream':
      cmds.push(['XRANGE', key, '-', '+', 'COUNT', page]);
      break;
  }
  return cmds;
}

const str = (b: unknown) => (Buffer.isBuffer(b) ? b.toString('latin1') : String(b));

/**
 * Parse the replies of `readCommands(key, expectedType, mode, page, withType)`.
 * Without TYPE in the replies the type is the expected one, unless the value
 * command answered WRONGTYPE (the key changed type between the two reads).
 */
export function parseRead(
  replies: Array<[Error | null, unknown]>,
  expectedType: string,
  mode: VerifyMode,
  page: number,
  withType: boolean,
): KeyRead {
  // TYPE and PTTL never fail on a readable key: an error (NOPERM, LOADING, MOVED) must not
  // pass for "no such key", or the key would silently go unchecked.
  const broken = replies.slice(0, withType ? 2 : 1).find(([e]) => e);
  if (broken) throw broken[0]!;
  let at = 0;
  const type = withType ? str(replies[at++]?.[1] ?? 'none') : expectedType;
  const read: KeyRead = { type, pttl: -1, more: false };
  if (mode === 'keys') return read;
  read.pttl = Number(str(replies[at++]?.[1] ?? -2));
  if (!withType && read.pttl === -2) read.type = 'none';
  // The value commands were chosen for the expected type; if the key is of
  // another type they answered WRONGTYPE, and the type difference is what counts.
  if (read.type !== expectedType || read.type === 'none') return read;
  const [err, v] = replies[at] ?? [null, null];
  if (err) {
    if (/WRONGTYPE/.test(err.message)) read.type = withType ? read.type : 'changed';
    else throw err;
    return read;
  }
  // Gone between TYPE and the value read (deleted or just expired): look again next round.
  // (GETRANGE answers "" for a missing key: that shows as a value difference, rechecked likewise.)
  if (v === null) {
    read.type = withType ? 'none' : 'changed';
    return read;
  }
  parseValue(read, mode, v, page);
  return read;
}

/** Fill `read` from a value reply (the last reply of `readCommands`, or the script's third element). */
function parseValue(read: KeyRead, mode: VerifyMode, v: unknown, page: number): void {
  const type = read.type;
  if (mode === 'length') {
    if (LENGTH[type]) read.length = Number(str(v));
    return;
  }
  switch (type) {
    case 'string':
      read.string = v as Buffer;
      read.more = read.string.length > STRING_PAGE_BYTES;
      read.length = read.string.length;
      break;
    case 'list':
      read.list = v as Buffer[];
      read.more = read.list.length >= page;
      read.length = read.list.length;
      break;
    case 'hash':
    case 'set':
    case 'zset': {
      const [cursor, flat] = v as [Buffer, Buffer[]];
      read.flat = flat;
      read.more = str(cursor) !== '0';
      read.length = type === 'set' ? flat.length : flat.length / 2;
      break;
    }
    case 'stream':
      read.stream = (v as Array<[Buffer, Buffer[]]>).map(([id, fields]) => [str(id), fields]);
      read.more = read.stream.length >= page;
      read.length = read.stream.length;
      break;
  }
}

/**
 * What the read scripts answer for one key `k` (a Lua function body): type,
 * PTTL and the first page of the value (or its digest, length, nothing), read
 * atomically. ARGV: page, mode, the string length read at once.
 */
const READ_KEY_BODY = `
local t = redis.call('TYPE', k)['ok']
if t == 'none' then return {t} end
local ttl = redis.call('PTTL', k)
if ARGV[2] == 'keys' then return {t, ttl} end
if ARGV[2] == 'length' then
  local len = {string='STRLEN', list='LLEN', hash='HLEN', set='SCARD', zset='ZCARD', stream='XLEN'}
  if len[t] then return {t, ttl, redis.call(len[t], k)} end
  return {t, ttl}
end
if ARGV[2] == 'digest' or ARGV[2] == 'digest-raw' then
  -- MessagePack frames every element with its length, in C and in one call: the Lua-built
  -- "length:element" strings this replaced cost a float formatting (%.14g) per element.
  local function fold(parts) return redis.sha1hex(cmsgpack.pack(parts)) end
  local n
  if t == 'string' then
    n = redis.call('STRLEN', k)
    if n > tonumber(ARGV[3]) then return {t, ttl, n, 1} end
    return {t, ttl, n, 0, redis.sha1hex(redis.call('GET', k))}
  elseif t == 'list' then
    n = redis.call('LLEN', k)
    if n >= page then return {t, ttl, n, 1} end
    return {t, ttl, n, 0, fold(redis.call('LRANGE', k, 0, -1))}
  elseif t == 'set' then
    n = redis.call('SCARD', k)
    if n > page then return {t, ttl, n, 1} end
    local members = redis.call('SMEMBERS', k)
    table.sort(members)
    return {t, ttl, n, 0, fold(members)}
  elseif t == 'hash' then
    n = redis.call('HLEN', k)
    if n > page then return {t, ttl, n, 1} end
    local flat = redis.call('HGETALL', k)
    local names, values = {}, {}
    for i = 1, #flat, 2 do
      names[#names + 1] = flat[i]
      values[flat[i]] = flat[i + 1]
    end
    table.sort(names)
    local sorted = {}
    for i, f in ipairs(names) do
      sorted[2 * i - 1] = f
      sorted[2 * i] = values[f]
    end
    return {t, ttl, n, 0, fold(sorted)}
  elseif t == 'zset' then
    n = redis.call('ZCARD', k)
    if n > page then return {t, ttl, n, 1} end
    local flat = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    -- Unless both sides print a double alike (digest-raw), scores in one notation:
    -- Redis 7.0 and before print %.17g, 7.2+ and Valkey the shortest form.
    if ARGV[2] == 'digest' then
      for i = 2, #flat, 2 do
        local score = tonumber(flat[i])
        if score then flat[i] = string.format('%.17g', score) end
      end
    end
    return {t, ttl, n, 0, fold(flat)}
  elseif t == 'stream' then
    n = redis.call('XLEN', k)
    if n >= page then return {t, ttl, n, 1} end
    return {t, ttl, n, 0, fold(redis.call('XRANGE', k, '-', '+'))}
  end
  return {t, ttl}
end
if t == 'string' then return {t, ttl, redis.call('GETRANGE', k, 0, tonumber(ARGV[3]))} end
if t == 'list' then return {t, ttl, redis.call('LRANGE', k, 0, page - 1)} end
if t == 'hash' then return {t, ttl, redis.call('HSCAN', k, '0', 'COUNT', page)} end
if t == 'set' then return {t, ttl, redis.call('SSCAN', k, '0', 'COUNT', page)} end
if t == 'zset' then return {t, ttl, redis.call('ZSCAN', k, '0', 'COUNT', page)} end
if t == 'stream' then return {t, ttl, redis.call('XRANGE', k, '-', '+', 'COUNT', page)} end
return {t, ttl}
`;

const READ_FUNCTION = `local page = tonumber(ARGV[1])
local function read(k)
${READ_KEY_BODY}
end
`;

/**
 * One read-only script call per key and side (EVALSHA_RO, Redis 7.0+). It
 * halves the commands a comparison sends and removes the round trip that
 * first asks the source for types; the server refuses it any write.
 */
export const READ_SCRIPT = `${READ_FUNCTION}return read(KEYS[1])
`;

/**
 * The same reads for many keys of one node in one call: ARGV 4.. are the
 * keys, the reply one READ_SCRIPT reply per key, in order. Declared keys must
 * share a slot in a cluster, so they are passed as arguments, read under the
 * allow-cross-slot-keys flag (Redis 7.0+); the node fails the call if one is
 * in a slot it does not serve (see the caller for what it does then). For the modes with short replies
 * (digests, lengths): one call per key cost the runner about five times the
 * CPU per key and the server a third more (200k keys: 2.5 vs 0.5 CPU s,
 * 1.25 vs 0.9 server CPU s).
 */
export const READ_MANY_SCRIPT = `#!lua flags=no-writes,allow-cross-slot-keys
${READ_FUNCTION}local out = {}
for i = 4, #ARGV do out[i - 3] = read(ARGV[i]) end
return out
`;

/** Keys per READ_MANY_SCRIPT call. */
export const READ_MANY_KEYS = 64;

export function parseScriptRead(reply: unknown, mode: ScriptMode, page: number): KeyRead {
  const r = reply as unknown[];
  const read: KeyRead = { type: str(r[0]), pttl: r.length > 1 ? Number(r[1]) : -2, more: false };
  if (mode === 'keys' || read.type === 'none' || r.length < 3) return read;
  if (mode === 'digest') {
    read.length = Number(r[2]);
    read.more = Number(r[3]) === 1;
    if (r[4] !== undefined) read.digest = str(r[4]);
    return read;
  }
  parseValue(read, mode, r[2], page);
  return read;
}
