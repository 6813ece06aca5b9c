import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { ReplicaLink } from '../../src/data/readers/replica-link.js';
import { RespPipe } from '../../src/data/protocol/resp-pipe.js';
import { openSubscriber } from '../../src/data/engines/scan-session.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { ShardSync, newShardState } from '../../src/data/engines/shard-sync.js';
import type { Endpoint } from '../../src/data/endpoint.js';
import { startStandalone, type Standalone } from '../support/standalone.js';

// Ports 9390-9393 (this helper's range). 9390: a listening socket whose accept queue is full,
// so a connect to it gets no SYN-ACK and hangs; 9391: a plain redis-server; 9392: a proxy to it
// that can go silent; 9393: a server that accepts and never says a word.
const STALL = 9390;
const REDIS = 9391;
const PROXY = 9392;
const MUTE = 9393;
let redis: Standalone;
let stall: ChildProcess;
const fill: Socket[] = [];
let proxy: Server;
let mute: Server;
let silent = false;
const proxied: Socket[] = [];

before(async () => {
  // Node's net.Server always accepts; a listening socket that never does takes a few lines of Python.
  stall = spawn(
    'python3',
    [
      '-c',
      `import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',${STALL}))\ns.listen(1)\nprint('ready',flush=True)\nsys.stdin.read()`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  await new Promise((r) => stall.stdout!.once('data', r));
  // Backlog 1 holds two handshaken connections; the next SYN is dropped.
  for (let i = 0; i < 2; i++) {
    const s = connect(STALL, '127.0.0.1');
    fill.push(s);
    await new Promise((r) => s.once('connect', r));
  }
  const probe = connect(STALL, '127.0.0.1');
  const stalled = await new Promise<boolean>((r) => {
    probe.once('connect', () => r(false));
    setTimeout(() => r(true), 300);
  });
  probe.destroy();
  assert.ok(stalled, 'the rig: a connect to the full accept queue hangs');

  redis = await startStandalone({ port: REDIS, dirPrefix: 'rr-netb-' });
  const r = await redis.client();
  r.on('error', () => {});
  await r.call('CONFIG', 'SET', 'notify-keyspace-events', 'KA');
  r.disconnect();

  proxy = createServer((c) => {
    const up = connect(REDIS, '127.0.0.1');
    proxied.push(c, up);
    // Silent: bytes stop flowing either way, the connections stay open (a host gone, a half-open link).
    c.on('data', (d) => {
      if (!silent) up.write(d);
    });
    up.on('data', (d) => {
      if (!silent) c.write(d);
    });
    c.on('error', () => {});
    up.on('error', () => {});
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(PROXY, '127.0.0.1', r));
  mute = createServer((c) => {
    proxied.push(c);
    c.on('error', () => {});
  });
  await new Promise<void>((r) => mute.listen(MUTE, '127.0.0.1', r));
});

after(async () => {
  for (const s of [...fill, ...proxied]) s.destroy();
  stall.stdin!.end();
  stall.kill();
  proxy.close();
  mute.close();
  await redis?.stop();
});

/** Timers alive now (timers left behind would keep a finished run's process alive). */
const handles = () => process.getActiveResourcesInfo().filter((k) => k === 'Timeout').length;

test(
  'a connect that gets no SYN-ACK: ReplicaLink.start() rejects within its bound and leaves no timer behind',
  { timeout: 15_000 },
  async () => {
    const before = handles();
    const link = new ReplicaLink({ host: '127.0.0.1', port: STALL, password: 'never-sent', connectTimeoutMs: 1500 });
    let closed = false;
    link.on('close', () => {
      closed = true;
    });
    link.on('error', () => {});
    const started = Date.now();
    await assert.rejects(link.start(), /127\.0\.0\.1:9390: no answer within 1\.5 s/);
    const took = Date.now() - started;
    assert.ok(took >= 1400 && took < 4000, `rejected after ${took} ms`);
    assert.ok(closed, 'the link says it closed, so whoever waits for its close (ShardSync) goes on');
    link.close();
    // ioredis lets go of its last timer a moment after the socket closes.
    for (let i = 0; i < 40 && handles() > before; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      handles() <= before,
      `handles before ${before}, after ${handles()}: ${process.getActiveResourcesInfo().join(',')}`,
    );
  },
);

test(
  'a stalled connect is cut short by close() (the sync being stopped): start() settles at once, not after its bound',
  { timeout: 15_000 },
  async () => {
    const link = new ReplicaLink({ host: '127.0.0.1', port: STALL, connectTimeoutMs: 60_000 });
    const closed = new Promise<void>((r) => link.once('close', r));
    link.on('error', () => {});
    const starting = link.start();
    await new Promise((r) => setTimeout(r, 300));
    const at = Date.now();
    link.close();
    await assert.rejects(starting, /stopped/);
    await closed;
    assert.ok(Date.now() - at < 1000, `settled ${Date.now() - at} ms after close()`);
  },
);

test(
  'a shard sync whose source master never answers the SYN: stop() returns at once (a run can always be stopped, its lock released)',
  { timeout: 15_000 },
  async () => {
    const logs: string[] = [];
    const shard = new ShardSync({
      index: 0,
      ranges: [[0, 16383]],
      syncId: 'stall',
      credentials: { password: 'pw' },
      // A first sync never reads the target before the link is up: it is not needed here.
      target: async () => ({ name: 'target', kind: 'cluster', masters: [] }) as unknown as Endpoint,
      locateMaster: async () => `127.0.0.1:${STALL}`,
      sourceOffset: async () => 0,
      state: newShardState(),
      persist: () => {},
      log: (l) => logs.push(l),
      payloadVersion: () => undefined,
      bigKeyBytes: 1 << 20,
    });
    shard.start();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(shard.status().phase, 'connecting');
    const at = Date.now();
    await shard.stop();
    assert.ok(Date.now() - at < 1000, `stop() took ${Date.now() - at} ms`);
    assert.equal(shard.status().phase, 'stopped');
  },
);

test(
  'a master that accepts and then never answers the handshake: start() rejects within the idle bound',
  { timeout: 15_000 },
  async () => {
    const link = new ReplicaLink({ host: '127.0.0.1', port: MUTE, password: 'pw', idleTimeoutMs: 1000 });
    link.on('error', () => {});
    const started = Date.now();
    await assert.rejects(link.start());
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 4000, `rejected after ${took} ms`);
  },
);

test(
  "the target's pipelined connection: a connect with no SYN-ACK rejects within its bound",
  { timeout: 15_000 },
  async () => {
    const before = handles();
    const started = Date.now();
    await assert.rejects(
      RespPipe.open(`127.0.0.1:${STALL}`, {}, { connectTimeoutMs: 1500 }),
      /no answer within 1\.5 s/,
    );
    const took = Date.now() - started;
    assert.ok(took >= 1400 && took < 4000, `rejected after ${took} ms`);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(handles() <= before, `handles before ${before}, after ${handles()}`);
  },
);

test(
  "the target's pipelined connection: a target that never replies fails the pipe within its reply bound",
  { timeout: 15_000 },
  async () => {
    const pipe = await RespPipe.open(`127.0.0.1:${MUTE}`, {}, { replyTimeoutMs: 1000 });
    const started = Date.now();
    await assert.rejects(pipe.send([['PING']]), /sent no reply for 1 s/);
    assert.ok(Date.now() - started < 4000);
    assert.equal(pipe.alive, false);
  },
);

test(
  'the scan subscriber: a node that takes the connection and never answers fails the subscription within its bound',
  { timeout: 15_000 },
  async () => {
    const pool = new ClusterPool({ name: 'source', seeds: [] }, { access: 'read-only' });
    const started = Date.now();
    await assert.rejects(
      openSubscriber({
        address: `127.0.0.1:${MUTE}`,
        pool,
        pattern: 'x*',
        idleMs: 1000,
        onMessage: () => {},
        onLost: () => {},
      }),
    );
    assert.ok(Date.now() - started < 4000, `rejected after ${Date.now() - started} ms`);
  },
);

test(
  'the scan subscriber notices a peer that stops answering within its idle bound, and its timer goes with it',
  { timeout: 15_000 },
  async () => {
    silent = false;
    const pool = new ClusterPool({ name: 'source', seeds: [`127.0.0.1:${PROXY}`] }, { access: 'read-only' });
    const seen: string[] = [];
    let lostAt = 0;
    const before = handles();
    const sub = await openSubscriber({
      address: `127.0.0.1:${PROXY}`,
      pool,
      pattern: '__keyspace@0__:*',
      idleMs: 1000,
      onMessage: (channel) => seen.push(channel.toString()),
      onLost: () => {
        lostAt = Date.now();
      },
    });
    try {
      // It works through the proxy first: an event arrives.
      const w = new Redis({
        port: REDIS,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      await w.connect();
      await w.set('probe', '1');
      w.disconnect();
      for (let i = 0; i < 50 && !seen.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(seen, ['__keyspace@0__:probe']);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(lostAt, 0, 'a quiet but answering source is not declared lost');
      silent = true;
      const wentSilent = Date.now();
      for (let i = 0; i < 200 && !lostAt; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(lostAt > 0, 'the subscriber noticed the silent peer');
      assert.ok(lostAt - wentSilent < 2500, `noticed after ${lostAt - wentSilent} ms`);
    } finally {
      sub.close();
      silent = false;
      await pool.close();
    }
    // ioredis lets go of its last timer a moment after the socket closes.
    for (let i = 0; i < 40 && handles() > before; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      handles() <= before,
      `handles before ${before}, after ${handles()}: ${process.getActiveResourcesInfo().join(',')}`,
    );
  },
);
