import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerSecret, scrubText, scrubValue, scrubbedJson } from '../../src/scrub.js';
import { resolveSecret } from '../../src/inventory/secret.js';
import { RunbookError } from '../../src/errors.js';
import { ReplicaLink } from '../../src/data/readers/replica-link.js';

test('every occurrence of a secret is scrubbed, the text around it kept', () => {
  assert.equal(
    scrubText('redis-cli -a s3cr3t shutdown: s3cr3t refused; s3cr3ts3cr3t', ['s3cr3t']),
    'redis-cli -a *** shutdown: *** refused; ***',
  );
  assert.equal(scrubText('nothing here', ['s3cr3t']), 'nothing here');
  assert.equal(scrubText('', ['s3cr3t']), '');
});

test('overlapping secrets leave no piece of either behind, in any order', () => {
  for (const order of [
    ['abcd', 'cdef'],
    ['cdef', 'abcd'],
  ]) {
    assert.equal(scrubText('x abcdef y', order), 'x *** y');
  }
  // One secret inside another.
  assert.equal(scrubText('pw: longsecret and secret', ['secret', 'longsecret']), 'pw: *** and ***');
  // Overlapping occurrences of the same secret ("aaa" in "aaaa").
  assert.equal(scrubText('[aaaa]', ['aaa']), '[***]');
});

test('a registered secret is scrubbed from any text and from every string of a value, keys too', () => {
  registerSecret('reg-secret-7');
  assert.equal(scrubText('ERR reg-secret-7 is wrong'), 'ERR *** is wrong');
  const v = { error: 'exit 1: -a reg-secret-7', list: ['ok', 'reg-secret-7'], n: 3, nested: { 'reg-secret-7': true } };
  assert.deepEqual(scrubValue(v), { error: 'exit 1: -a ***', list: ['ok', '***'], n: 3, nested: { '***': true } });
  assert.ok(!scrubbedJson(v).includes('reg-secret-7'));
  // A secret with JSON-escaped characters is scrubbed before it is encoded.
  registerSecret('q"u\\ote');
  assert.ok(!scrubbedJson({ e: 'pw q"u\\ote' }).includes('u\\\\ote'));
});

test('a one- or two-character password is refused where it is resolved, naming its reference; a longer one is registered', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-scrub-'));
  const short = join(dir, 'short');
  writeFileSync(short, 'ab\n');
  assert.throws(
    () => resolveSecret({ file: short }, 'clusters.source.auth.password'),
    (e: unknown) => {
      assert.ok(e instanceof RunbookError && e.kind === 'usage' && e.code === 'E_SECRET_TOO_SHORT');
      assert.match(e.message, /clusters\.source\.auth\.password \(file:.*short\): the secret has 2 character/);
      assert.ok(!e.message.includes('ab\n') && !/ ab\b/.test(e.message));
      return true;
    },
  );
  process.env.RR_SCRUB_TEST_PW = 'env-pw-123';
  assert.equal(resolveSecret({ env: 'RR_SCRUB_TEST_PW' }, 'x'), 'env-pw-123');
  assert.equal(scrubText('auth env-pw-123'), 'auth ***');
  delete process.env.RR_SCRUB_TEST_UNSET;
  assert.throws(
    () => resolveSecret({ env: 'RR_SCRUB_TEST_UNSET' }, 'clusters.source.auth.password'),
    /clusters\.source\.auth\.password: env RR_SCRUB_TEST_UNSET is not set/,
  );
});

test('the replication link scrubs every occurrence of the password from a refusal it reports', async () => {
  const password = 'link-pw-4711';
  // A master that echoes the password twice when it refuses AUTH (a proxy or a misconfigured server could).
  const server = createServer((sock) =>
    sock.once('data', () => sock.write(`-ERR AUTH ${password} refused: ${password} is not valid\r\n`)),
  );
  await new Promise<void>((r) => server.listen(9150, '127.0.0.1', r));
  try {
    const link = new ReplicaLink({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, password });
    link.on('error', () => {});
    const err = await link.start().then(
      () => undefined,
      (e: Error) => e,
    );
    link.close();
    assert.ok(err, 'AUTH is refused');
    assert.match(err.message, /AUTH refused: -ERR AUTH \*\*\* refused: \*\*\* is not valid/);
    assert.ok(!err.message.includes(password));
  } finally {
    server.close();
  }
});
