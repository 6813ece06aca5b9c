import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Cluster } from 'ioredis';
import { CLI, cli, tempStateDir, type CliResult } from './cli.js';
import { startWriter } from './writer.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';
import { ClusterPool } from '../../src/redis/connect.js';
import { moveSlots } from '../../src/redis/slot-move.js';

/**
 * The three scenarios where a topology change used to be declared done while
 * some node still saw the old state: each runs a runbook unattended on a
 * fresh sandbox while a writer works. Used once each by the e2e test and
 * many times by the soak (`npm run test:soak`).
 */

export interface ScenarioResult {
  name: string;
  code: number;
  ms: number;
  out: string;
  writes: number;
  settleLines: string[];
  retryLines: string[];
}

/** Run the CLI, calling `onLine` for each line of output as it arrives. */
function cliWatching(home: string, args: string[], onLine: (line: string) => void): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) onLine(l);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 1), stdout, stderr, out: stdout + stderr }),
    );
  });
}

async function up(home: string, args: string[]): Promise<{ inventory: string; password: string }> {
  const r = await cli(home, ['sandbox', 'up', '--name', 'cv', ...args]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  const inventory = r.stdout.trim().split('\n').pop()!;
  return { inventory, password: readFileSync(join(dirname(inventory), 'password'), 'utf8').trim() };
}

/**
 * A runbook run unattended on a fresh sandbox while a writer (no deletes: the
 * runbooks check no key was lost) works on `writerPort`.
 */
async function underLoad(
  name: string,
  sandboxArgs: string[],
  writerPort: (base: number) => number,
  run: (inventory: string, base: number) => string[],
  base: number,
): Promise<ScenarioResult> {
  const home = tempStateDir('rr-conv-');
  const { inventory, password } = await up(home, ['--base-port', String(base), ...sandboxArgs]);
  try {
    const writer = startWriter(writerPort(base), password, `w${name.length}`, { deletes: false });
    const started = Date.now();
    const r = await cli(home, [...run(inventory, base), '--yes']);
    return summary(name, r, started, await writer.stop());
  } finally {
    await cli(home, ['sandbox', 'down', '--name', 'cv']);
  }
}

const summary = (name: string, r: CliResult, started: number, writes: number): ScenarioResult => ({
  name,
  code: r.code,
  ms: Date.now() - started,
  out: r.out,
  writes,
  settleLines: r.out
    .split('\n')
    .filter((l) => /agree on the new topology/.test(l))
    .map((l) => l.trim()),
  retryLines: r.out
    .split('\n')
    .filter((l) => /still settling/.test(l))
    .map((l) => l.trim()),
});

/**
 * 4 masters without replicas, 20000 keys; decommission the last master with
 * moveSlots=true while the writer works (its slots move under writes, then
 * `forget` reads every node's view of them).
 */
export const decommissionUnderLoad = (base: number) =>
  underLoad(
    'decommission moveSlots=true',
    ['--masters', '4', '--replicas', '0', '--keys', '20000'],
    (b) => b,
    (inventory, b) => [
      'run',
      'decommission-node',
      '--inventory',
      inventory,
      '--param',
      `node=127.0.0.1:${b + 3}`,
      '--param',
      'moveSlots=true',
      '--allow-destructive',
    ],
    base,
  );

/** 3 masters x 1 replica, 20000 keys, made uneven (2000 slots moved), then rebalanced while the writer works. */
export async function rebalanceUnderLoad(base: number): Promise<ScenarioResult> {
  const home = tempStateDir('rr-conv-');
  const { inventory, password } = await up(home, ['--base-port', String(base), '--keys', '20000']);
  try {
    const pool = new ClusterPool(
      { name: 'source', seeds: [`127.0.0.1:${base}`], auth: { password: { env: 'RR_CONV_PW' } } } as never,
      { access: 'read-write' },
    );
    process.env.RR_CONV_PW = password;
    const view = parseClusterNodes(await pool.node(`127.0.0.1:${base}`).text('CLUSTER', 'NODES'));
    const node = (port: number) => {
      const l = view.find((x) => x.address === `127.0.0.1:${port}`)!;
      return { id: l.id, address: l.address };
    };
    const first = view.find((l) => l.address === `127.0.0.1:${base}`)!;
    const slots = first.slots.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i)).slice(0, 2000);
    await moveSlots(
      pool,
      slots.map((slot) => ({ slot, from: node(base), to: node(base + 1) })),
      { batch: 100, migrateTimeoutMs: 20000, masters: [0, 1, 2].map((i) => `127.0.0.1:${base + i}`), concurrency: 4 },
    );
    await pool.close();
    const writer = startWriter(base, password, 'wr', { deletes: false });
    const started = Date.now();
    const r = await cli(home, ['run', 'rebalance', '--inventory', inventory, '--yes']);
    return summary('rebalance', r, started, await writer.stop());
  } finally {
    await cli(home, ['sandbox', 'down', '--name', 'cv']);
  }
}

/**
 * 3 x 1 -> 5 x 1 by consolidate-and-reshard over ssh, 30000 keys plus a
 * 20 MB list, cluster-node-timeout 5000 ms: the collecting target master and
 * its replica are down for the backup and the copy of a file that size,
 * longer than the node timeout, so the other target nodes flag it `fail` and
 * keep the flag a while after it is back (the reshard then met CLUSTERDOWN).
 * The writer works on the source while its slots are collected, and stops
 * once the source is consolidated (a file copy carries the writes made
 * before the save, and the final comparison is against the live source).
 */
export async function consolidateUnderLoad(base: number): Promise<ScenarioResult> {
  const home = tempStateDir('rr-conv-');
  const { inventory, password } = await up(home, [
    '--base-port',
    String(base),
    '--keys',
    '30000',
    '--target-masters',
    '5',
    '--ssh',
    '--node-timeout',
    '5000',
  ]);
  try {
    const c = new Cluster([{ host: '127.0.0.1', port: base }], { redisOptions: { password } });
    const value = 'x'.repeat(1000);
    for (let b = 0; b < 20; b++) await c.rpush('big:list', ...Array.from({ length: 1000 }, () => value));
    c.disconnect();
    const writer = startWriter(base, password, 'wc');
    let stopping: Promise<number> | undefined;
    const started = Date.now();
    const r = await cliWatching(
      home,
      ['run', 'migrate-consolidate-reshard', '--inventory', inventory, '--yes', '--allow-destructive'],
      (line) => {
        if (!stopping && /^\[\d+\/\d+\] consolidate-target /.test(line)) stopping = writer.stop();
      },
    );
    const writes = await (stopping ?? writer.stop());
    return summary('consolidate-and-reshard', r, started, writes);
  } finally {
    await cli(home, ['sandbox', 'down', '--name', 'cv']);
  }
}

/** 3 x 1, 20000 keys: a planned failover of the first master and its fail-back while the writer works (the failover family's agreement). */
export const failoverUnderLoad = (base: number) =>
  underLoad(
    'manual-failover with fail-back',
    ['--keys', '20000'],
    (b) => b,
    (inventory, b) => [
      'run',
      'manual-failover',
      '--inventory',
      inventory,
      '--param',
      `node=127.0.0.1:${b}`,
      '--param',
      'failback=true',
    ],
    base,
  );

/** 3 x 1, 20000 keys: a drill by SHUTDOWN of the first master, restored as a replica, while the writer works (through another master). */
export const drillUnderLoad = (base: number) =>
  underLoad(
    'failover-drill with restore',
    ['--keys', '20000'],
    (b) => b + 1,
    (inventory, b) => [
      'run',
      'failover-drill',
      '--inventory',
      inventory,
      '--param',
      `node=127.0.0.1:${b}`,
      '--allow-destructive',
    ],
    base,
  );
