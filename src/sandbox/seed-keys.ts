import { Rng } from './prng.js';

/**
 * The keys a sandbox is seeded with: pure and deterministic, so the writer
 * (seed-data.ts) only routes and sends. Key i depends only on the keys before
 * it, so seeding N keys gives the first N keys of any larger seeding.
 *
 * The mix imitates an application cache/store: counters, sessions and cached
 * fragments (strings), user profiles and carts (hashes), job queues (lists),
 * tags (sets), leaderboards with float scores (sorted sets) and event streams,
 * a third of them with a consumer group holding a pending entry. About 10%
 * have a TTL of 1-24 h: long enough to never expire during a test, present
 * so migrations have to carry TTLs over. Names mostly have no hash tag, so
 * keys spread over all slots; carts use `{user:n}` the way applications do.
 */
export type SeedKeyType = 'string' | 'list' | 'hash' | 'set' | 'zset' | 'stream';
export const SEED_KEY_TYPES: readonly SeedKeyType[] = ['string', 'list', 'hash', 'set', 'zset', 'stream'];

export type SeedCommand = [command: string, ...args: (string | number)[]];

export interface SeedKey {
  key: string;
  type: SeedKeyType;
  ttlSeconds?: number;
  /** Commands that create the key (and set its TTL), in order, all on this one key. */
  commands: SeedCommand[];
}

export const DEFAULT_SEED = 0x5eed2024;

const WEIGHTS: ReadonlyArray<readonly [SeedKeyType, number]> = [
  ['string', 0.42],
  ['hash', 0.2],
  ['list', 0.12],
  ['set', 0.11],
  ['zset', 0.09],
  ['stream', 0.06],
];
const TTL_SHARE = 0.1;
const TTL_MIN_S = 3600;
const TTL_MAX_S = 24 * 3600;

const FIRST = [
  'ada',
  'grace',
  'linus',
  'ken',
  'barbara',
  'edsger',
  'margaret',
  'dennis',
  'frances',
  'alan',
  'radia',
  'john',
  'shafi',
  'leslie',
];
const LAST = [
  'lovelace',
  'hopper',
  'torvalds',
  'thompson',
  'liskov',
  'dijkstra',
  'hamilton',
  'ritchie',
  'allen',
  'turing',
  'perlman',
  'backus',
];
const DOMAINS = ['example.com', 'example.org', 'mail.test', 'corp.invalid'];
const COUNTRIES = ['DE', 'FR', 'US', 'BR', 'JP', 'IN', 'NG', 'SE', 'CA', 'AU'];
const WORDS = [
  'redis',
  'cluster',
  'slot',
  'replica',
  'failover',
  'latency',
  'shard',
  'queue',
  'cache',
  'index',
  'render',
  'widget',
  'checkout',
  'payment',
  'session',
  'profile',
  'search',
  'feed',
  'inventory',
  'warehouse',
  'order',
  'invoice',
  'metric',
  'alert',
];
const TAGS = [
  'new',
  'vip',
  'beta',
  'churn-risk',
  'mobile',
  'desktop',
  'newsletter',
  'trial',
  'enterprise',
  'eu',
  'us',
  'apac',
  'admin',
  'support',
];
const JOBS = ['send-email', 'resize-image', 'charge-card', 'sync-crm', 'build-report', 'reindex', 'notify-push'];
const EVENTS = ['login', 'logout', 'view', 'click', 'purchase', 'refund', 'signup'];

const EPOCH_MS = 1_700_000_000_000;

/**
 * `expireBaseMs`: TTLs are set as absolute times from this base (PEXPIREAT), so
 * two clusters seeded with the same base hold the same expiry times however
 * long each took to load.
 */
export function* seedKeys(count: number, seed = DEFAULT_SEED, expireBaseMs = Date.now()): Generator<SeedKey> {
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    // The first six keys take one type each, so even a tiny seeding has every type.
    const type = i < SEED_KEY_TYPES.length ? SEED_KEY_TYPES[i]! : weighted(rng);
    const ttlSeconds = rng.chance(TTL_SHARE) ? rng.int(TTL_MIN_S, TTL_MAX_S) : undefined;
    yield makeKey(rng, i, type, ttlSeconds, expireBaseMs);
  }
}

function weighted(rng: Rng): SeedKeyType {
  let r = rng.next();
  for (const [type, w] of WEIGHTS) {
    if (r < w) return type;
    r -= w;
  }
  return 'string';
}

/** One key's draws: the generator, its index, its TTL (seconds) and the absolute expiry (ms) that TTL gives. */
interface KeyDraw {
  rng: Rng;
  i: number;
  ttl: number | undefined;
  at: number;
}

function makeKey(rng: Rng, i: number, type: SeedKeyType, ttl: number | undefined, base: number): SeedKey {
  const d: KeyDraw = { rng, i, ttl, at: ttl === undefined ? 0 : base + ttl * 1000 };
  switch (type) {
    case 'string':
      return stringKey(d);
    case 'hash':
      return hashKey(d);
    case 'list':
      return listKey(d);
    case 'set':
      return setKey(d);
    case 'zset':
      return zsetKey(d);
    case 'stream':
      return streamKey(d);
  }
}

/** The PEXPIREAT that gives a key its TTL, if it has one. */
function expire(d: KeyDraw, key: string): SeedCommand[] {
  return d.ttl === undefined ? [] : [['PEXPIREAT', key, d.at]];
}

/** A page-view counter, a JSON session or a cached text fragment; a TTL goes on the SET itself. */
function stringKey({ rng, i, ttl, at }: KeyDraw): SeedKey {
  const kind = rng.int(0, 2);
  const [key, value] =
    kind === 0
      ? [`counter:pageviews:${i}`, String(rng.int(0, 5_000_000))]
      : kind === 1
        ? [
            `session:${i}`,
            JSON.stringify({
              user: rng.int(1, 1_000_000),
              ip: `10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`,
              ua: text(rng, rng.int(40, 200)),
              created: EPOCH_MS + rng.int(0, 1e9),
            }),
          ]
        : [`cache:fragment:${i}`, text(rng, rng.int(100, 500))];
  const set: SeedCommand = ttl === undefined ? ['SET', key, value] : ['SET', key, value, 'PXAT', at];
  return { key, type: 'string', ttlSeconds: ttl, commands: [set] };
}

/** A user profile, or (one in ten) a cart. */
function hashKey(d: KeyDraw): SeedKey {
  const { rng, i, ttl } = d;
  if (rng.chance(0.1)) {
    // Hash-tagged, like carts kept next to their user's other keys.
    const key = `cart:{user:${i}}:items`;
    const fields: (string | number)[] = [];
    for (let n = rng.int(1, 6); n > 0; n--) fields.push(`sku-${rng.int(10000, 99999)}`, rng.int(1, 5));
    return { key, type: 'hash', ttlSeconds: ttl, commands: [['HSET', key, ...fields], ...expire(d, key)] };
  }
  const key = `user:${i}:profile`;
  const first = rng.pick(FIRST);
  const last = rng.pick(LAST);
  return {
    key,
    type: 'hash',
    ttlSeconds: ttl,
    commands: [
      [
        'HSET',
        key,
        'name',
        `${first} ${last}`,
        'email',
        `${first}.${last}${i}@${rng.pick(DOMAINS)}`,
        'country',
        rng.pick(COUNTRIES),
        'visits',
        rng.int(0, 10_000),
        'balance',
        (rng.next() * 1000).toFixed(2),
        'created_at',
        EPOCH_MS + rng.int(0, 1e10),
        'bio',
        text(rng, rng.int(20, 160)),
      ],
      ...expire(d, key),
    ],
  };
}

/** A job queue. */
function listKey(d: KeyDraw): SeedKey {
  const { rng, i, ttl } = d;
  const key = `queue:${i}`;
  const items: string[] = [];
  for (let n = rng.int(3, 20); n > 0; n--)
    items.push(JSON.stringify({ job: rng.pick(JOBS), id: rng.int(1, 1e9), attempt: rng.int(0, 3) }));
  return { key, type: 'list', ttlSeconds: ttl, commands: [['RPUSH', key, ...items], ...expire(d, key)] };
}

/** Tags or followers. */
function setKey(d: KeyDraw): SeedKey {
  const { rng, i, ttl } = d;
  const key = rng.chance(0.5) ? `tags:${i}` : `followers:${i}`;
  const members: string[] = [];
  for (let n = rng.int(3, 20); n > 0; n--)
    members.push(key.startsWith('tags') ? `${rng.pick(TAGS)}-${rng.int(0, 50)}` : `user:${rng.int(1, 1_000_000)}`);
  return { key, type: 'set', ttlSeconds: ttl, commands: [['SADD', key, ...members], ...expire(d, key)] };
}

/** A leaderboard with float scores. */
function zsetKey(d: KeyDraw): SeedKey {
  const { rng, i, ttl } = d;
  const key = `leaderboard:${i}`;
  const pairs: (string | number)[] = [];
  for (let n = rng.int(3, 25); n > 0; n--)
    pairs.push((rng.next() * 10_000).toFixed(3), `player:${rng.int(1, 1_000_000)}`);
  return { key, type: 'zset', ttlSeconds: ttl, commands: [['ZADD', key, ...pairs], ...expire(d, key)] };
}

/** An event stream, some with a consumer group holding a pending entry. */
function streamKey(d: KeyDraw): SeedKey {
  const { rng, i, ttl } = d;
  const key = `events:${i}`;
  const commands: SeedCommand[] = [];
  // Explicit ids: '*' would take the wall clock and break determinism.
  const start = EPOCH_MS + rng.int(0, 1e9);
  for (let n = 0, count = rng.int(2, 6); n < count; n++) {
    commands.push([
      'XADD',
      key,
      `${start + n * 1000}-0`,
      'type',
      rng.pick(EVENTS),
      'user',
      rng.int(1, 1_000_000),
      'note',
      text(rng, rng.int(10, 60)),
    ]);
  }
  // The first stream always has a group, then about a third of them.
  if (i < SEED_KEY_TYPES.length || rng.chance(0.34)) {
    commands.push(['XGROUP', 'CREATE', key, 'workers', '0']);
    // One delivered-but-unacknowledged entry, so the group has a pending list to carry.
    commands.push(['XREADGROUP', 'GROUP', 'workers', 'worker-1', 'COUNT', 1, 'STREAMS', key, '>']);
  }
  return { key, type: 'stream', ttlSeconds: ttl, commands: [...commands, ...expire(d, key)] };
}

function text(rng: Rng, length: number): string {
  let s = '';
  while (s.length < length) s += (s ? ' ' : '') + rng.pick(WORDS);
  return s.slice(0, length);
}
