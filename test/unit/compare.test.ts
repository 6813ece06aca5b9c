import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareFieldTtls, compareKey, compareTtl, printableKey } from '../../src/data/verify/compare.js';
import { parseScriptRead } from '../../src/data/verify/key-read.js';

const b = (...xs: string[]) => xs.map((x) => Buffer.from(x));
const read = (type: string, value: unknown, pttl = -1) =>
  parseScriptRead([Buffer.from(type), pttl, value], 'full', 1000);

test('collections listed in another order are the same; a changed element is a value difference', () => {
  const h1 = read('hash', [Buffer.from('0'), b('f1', 'v1', 'f2', 'v2')]);
  const h2 = read('hash', [Buffer.from('0'), b('f2', 'v2', 'f1', 'v1')]);
  assert.deepEqual(compareKey(h1, h2, 'full', 2000), { same: true });
  const h3 = read('hash', [Buffer.from('0'), b('f2', 'XX', 'f1', 'v1')]);
  assert.deepEqual(compareKey(h1, h3, 'full', 2000), {
    same: false,
    kind: 'value',
    source: 'field "f2" = "v2"',
    target: 'field "f2" = "XX"',
  });
  const s1 = read('set', [Buffer.from('0'), b('a', 'b')]);
  const s2 = read('set', [Buffer.from('0'), b('b', 'a', 'c')]);
  assert.equal(
    (compareKey(s1, s2, 'full', 0) as { kind: string }).kind,
    'value',
    'an extra member in the target is a difference (length)',
  );
});

test('zset scores compare exactly, as numbers when printed differently', () => {
  const z1 = read('zset', [Buffer.from('0'), b('m', '1.5')]);
  assert.deepEqual(compareKey(z1, read('zset', [Buffer.from('0'), b('m', '1.50')]), 'full', 0), { same: true });
  assert.equal(
    (compareKey(z1, read('zset', [Buffer.from('0'), b('m', '1.5000001')]), 'full', 0) as { kind: string }).kind,
    'value',
  );
});

test('missing, type and TTL differences; TTL tolerance', () => {
  const s = read('string', Buffer.from('v'), 5000);
  assert.equal(
    (compareKey(s, parseScriptRead([Buffer.from('none')], 'full', 1000), 'full', 0) as { kind: string }).kind,
    'missing',
  );
  assert.equal((compareKey(s, read('list', b('v')), 'full', 0) as { kind: string }).kind, 'type');
  assert.equal((compareKey(s, read('string', Buffer.from('v'), -1), 'full', 2000) as { kind: string }).kind, 'ttl');
  assert.deepEqual(compareKey(s, read('string', Buffer.from('v'), 3500), 'full', 2000), { same: true });
  assert.equal(compareTtl(5000, 2000, 2000), true);
  assert.equal(compareTtl(-1, -1, 0), false);
});

test('a key with more than one page goes to the paged comparison', () => {
  const big = parseScriptRead(
    [Buffer.from('list'), -1, b(...Array.from({ length: 1000 }, (_, i) => `e${i}`))],
    'full',
    1000,
  );
  assert.equal(big.more, true);
  assert.deepEqual(compareKey(big, big, 'full', 0), { page: true });
});

test('keys print safely', () => {
  assert.equal(printableKey(Buffer.from('user:1')), 'user:1');
  assert.equal(printableKey(Buffer.from([0x61, 0xff, 0x0a])), 'a\\xff\\x0a');
});

test("hash fields' own TTLs: absolute times within the tolerance are equal; one missing, one moved or one lost to an older server differs", () => {
  const fields = b('keep', 'ttl', 'other');
  const at = Date.UTC(2030, 0, 1);
  const src = { at: [-1, at, at + 60_000] };
  assert.equal(compareFieldTtls(fields, src, { at: [-1, at, at + 60_000] }, 2000), undefined);
  assert.equal(compareFieldTtls(fields, src, { at: [-1, at + 1500, at + 59_000] }, 2000), undefined, 'within 2 s');
  assert.deepEqual(
    compareFieldTtls(fields, src, { at: [-1, at + 2500, at + 60_000] }, 2000),
    ['field "ttl" expires 2030-01-01T00:00:00.000Z', 'field "ttl" expires 2030-01-01T00:00:02.500Z'],
    'beyond the tolerance: the first field that differs, with both times',
  );
  assert.deepEqual(
    compareFieldTtls(fields, src, { at: [-1, -1, at + 60_000] }, 2000),
    ['field "ttl" expires 2030-01-01T00:00:00.000Z', 'field "ttl" no TTL'],
    'HPERSIST on one side: a TTL on one side only differs, whatever the tolerance',
  );
  assert.deepEqual(
    compareFieldTtls(fields, { at: [-1, -1, -1] }, { at: [at, -1, -1] }, 2000),
    ['field "keep" no TTL', 'field "keep" expires 2030-01-01T00:00:00.000Z'],
    'a TTL only the target has differs too',
  );
  assert.deepEqual(
    compareFieldTtls(fields, src, { at: [-1, -2, at + 60_000] }, 2000),
    ['field "ttl" expires 2030-01-01T00:00:00.000Z', 'field "ttl" absent'],
    'a field gone from one side (expired or deleted since the value read) differs, and is rechecked',
  );
  assert.equal(compareFieldTtls(fields, { at: [-1, -2, -1] }, { at: [-1, -2, -1] }, 0), undefined, 'gone on both');
});

test('a side whose server cannot hold field TTLs has none: a field TTL on the other side was lost, and says why', () => {
  const fields = b('keep', 'ttl');
  const at = Date.UTC(2030, 0, 1);
  const cannot = { cannot: 'redis 7.2.6 cannot hold hash-field TTLs' };
  assert.deepEqual(compareFieldTtls(fields, { at: [-1, at] }, cannot, 2000), [
    'field "ttl" expires 2030-01-01T00:00:00.000Z',
    'field "ttl" no TTL (redis 7.2.6 cannot hold hash-field TTLs)',
  ]);
  assert.equal(compareFieldTtls(fields, { at: [-1, -1] }, cannot, 2000), undefined, 'no field TTL to lose');
  assert.deepEqual(compareFieldTtls(fields, cannot, { at: [at, -1] }, 2000), [
    'field "keep" no TTL (redis 7.2.6 cannot hold hash-field TTLs)',
    'field "keep" expires 2030-01-01T00:00:00.000Z',
  ]);
});
