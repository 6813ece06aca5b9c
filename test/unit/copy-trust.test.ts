import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../src/inventory/load.js';
import { copyCommandLines } from '../../src/hosts/copy.js';
import { RunbookError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rr-copyto-'));
let n = 0;
const load = (hosts: string) => {
  const p = join(dir, `inv-${n++}.yaml`);
  writeFileSync(p, `clusters:\n  source: { seeds: ["10.0.0.1:6379"] }\nhosts:\n${hosts}`);
  return loadInventory(p);
};
const refused = (hosts: string, path: RegExp, fix: RegExp) => {
  assert.throws(
    () => load(hosts),
    (err: unknown) => {
      assert.ok(err instanceof RunbookError);
      assert.equal(err.kind, 'usage');
      assert.match(err.message, path);
      assert.match(err.remedy ?? '', fix);
      return true;
    },
  );
};

const HOSTS = `  db1:
    addresses: [10.0.0.1]
    ssh: { user: ops, port: 2222, identity: /keys/runner }
    copyTo:
      db2: { identity: /home/ops/.ssh/id_ed25519, knownHosts: /home/ops/.ssh/known_hosts }
  db2:
    addresses: [10.0.0.2]
    ssh: { user: ops, port: 2222 }
`;

test("copyTo loads: the target host named, key paths as on the source host, user and port from the target's ssh entry", () => {
  const inv = load(HOSTS);
  assert.deepEqual(inv.hosts.db1!.copyTo, {
    db2: {
      user: undefined,
      port: undefined,
      identity: '/home/ops/.ssh/id_ed25519',
      knownHosts: '/home/ops/.ssh/known_hosts',
    },
  });
  assert.equal(inv.hosts.db2!.copyTo, undefined);
  // `db1: {}` and `db1:` (null) both mean "with this host's ssh defaults".
  const bare = load(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { b: {}, c: }\n  b:\n    addresses: [10.0.0.2]\n  c:\n    addresses: [10.0.0.3]\n`,
  );
  assert.deepEqual(Object.keys(bare.hosts.a!.copyTo!), ['b', 'c']);
});

test('copyTo refusals name the key and the fix', () => {
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { nope: {} }\n`,
    /hosts\.a\.copyTo\.nope: no host `nope`/,
    /name one of/,
  );
  refused(`  a:\n    addresses: [10.0.0.1]\n    copyTo: { a: {} }\n`, /a host does not copy to itself/, /remove `a`/);
  refused(
    `  a:\n    transport: local\n    addresses: [127.0.0.1]\n    copyTo: { b: {} }\n  b:\n    addresses: [10.0.0.2]\n`,
    /only an ssh host can copy/,
    /transport: ssh/,
  );
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { b: {} }\n  b:\n    transport: local\n    addresses: [127.0.0.1]\n`,
    /host `b` is local/,
    /remove `b`/,
  );
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { b: { identity: keys/id } }\n  b:\n    addresses: [10.0.0.2]\n`,
    /copyTo\.b\.identity: `keys\/id` is not an absolute path/,
    /absolute path of the file on host a/,
  );
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { b: { port: 0 } }\n  b:\n    addresses: [10.0.0.2]\n`,
    /copyTo\.b\.port/,
    /1\.\.65535/,
  );
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { b: { user: "-oProxyCommand=x" } }\n  b:\n    addresses: [10.0.0.2]\n`,
    /copyTo\.b\.user/,
    /user name/,
  );
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: { b: { password: x } }\n  b:\n    addresses: [10.0.0.2]\n`,
    /copyTo\.b\.password: unknown key/,
    /user, port, identity, knownHosts/,
  );
  refused(
    `  a:\n    addresses: [10.0.0.1]\n    copyTo: [b]\n  b:\n    addresses: [10.0.0.2]\n`,
    /hosts\.a\.copyTo: expected a mapping/,
    /copyTo: \{ db2/,
  );
});

test('with copyTo the plan shows one command: ssh to the source host running rsync there to the target; without, two hops through this machine', () => {
  const inv = load(HOSTS);
  const from = { host: inv.hosts.db1!, target: '10.0.0.1', path: '/var/lib/redis/dump 1.rdb' };
  const to = { host: inv.hosts.db2!, target: '10.0.0.2', path: '/var/lib/redis/dump.rdb' };
  const [line, ...more] = copyCommandLines(from, to, 'file');
  assert.equal(more.length, 0);
  assert.match(line!, /^ssh .*-p 2222 -i \/keys\/runner .* -- ops@10\.0\.0\.1 'rsync /);
  // The inner ssh uses the source host's key and known_hosts, the target's user and port, and no control socket of ours.
  const inner = line!.slice(line!.indexOf(`'rsync`));
  assert.match(
    inner,
    /-p 2222 -i \/home\/ops\/\.ssh\/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=\/home\/ops\/\.ssh\/known_hosts/,
  );
  assert.doesNotMatch(inner, /ControlPath/);
  assert.match(inner, /-- '\\''\/var\/lib\/redis\/dump 1\.rdb'\\'' ops@10\.0\.0\.2:\/var\/lib\/redis\/dump\.rdb'$/);
  // The other way round there is no trust: through this machine.
  const back = copyCommandLines(to, from, 'file');
  assert.equal(back.length, 2);
  assert.match(back[0]!, /^rsync .* ops@10\.0\.0\.2:\/var\/lib\/redis\/dump\.rdb \S+redis-runbook-copy-\w+\/data$/);
});
