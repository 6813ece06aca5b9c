import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  shakeConfigV2,
  shakeConfigV4,
  parseShakeLine,
  parseShakeStatus,
  checkShakeBinary,
} from '../../src/data/engines/redis-shake.js';
import { loosesPrecision } from '../../src/steps/sync/shake-limits.js';
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

test('v4 config: the status port and the per-run dir are written (a status_port of 0 turns it off)', () => {
  const toml = shakeConfigV4({ source, target, dir: '/tmp/run-1', logFile: '/tmp/run-1/shake.log', statusPort: 15999 });
  assert.match(toml, /\[advanced\]\ndir = "\/tmp\/run-1"\nlog_file = "shake\.log"/);
  assert.match(toml, /\nstatus_port = 15999\n/);
  assert.match(shakeConfigV4({ source, target, dir: '/d', logFile: 'shake.log' }), /\nstatus_port = 0\n/);
});

test("v4.2.0's status page (captured from the real binary, 3 source masters): readers by address, in v4's order", () => {
  const body = readFileSync(new URL('../../../test/fixtures/redis-shake-v4.2.0-status.json', import.meta.url), 'utf8');
  const page = parseShakeStatus(body)!;
  assert.equal(page.consistent, false);
  assert.deepEqual(
    page.readers.map((r) => [r.address, r.phase, r.percent, r.diff, r.sentOffset]),
    [
      // Not yet passed on a command: sent offset 0, received offset the +FULLRESYNC one; nothing behind.
      ['127.0.0.1:15807', 'incremental', 100, 0, 0],
      ['127.0.0.1:15808', 'incremental', 100, 0, 214],
      ['127.0.0.1:15806', 'incremental', 100, 0, 0],
    ],
  );
  assert.equal(page.unanswered, 3);
  assert.equal(parseShakeStatus('<html>not the page</html>'), undefined);
  assert.equal(parseShakeStatus('{"error": "marshal"}'), undefined);
  const rdb = parseShakeStatus(
    JSON.stringify({
      consistent: false,
      reader: { address: 'a:1', status: 'syncing rdb', rdb_file_size_bytes: 400, rdb_sent_bytes: 100 },
    }),
  )!;
  assert.deepEqual([rdb.readers[0]!.phase, rdb.readers[0]!.percent], ['full', 25]);
});

test("v4.2.0's log as it really is: coloured console lines and the log file's JSON lines; errors found in both", () => {
  const colour =
    '\x1b[90m2026-12-02 16:46:02\x1b[0m \x1b[31mERR\x1b[0m [writer_127.0.0.1_15908] receive reply failed. cmd=[xadd e 1-0]';
  assert.match(parseShakeLine(colour)!.error!, /^\[writer_127\.0\.0\.1_15908\] receive reply failed/);
  const info =
    '\x1b[90m2026-12-02 16:45:53\x1b[0m \x1b[32mINF\x1b[0m read_count=[18318], read_ops=[0.00], write_count=[18318], write_ops=[0.00], src-2, syncing aof, diff=[0]';
  assert.deepEqual(parseShakeLine(info), { phase: 'incremental', diff: 0, writeOps: 0 });
  assert.deepEqual(
    parseShakeLine('{"level":"error","time":"2026-12-02T16:46:02Z","message":"dial tcp 127.0.0.1:1: refused"}'),
    { error: 'dial tcp 127.0.0.1:1: refused' },
  );
  assert.deepEqual(
    parseShakeLine('{"level":"info","time":"t","message":"read_count=[1], src-0, syncing rdb, size=[1 KiB/4 KiB]"}'),
    { phase: 'full', percent: 25 },
  );
  assert.equal(parseShakeLine('{"level":"info","message":"not set pprof port"}'), undefined);
});

test("zset scores v4.2.0's %f (6 decimals) would change", () => {
  assert.equal(loosesPrecision('981.17049131542444'), true);
  assert.equal(loosesPrecision('0.0000001'), true);
  for (const ok of ['12', '-50', '3.125', '1234.567', '0.000001', 'inf', '-inf', '1e+300'])
    assert.equal(loosesPrecision(ok), false, ok);
});
