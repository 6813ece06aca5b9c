import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadInventory } from '../../src/inventory/load.js';
import { resolveSecret } from '../../src/inventory/secret.js';
import { RunbookError } from '../../src/errors.js';
import {
  sandboxDown,
  sandboxStatus,
  sandboxUp,
  type SandboxInfo,
  type SandboxUpOptions,
} from '../../src/sandbox/sandbox.js';
import { isListening } from '../../src/sandbox/ports.js';

// Real redis-server processes on 127.0.0.1:7600.. (source) and 7700.. (target).
const stateDir = mkdtempSync(join(tmpdir(), 'rr-sandbox-test-'));
const options: SandboxUpOptions = {
  stateDir,
  name: 'itest',
  masters: 3,
  replicas: 1,
  targetMasters: 2,
  keys: 2000,
  basePort: 7600,
  nodeTimeoutMs: 2000,
};
let info: SandboxInfo;
let password: string;
const clients: Redis[] = [];

async function node(port: number): Promise<Redis> {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    commandTimeout: 5000,
  });
  r.on('error', () => {});
  await r.connect();
  clients.push(r);
  return r;
}

async function text(r: Redis, ...args: string[]): Promise<string> {
  return String(await r.call(args[0]!, ...args.slice(1)));
}

function clusterNodes(s: string) {
  return s
    .trim()
    .split('\n')
    .map((l) => {
      const f = l.split(' ');
      return {
        id: f[0]!,
        port: Number(/:(\d+)@/.exec(f[1]!)![1]),
        flags: f[2]!.split(','),
        master: f[3]!,
        slots: f.slice(8),
      };
    });
}

async function slotCoverage(port: number): Promise<number> {
  const r = await node(port);
  const slots = (await r.call('CLUSTER', 'SLOTS')) as Array<[number, number, ...unknown[]]>;
  const seen = new Set<number>();
  for (const [a, b] of slots)
    for (let s = a; s <= b; s++) {
      assert.ok(!seen.has(s), `slot ${s} listed twice`);
      seen.add(s);
    }
  return seen.size;
}

before(async () => {
  info = await sandboxUp(options);
  password = readFileSync(info.passwordFile, 'utf8');
});

after(async () => {
  for (const c of clients) c.disconnect();
  try {
    await sandboxDown(stateDir, options.name);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test('layout and password file', () => {
  assert.equal(info.dir, join(stateDir, 'sandbox', 'itest'));
  // Without --source-server/--target-server both clusters run redis-server from PATH.
  const server = info.clusters[0]!.server!;
  assert.equal(server.binary, 'redis-server');
  assert.match(server.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(info.clusters, [
    { name: 'source', ports: [7600, 7601, 7602, 7603, 7604, 7605], masters: 3, replicasPerMaster: 1, server },
    { name: 'target', ports: [7700, 7701, 7702, 7703], masters: 2, replicasPerMaster: 1, server },
  ]);
  for (const f of ['7600', '7700'])
    assert.equal(readFileSync(join(info.dir, 'nodes', f, 'server'), 'utf8'), 'redis-server\n');
  assert.match(password, /^[0-9a-f]{48}$/);
  assert.equal(statSync(info.passwordFile).mode & 0o777, 0o600);
  assert.ok(existsSync(join(info.dir, 'sandbox.json')));
  for (const f of ['redis.conf', 'nodes.conf', 'redis.log', 'redis.pid'])
    assert.ok(existsSync(join(info.dir, 'nodes', '7600', f)), f);
});

test('inventory loads and references the password by file only', () => {
  const inv = loadInventory(info.inventoryPath);
  assert.deepEqual(inv.clusters.source!.seeds, ['127.0.0.1:7600', '127.0.0.1:7601', '127.0.0.1:7602']);
  assert.deepEqual(inv.clusters.target!.seeds, ['127.0.0.1:7700', '127.0.0.1:7701']);
  assert.deepEqual(inv.clusters.source!.auth?.password, { file: info.passwordFile });
  assert.equal(resolveSecret(inv.clusters.source!.auth!.password!, 'test'), password);
  const host = inv.hosts.localhost!;
  assert.equal(host.transport, 'local');
  assert.deepEqual(host.addresses, ['127.0.0.1']);
  assert.equal(host.service?.start, `"$(cat ${info.dir}/nodes/{port}/server)" ${info.dir}/nodes/{port}/redis.conf`);
  assert.equal(host.service?.stop, `kill $(cat ${info.dir}/nodes/{port}/redis.pid)`);
  assert.equal(host.service?.kill, `kill -9 $(cat ${info.dir}/nodes/{port}/redis.pid)`);
  assert.ok(!readFileSync(info.inventoryPath, 'utf8').includes(password));
});

test('source: 3 masters each with one replica in sync; target: 2 masters', async () => {
  for (const [cluster, masters] of [
    ['source', [7600, 7601, 7602]],
    ['target', [7700, 7701]],
  ] as const) {
    const nodes = clusterNodes(await text(await node(masters[0]), 'CLUSTER', 'NODES'));
    const ports = info.clusters.find((c) => c.name === cluster)!.ports;
    assert.deepEqual(nodes.map((n) => n.port).sort(), [...ports].sort(), `${cluster} nodes`);
    const ms = nodes.filter((n) => n.flags.includes('master'));
    assert.deepEqual(ms.map((n) => n.port).sort(), [...masters]);
    for (const [i, m] of ms.sort((a, b) => a.port - b.port).entries()) {
      const replicas = nodes.filter((n) => n.master === m.id);
      assert.equal(replicas.length, 1, `${cluster} master ${m.port} replicas`);
      // Documented layout: replica j of master i is on base + masters + i * replicas + j.
      assert.equal(replicas[0]!.port, masters[0] + masters.length + i);
      const r = await node(replicas[0]!.port);
      const repl = await text(r, 'INFO', 'replication');
      assert.match(repl, /master_link_status:up/);
      assert.match(repl, new RegExp(`master_port:${m.port}\\b`));
      assert.equal(
        await r.dbsize(),
        await (await node(m.port)).dbsize(),
        `replica ${replicas[0]!.port} holds its master's keys`,
      );
    }
    assert.match(await text(await node(masters[0]), 'CLUSTER', 'INFO'), /cluster_state:ok/);
  }
});

test('every slot is covered on both clusters', async () => {
  assert.equal(await slotCoverage(7600), 16384);
  assert.equal(await slotCoverage(7700), 16384);
});

test('source holds exactly the seeded keys, of every type, some with TTL; target is empty', async () => {
  let source = 0;
  const types = new Map<string, number>();
  let withTtl = 0;
  for (const port of [7600, 7601, 7602]) {
    const r = await node(port);
    source += await r.dbsize();
    const keys = await r.keys('*');
    const p = r.pipeline();
    for (const k of keys) p.type(k).ttl(k);
    const replies = (await p.exec())!;
    for (let i = 0; i < replies.length; i += 2) {
      const t = replies[i]![1] as string;
      types.set(t, (types.get(t) ?? 0) + 1);
      const ttl = replies[i + 1]![1] as number;
      if (ttl > 0) {
        withTtl++;
        assert.ok(ttl > 3000 && ttl <= 86400, `ttl ${ttl}`);
      }
    }
  }
  assert.equal(source, 2000);
  for (const t of ['string', 'list', 'hash', 'set', 'zset', 'stream'])
    assert.ok((types.get(t) ?? 0) > 0, `a ${t} key exists`);
  assert.ok(withTtl > 50 && withTtl < 400, `about 10% have a TTL (got ${withTtl})`);
  let target = 0;
  for (const port of [7700, 7701]) target += await (await node(port)).dbsize();
  assert.equal(target, 0);
  // Some streams have a consumer group holding a pending entry.
  let grouped = 0;
  for (const port of [7600, 7601, 7602]) {
    const r = await node(port);
    for (const k of await r.keys('events:*')) {
      const groups = (await r.call('XINFO', 'GROUPS', k)) as unknown[][];
      if (groups.length === 0) continue;
      grouped++;
      const g = groups[0]!;
      assert.equal(g[g.indexOf('name') + 1], 'workers');
      assert.equal(g[g.indexOf('pending') + 1], 1);
    }
  }
  assert.ok(grouped > 0, 'a stream with a consumer group exists');
});

test('status reports every node running', async () => {
  const status = await sandboxStatus(stateDir);
  assert.equal(status.length, 1);
  assert.equal(status[0]!.name, 'itest');
  assert.equal(status[0]!.inventoryPath, info.inventoryPath);
  assert.deepEqual(
    status[0]!.clusters.map((c) => [c.name, c.ports.length, c.running]),
    [
      ['source', 6, 6],
      ['target', 4, 4],
    ],
  );
});

test('a second up with the same name, or on the same ports, is refused', async () => {
  await assert.rejects(sandboxUp(options), (err: unknown) => {
    assert.ok(err instanceof RunbookError);
    assert.equal(err.code, 'E_SANDBOX_EXISTS');
    assert.equal(err.kind, 'usage');
    assert.match(err.remedy ?? '', /redis-runbook sandbox down --name itest/);
    return true;
  });
  await assert.rejects(sandboxUp({ ...options, name: 'other' }), (err: unknown) => {
    assert.ok(err instanceof RunbookError);
    assert.equal(err.code, 'E_PORT_IN_USE');
    assert.match(err.remedy ?? '', /sandbox down --name itest/);
    assert.match(err.remedy ?? '', /--base-port/);
    return true;
  });
  assert.ok(!existsSync(join(stateDir, 'sandbox', 'other')), 'the refused sandbox left nothing behind');
});

test('down stops every node and removes the directory', async () => {
  for (const c of clients.splice(0)) c.disconnect();
  const { stopped } = await sandboxDown(stateDir, 'itest');
  assert.equal(stopped, 10);
  for (const port of [...info.clusters[0]!.ports, ...info.clusters[1]!.ports])
    assert.equal(await isListening(port), false, `port ${port} closed`);
  assert.ok(!existsSync(info.dir));
  assert.deepEqual(await sandboxStatus(stateDir), []);
  assert.deepEqual(await sandboxDown(stateDir, 'itest'), { stopped: 0 });
});
