import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  crc16,
  keySlot,
  toRanges,
  evenRanges,
  countSlots,
  formatRanges,
  rangesToSlots,
} from '../../src/redis/slots.js';

test('crc16 is XMODEM: "123456789" -> 0x31C3 (Redis cluster spec)', () => {
  assert.equal(crc16(Buffer.from('123456789')), 0x31c3);
});

test('keySlot follows hash tags as Redis does', () => {
  assert.equal(keySlot('foo'), 12182); // CLUSTER KEYSLOT foo
  assert.equal(keySlot('{user1000}.following'), keySlot('user1000'));
  assert.equal(keySlot('foo{}{bar}'), crc16(Buffer.from('foo{}{bar}')) & 16383, 'empty tag hashes the whole key');
  assert.equal(keySlot('foo{bar}{zap}'), keySlot('bar'));
  assert.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'));
});

test('ranges: merge, count, format, round-trip', () => {
  const r = toRanges([5, 1, 2, 3, 9, 10, 3]);
  assert.deepEqual(r, [
    [1, 3],
    [5, 5],
    [9, 10],
  ]);
  assert.equal(countSlots(r), 6);
  assert.equal(formatRanges(r), '1-3,5,9-10');
  assert.deepEqual(rangesToSlots(r), [1, 2, 3, 5, 9, 10]);
});

test('evenRanges covers all 16384 slots without overlap, as redis-cli create splits them', () => {
  for (const n of [1, 3, 5, 7]) {
    const r = evenRanges(n);
    assert.equal(r.length, n);
    assert.equal(r[0]![0], 0);
    assert.equal(r[n - 1]![1], 16383);
    for (let i = 1; i < n; i++) assert.equal(r[i]![0], r[i - 1]![1] + 1);
  }
  assert.deepEqual(evenRanges(3), [
    [0, 5460],
    [5461, 10922],
    [10923, 16383],
  ]);
});
