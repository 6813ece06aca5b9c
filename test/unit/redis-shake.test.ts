import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shakeConfigV2, shakeConfigV4, parseShakeLine, checkShakeBinary } from '../../src/data/engines/redis-shake.js';
import { RunbookError } from '../../src/errors.js';

const source = {
  cluster: true,
  addresses: ['192.168.10.101:6371', '192.168.10.102:6373', '192.168.10.103:6375'],
  password: 'pa"ss',
  tls: false,
};
const target = {
  cluster: true,
  addresses: ['192.168.10.104:6371', '192.168.10.105:6373', '192.168.10.106:6375'],
  password: '123456',
  tls: false,
};

test('v4 config: sync_reader and redis_writer from the inventory, strings escaped, existing keys rewritten', () => {
  const toml = shakeConfigV4({ source, target, dir: '/tmp/shake', logFile: 'shake.log' });
  assert.match(
    toml,
    /\[sync_reader\]\ncluster = true\naddress = "192\.168\.10\.101:6371"\nusername = ""\npassword = "pa\\"ss"\ntls = false\nsync_rdb = true\nsync_aof = true/,
  );
  assert.match(toml, /\[redis_writer\]\ncluster = true\naddress = "192\.168\.10\.104:6371"/);
  assert.match(toml, /rdb_restore_command_behavior = "rewrite"/);
});

test('v2 config: the keys the field guide writes, every master listed', () => {
  const conf = shakeConfigV2({ source, target, logFile: '/tmp/shake.log' });
  const kv = Object.fromEntries(
    conf
      .split('\n')
      .filter((l) => l.includes(' = '))
      .map((l) => l.split(' = ') as [string, string]),
  );
  assert.equal(kv['conf.version'], '1');
  assert.equal(kv['source.type'], 'cluster');
  assert.equal(kv['source.address'], '192.168.10.101:6371;192.168.10.102:6373;192.168.10.103:6375');
  assert.equal(kv['source.auth_type'], 'auth');
  assert.equal(kv['target.address'], '192.168.10.104:6371;192.168.10.105:6373;192.168.10.106:6375');
  assert.equal(kv['target.password_raw'], '123456');
});

test('log lines (formats from RedisShake v4 main.go/StatusString and v2 dbSyncer) become phases and progress', () => {
  const pre = '2024-05-01 10:00:00 INF ';
  assert.deepEqual(
    parseShakeLine(`${pre}read_count=[0], read_ops=[0.00], write_count=[0], write_ops=[0.00], src-0, hand shaking`),
    { phase: 'handshake', writeOps: 0 },
  );
  assert.deepEqual(
    parseShakeLine(`${pre}read_count=[0], read_ops=[0.00], write_count=[0], write_ops=[0.00], src-1, waiting bgsave`),
    { phase: 'saving', writeOps: 0 },
  );
  assert.deepEqual(
    parseShakeLine(
      `${pre}read_count=[120], read_ops=[40.00], write_count=[100], write_ops=[33.50], src-0, syncing rdb, size=[1.0 MiB/4.0 MiB]`,
    ),
    { phase: 'full', percent: 25, writeOps: 33.5 },
  );
  assert.deepEqual(
    parseShakeLine(`${pre}read_count=[9], read_ops=[1.00], write_count=[9], write_ops=[1.00], syncing aof, diff=[0]`),
    { phase: 'incremental', diff: 0, writeOps: 1 },
  );
  assert.deepEqual(parseShakeLine('2019/06/13 11:30:07 [INFO] dbSyncer[0] total = 1.00MB - 4.00MB [ 25%]  entry=14'), {
    phase: 'full',
    percent: 25,
  });
  assert.deepEqual(parseShakeLine('2019/06/13 11:30:09 [INFO] dbSyncer[0] sync rdb done'), { phase: 'incremental' });
  assert.equal(parseShakeLine(`${pre}create SyncClusterReader: 127.0.0.1:6379`), undefined);
  assert.match(
    parseShakeLine('2024-05-01 10:00:00 ERR dial tcp 127.0.0.1:6379: connect: connection refused')!.error!,
    /connection refused/,
  );
  assert.match(parseShakeLine('2019/06/13 11:30:07 [PANIC] auth failed')!.error!, /auth failed/);
});

test('a missing or non-executable binary is a clear precondition error', () => {
  assert.throws(
    () => checkShakeBinary(undefined),
    (e: RunbookError) => e.code === 'E_SHAKE_MISSING' && /shakeBinary/.test(e.remedy ?? ''),
  );
  assert.throws(
    () => checkShakeBinary('/nonexistent/redis-shake'),
    (e: RunbookError) => e.code === 'E_SHAKE_MISSING',
  );
  assert.equal(checkShakeBinary('/bin/sh'), '/bin/sh');
});

test('TLS: a cluster with tls: gets `tls = true` only when the inventory asks for no more than RedisShake does; verification or a client certificate is refused', async () => {
  const { shakeTls } = await import('../../src/data/engines/redis-shake.js');
  assert.equal(shakeTls({ name: 'source', seeds: [] }), false);
  assert.equal(shakeTls({ name: 'source', seeds: [], tls: { verify: false, ca: '/ca.crt' } }), true);
  const toml = shakeConfigV4({ source: { ...source, tls: true }, target, dir: '/tmp/shake', logFile: 'shake.log' });
  assert.match(toml, /\[sync_reader\][^[]*\ntls = true\n/);
  assert.match(
    shakeConfigV2({ source: { ...source, tls: true }, target, logFile: '/tmp/l' }),
    /\nsource\.tls_enable = true\n/,
  );
  for (const tls of [{ verify: true }, { verify: false, cert: '/c.crt', key: '/c.key' }]) {
    assert.throws(
      () => shakeTls({ name: 'target', seeds: [], tls }),
      (err: unknown) => {
        assert.ok(err instanceof RunbookError);
        assert.equal(err.code, 'E_SHAKE_TLS');
        assert.equal(err.kind, 'precondition');
        assert.match(err.message, /clusters\.target\.tls asks for/);
        assert.match(err.remedy!, /engine=builtin/);
        return true;
      },
    );
  }
});
