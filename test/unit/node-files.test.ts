import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { conflicts, nodeFiles, type NodePersistence } from '../../src/hosts/node-files.js';
import { expandTemplate, hostInvocation, shellWord, validNodeAddress } from '../../src/hosts/host.js';
import { loadInventory } from '../../src/inventory/load.js';
import { RunbookError } from '../../src/errors.js';

const p = (over: Partial<NodePersistence> = {}): NodePersistence => ({
  dir: '/data/7000',
  dbfilename: 'dump.rdb',
  appendonly: false,
  appenddirname: 'appendonlydir',
  appendfilename: 'appendonly.aof',
  clusterConfigFile: 'nodes.conf',
  ...over,
});
const refused = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: RunbookError) => e.code === 'E_UNSAFE_PATH' && e.kind === 'precondition' && re.test(e.message));

test('node files: only the RDB and nodes.conf with appendonly no; the AOF directory only with appendonly yes', () => {
  assert.deepEqual(
    nodeFiles('h:7000', p(), { nodesConf: true }).files.map((f) => f.path),
    ['/data/7000/dump.rdb', '/data/7000/nodes.conf'],
  );
  assert.deepEqual(
    nodeFiles('h:7000', p({ appendonly: true }), { nodesConf: true }).files.map((f) => f.path),
    ['/data/7000/dump.rdb', '/data/7000/appendonlydir', '/data/7000/nodes.conf'],
  );
  assert.deepEqual(
    nodeFiles('h:7000', p({ appendonly: true, dir: '/data/7000//' }), { nodesConf: false }).files.map((f) => f.name),
    ['dump.rdb', 'appendonlydir'],
  );
});

test('node files: names that leave the data directory or name it are refused', () => {
  refused(() => nodeFiles('h:7000', p({ dbfilename: '..' }), { nodesConf: true }), /dbfilename is `\.\.`/);
  refused(() => nodeFiles('h:7000', p({ dbfilename: '.' }), { nodesConf: true }), /dbfilename is `\.`/);
  refused(() => nodeFiles('h:7000', p({ dbfilename: '' }), { nodesConf: true }), /dbfilename is empty/);
  refused(() => nodeFiles('h:7000', p({ dbfilename: 'a/b' }), { nodesConf: true }), /contains a slash/);
  refused(() => nodeFiles('h:7000', p({ dbfilename: '/etc/passwd' }), { nodesConf: true }), /contains a slash/);
  refused(
    () => nodeFiles('h:7000', p({ appendonly: true, appenddirname: '..' }), { nodesConf: false }),
    /appenddirname/,
  );
  // appendonly no: a bad appenddirname is never used, so it is not a reason to refuse.
  assert.equal(nodeFiles('h:7000', p({ appenddirname: '..' }), { nodesConf: false }).files.length, 1);
  refused(
    () => nodeFiles('h:7000', p({ clusterConfigFile: '/etc/redis/nodes.conf' }), { nodesConf: true }),
    /not a file inside \/data\/7000/,
  );
  refused(
    () => nodeFiles('h:7000', p({ clusterConfigFile: '../nodes.conf' }), { nodesConf: true }),
    /not a file inside/,
  );
  refused(() => nodeFiles('h:7000', p({ clusterConfigFile: '..' }), { nodesConf: true }), /not a file inside/);
  assert.equal(
    nodeFiles('h:7000', p({ clusterConfigFile: '/data/7000/nodes-7000.conf' }), { nodesConf: true }).files[1]!.path,
    '/data/7000/nodes-7000.conf',
  );
  refused(() => nodeFiles('h:7000', p({ dir: 'data' }), { nodesConf: true }), /absolute data directory/);
  refused(() => nodeFiles('h:7000', p({ dir: '/' }), { nodesConf: true }), /root directory/);
  // A directory is normalised before files are named in it.
  assert.equal(nodeFiles('h:7000', p({ dir: '/data/7000/..' }), { nodesConf: true }).files[0]!.path, '/data/dump.rdb');
});

test('node files: another instance using the same file, or a directory inside it, is a conflict; one sharing only the directory is not', () => {
  const mine = nodeFiles('h:7000', p({ appendonly: true }), { nodesConf: true });
  assert.deepEqual(
    conflicts(mine, [
      {
        address: 'h:7001',
        persistence: p({
          dbfilename: 'dump-7001.rdb',
          appenddirname: 'aof-7001',
          clusterConfigFile: 'nodes-7001.conf',
        }),
      },
    ]),
    [],
  );
  assert.match(
    conflicts(mine, [
      { address: 'h:7001', persistence: p({ appenddirname: 'aof-7001', clusterConfigFile: 'nodes-7001.conf' }) },
    ]).join(),
    /h:7001 uses \/data\/7000\/dump\.rdb/,
  );
  // appendonly no on the other node: its AOF directory is still protected (it may turn AOF on).
  assert.match(
    conflicts(mine, [
      { address: 'h:7001', persistence: p({ dbfilename: 'x.rdb', clusterConfigFile: 'n.conf' }) },
    ]).join(),
    /appendonlydir/,
  );
  assert.match(
    conflicts(mine, [
      { address: 'h:7001', persistence: p({ dir: '/data/7000/appendonlydir/inner', dbfilename: 'x.rdb' }) },
    ]).join(),
    /inner/,
  );
});

test('templates: a hostile address is quoted, and refused as a node address', () => {
  const evil = '1.2.3.4;touch /tmp/pwned:6379';
  assert.equal(
    expandTemplate('stop {host} {port} {address}', evil),
    `stop '1.2.3.4;touch /tmp/pwned' 6379 '1.2.3.4;touch /tmp/pwned:6379'`,
  );
  assert.equal(shellWord(`a'b`), `'a'\\''b'`);
  // What sh makes of the quoted line: the hostile text is one argument, nothing runs.
  const dir = mkdtempSync(join(tmpdir(), 'rr-tpl-'));
  const out = execFileSync(
    'sh',
    ['-c', expandTemplate('printf "%s|" {host}', `$(touch ${dir}/pwned)\`touch ${dir}/p2\`:1`)],
    { encoding: 'utf8' },
  );
  assert.equal(out, `$(touch ${dir}/pwned)\`touch ${dir}/p2\`|`);
  assert.throws(() => execFileSync('test', ['-e', join(dir, 'pwned')]));
  assert.equal(validNodeAddress(evil), false);
  assert.equal(validNodeAddress('-oProxyCommand=x:6379'), false);
  assert.equal(validNodeAddress('127.0.0.1:70000'), false);
  assert.equal(validNodeAddress('10.0.0.1:6379'), true);
  assert.equal(validNodeAddress('[::1]:6379'), true);
  assert.equal(validNodeAddress('redis-1.example.com:6379'), true);
});

test('ssh: the destination follows `--`', () => {
  const { args } = hostInvocation(
    { name: 'h', transport: 'ssh', addresses: ['10.0.0.1'], ssh: { user: 'ops' } },
    '10.0.0.1',
    'true',
  );
  assert.deepEqual(args.slice(-3), ['--', 'ops@10.0.0.1', 'true']);
});

test('inventory: ssh values that ssh would read as options are refused at load, naming the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-inv-'));
  const load = (ssh: string, addresses = '[127.0.0.1]') => {
    const f = join(dir, `i-${Math.random().toString(16).slice(2)}.yaml`);
    writeFileSync(
      f,
      `clusters:\n  source: { seeds: ["127.0.0.1:7000"] }\nhosts:\n  db1:\n    transport: ssh\n    addresses: ${addresses}\n    ssh: ${ssh}\n`,
    );
    return () => loadInventory(f);
  };
  const bad = (fn: () => unknown, path: string) =>
    assert.throws(
      fn,
      (e: RunbookError) => e.kind === 'usage' && e.code === 'E_INVENTORY_INVALID' && e.message.includes(path),
    );
  bad(load('{ user: "-oProxyCommand=touch /tmp/pwned" }'), 'hosts.db1.ssh.user');
  bad(load('{ user: "a b" }'), 'hosts.db1.ssh.user');
  bad(load('{ jump: "-oProxyCommand=x" }'), 'hosts.db1.ssh.jump');
  bad(load('{ identity: "-oProxyCommand=x" }'), 'hosts.db1.ssh.identity');
  bad(load('{ knownHosts: "-F/x" }'), 'hosts.db1.ssh.knownHosts');
  bad(load('{ user: ops }', '["-oProxyCommand=x"]'), 'hosts.db1.addresses[0]');
  bad(load('{ user: ops }', '["a;b"]'), 'hosts.db1.addresses[0]');
  assert.equal(
    load('{ user: ops, jump: "admin@bastion:2222,10.0.0.9" }')().hosts.db1!.ssh!.jump,
    'admin@bastion:2222,10.0.0.9',
  );
});

test('cleanup registry: only paths of the shapes this tool creates are removed; entries survive a reload of the state', async () => {
  const { Cleanup, removable } = await import('../../src/engine/cleanup.js');
  assert.equal(
    removable({ kind: 'local-dir', path: '/tmp/redis-runbook-stage-1/redis-runbook-copy-ab', what: '' }),
    true,
  );
  assert.equal(removable({ kind: 'local-dir', path: '/home/ops', what: '' }), false);
  assert.equal(removable({ kind: 'local-dir', path: 'redis-runbook-x', what: '' }), false);
  assert.equal(
    removable({ kind: 'host-dir', address: 'h:1', path: '/data/7000/.redis-runbook-partial', what: '' }),
    true,
  );
  assert.equal(removable({ kind: 'host-dir', address: 'h:1', path: '/data/7000', what: '' }), false);
  const m = new Map<string, unknown>();
  const state = {
    get: <T>(k: string) => (m.has(k) ? (JSON.parse(JSON.stringify(m.get(k))) as T) : undefined),
    set: (k: string, v: unknown) => {
      m.set(k, v);
    },
  };
  const dir = mkdtempSync(join(tmpdir(), 'redis-runbook-unit-'));
  new Cleanup(state).add('a', { kind: 'local-dir', path: dir, what: 'test dir' });
  new Cleanup(state).add('b', { kind: 'local-dir', path: '/etc', what: 'not ours' });
  const r = await new Cleanup(state).walk(undefined, ['local-dir']);
  assert.deepEqual(r.done, [`removed test dir ${dir}`]);
  assert.match(r.left.join(), /\/etc is not a path this tool creates/);
  assert.throws(() => execFileSync('test', ['-e', dir]));
  assert.deepEqual(
    new Cleanup(state).items().map(([id]) => id),
    ['b'],
  );
});

test('copy command lines: `--` before the paths, a remote-to-remote copy staged in a private directory named in both hops', async () => {
  const { copyCommandLines, partialDir, stageRoot } = await import('../../src/hosts/copy.js');
  const h = { name: 'db', transport: 'ssh' as const, addresses: ['10.0.0.1'], ssh: { user: 'ops' } };
  const lines = copyCommandLines(
    { host: h, target: '10.0.0.1', path: '/d/dump.rdb' },
    { host: { ...h, name: 'db2' }, target: '10.0.0.2', path: '/e/dump.rdb' },
    'file',
  );
  assert.equal(lines.length, 2);
  const stage = new RegExp(`${stageRoot()}/redis-runbook-copy-[0-9a-f]{16}/data`);
  assert.match(
    lines[0]!,
    /^rsync -a --partial-dir=\.redis-runbook-partial .* -e 'ssh -o BatchMode=yes .*' -- ops@10\.0\.0\.1:\/d\/dump\.rdb /,
  );
  assert.match(lines[0]!, stage);
  assert.match(lines[1]!, / -- \S+\/data ops@10\.0\.0\.2:\/e\/dump\.rdb$/);
  assert.equal(partialDir('/e/dump.rdb', 'file'), '/e/.redis-runbook-partial');
  assert.equal(partialDir('/e/appendonlydir/', 'dir'), '/e/appendonlydir/.redis-runbook-partial');
});

test('node files: a Redis 6 node (no appenddirname) keeps its AOF as the one file appendfilename', () => {
  const r6 = (over: Partial<NodePersistence> = {}) => p({ appenddirname: '', appendonly: true, ...over });
  assert.deepEqual(
    nodeFiles('h:7000', r6(), { nodesConf: false }).files.map((f) => f.path),
    ['/data/7000/dump.rdb', '/data/7000/appendonly.aof'],
  );
  // legacyAof changes nothing for it: the single file is already its AOF.
  assert.equal(nodeFiles('h:7000', r6(), { nodesConf: false, legacyAof: true }).files.length, 2);
  refused(() => nodeFiles('h:7000', r6({ appendfilename: '../x.aof' }), { nodesConf: false }), /appendfilename/);
  // Another Redis 6 node using that file in the same directory is a conflict.
  const mine = nodeFiles('h:7000', r6(), { nodesConf: false });
  assert.match(
    conflicts(mine, [
      { address: 'h:7001', persistence: r6({ dbfilename: 'x.rdb', clusterConfigFile: 'n.conf' }) },
    ]).join(),
    /h:7001 uses \/data\/7000\/appendonly\.aof/,
  );
});

test('node files: legacyAof adds the old single file of a Redis 7 node (which it adopts when its directory is gone)', () => {
  const r7 = p({ appendonly: true });
  assert.deepEqual(
    nodeFiles('h:7000', r7, { nodesConf: false, legacyAof: true }).files.map((f) => f.name),
    ['dump.rdb', 'appendonlydir', 'appendonly.aof'],
  );
  assert.deepEqual(
    nodeFiles('h:7000', r7, { nodesConf: false }).files.map((f) => f.name),
    ['dump.rdb', 'appendonlydir'],
  );
  // Two Redis 7 nodes sharing a directory and the default appendfilename do not conflict over it:
  // inside their own AOF directories the name is only a prefix.
  const mine = nodeFiles('h:7000', r7, { nodesConf: false, legacyAof: true });
  assert.deepEqual(
    conflicts(mine, [
      {
        address: 'h:7001',
        persistence: p({ dbfilename: 'x.rdb', appenddirname: 'aof-7001', clusterConfigFile: 'n.conf' }),
      },
    ]),
    [],
  );
});
