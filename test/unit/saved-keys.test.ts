import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rdbKeysFromHeader } from '../../src/steps/files/saved-keys.js';

const str = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
const head = Buffer.concat([
  Buffer.from('REDIS0010'),
  Buffer.from([0xfa]),
  str('redis-ver'),
  str('7.0.15'),
  Buffer.from([0xfa]),
  str('redis-bits'),
  Buffer.from([0xc0, 64]),
]);
const db = Buffer.concat([Buffer.from([0xfe, 0, 0xfb, 3, 1])]);
const entries = Buffer.concat([
  Buffer.from([0]),
  str('a'),
  str('1'),
  Buffer.from([0]),
  str('b'),
  str('2'),
  Buffer.from([0xfc]),
  Buffer.alloc(8),
  Buffer.from([0]),
  str('c'),
  str('3'),
]);
const eof = Buffer.concat([Buffer.from([0xff]), Buffer.alloc(8)]);

test('the key count of a saved RDB is the one its writer put in RESIZEDB, read from the first bytes', () => {
  assert.equal(rdbKeysFromHeader(Buffer.concat([head, db, entries, eof]), true), 3);
  // Only the start of a big file: the count is there before the first key.
  assert.equal(rdbKeysFromHeader(Buffer.concat([head, db, entries.subarray(0, 4)]), false), 3);
});

test('a header cut before RESIZEDB says nothing; an empty database has no RESIZEDB and 0 keys', () => {
  assert.equal(rdbKeysFromHeader(head.subarray(0, 20), false), undefined);
  assert.equal(rdbKeysFromHeader(Buffer.concat([head, eof]), true), 0);
  assert.equal(rdbKeysFromHeader(Buffer.from('not an rdb at all'), true), undefined);
});
