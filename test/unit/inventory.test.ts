import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../src/inventory/load.js';
import { resolveSecret } from '../../src/inventory/secret.js';
import { RunbookError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rr-inv-'));
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function refusal(text: string): RunbookError {
  const p = write(`bad-${Math.random().toString(16).slice(2)}.yaml`, text);
  try {
    loadInventory(p);
  } catch (err) {
    assert.ok(err instanceof RunbookError);
    assert.equal(err.kind, 'usage', 'bad inventory is a usage error (exit 2)');
    assert.ok(err.message.includes(p), `names the file: ${err.message}`);
    assert.ok(err.remedy, 'gives a fix');
    return err;
  }
  assert.fail('expected a refusal');
}

test('a full inventory loads, relative paths resolve against its folder', () => {
  const p = write(
    'ok.yaml',
    `
clusters:
  source:
    seeds: ["10.0.0.1:6379", "[::1]:7000"]
    auth: { username: ops, password: { file: secrets/src } }
    tls: { ca: ca.pem, verify: true }
  target:
    seeds: [10.0.0.4:6379]
    auth: { password: { env: TARGET_PW } }
hosts:
  db1:
    transport: ssh
    addresses: [10.0.0.1]
    ssh: { user: redis, port: 2222, identity: keys/id_ed25519, jump: bastion }
    service: { stop: "systemctl stop redis@{port}", start: "systemctl start redis@{port}" }
`,
  );
  const inv = loadInventory(p);
  assert.deepEqual(inv.clusters.source!.seeds, ['10.0.0.1:6379', '[::1]:7000']);
  assert.deepEqual(inv.clusters.source!.auth!.password, { file: join(dir, 'secrets/src') });
  assert.equal(inv.clusters.source!.tls!.ca, join(dir, 'ca.pem'));
  assert.deepEqual(inv.clusters.target!.auth!.password, { env: 'TARGET_PW' });
  assert.equal(inv.hosts.db1!.ssh!.port, 2222);
  assert.equal(inv.hosts.db1!.ssh!.identity, join(dir, 'keys/id_ed25519'));
});

test('errors name the path inside the file and the fix', () => {
  assert.match(
    refusal('clusters:\n  source:\n    seeds: [nope]\n').message,
    /clusters\.source\.seeds\[0\]: `nope` is not host:port/,
  );
  assert.match(refusal('clusters:\n  source:\n    seeds: []\n').message, /clusters\.source\.seeds/);
  assert.match(
    refusal('clusters:\n  source:\n    seeds: [a:1]\n    colour: red\n').message,
    /clusters\.source\.colour: unknown key/,
  );
  assert.match(refusal('hosts: {}\n').message, /clusters: expected a mapping/);
  assert.match(
    refusal('clusters:\n  s:\n    seeds: [a:1]\nhosts:\n  h:\n    transport: telnet\n    addresses: [a]\n').message,
    /hosts\.h\.transport/,
  );
  assert.match(refusal('clusters: [\n').message, /not valid YAML/);
});

test('a clear-text password is refused without echoing it', () => {
  const err = refusal('clusters:\n  source:\n    seeds: [a:1]\n    auth: { password: hunter2secret }\n');
  assert.match(err.message, /clusters\.source\.auth\.password: a clear-text password is not accepted/);
  assert.ok(!err.message.includes('hunter2secret') && !(err.remedy ?? '').includes('hunter2secret'));
});

test('secrets resolve at use; a missing one names the reference, not a value', () => {
  const f = write('pw', 's3cret-value\n');
  assert.equal(resolveSecret({ file: f }, 'x'), 's3cret-value');
  process.env.RR_TEST_PW = 'from-env';
  assert.equal(resolveSecret({ env: 'RR_TEST_PW' }, 'x'), 'from-env');
  assert.throws(
    () => resolveSecret({ env: 'RR_TEST_MISSING' }, 'clusters.s.auth.password'),
    /RR_TEST_MISSING is not set/,
  );
  assert.throws(
    () => resolveSecret({ file: join(dir, 'nope') }, 'clusters.s.auth.password'),
    /cannot read secret file/,
  );
});
