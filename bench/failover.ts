/**
 * Time from CLUSTER FAILOVER to every node agreeing on the new roles, on a
 * local sandbox (cluster-node-timeout 2000 ms): the manual-failover runbook
 * (read from its agreement step) against a baseline measured in the same run,
 * a minimal loop that sends CLUSTER FAILOVER and polls CLUSTER NODES on every
 * node with no journal, no checks and no audit. Medians, because this machine
 * is shared and noisy.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseClusterNodes } from '../src/redis/cluster-nodes.js';
import { median } from './stats.js';
import { benchCli } from './bench-cli.js';

const BASE = 7900;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
const SHARDS = [0, 5461, 10923];
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const NODE_TIMEOUT = 2000;

const { cli } = benchCli('failover');

async function main(): Promise<void> {
  const up = cli([
    'sandbox',
    'up',
    '--name',
    'bench',
    '--base-port',
    String(BASE),
    '--keys',
    '20000',
    '--node-timeout',
    String(NODE_TIMEOUT),
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const inventory = up.stdout.trim();
  const password = readFileSync(join(inventory, '..', 'password'), 'utf8').trim();
  const conns = new Map(
    PORTS.map((p) => {
      const r = new Redis({ host: '127.0.0.1', port: p, password, lazyConnect: false });
      r.on('error', () => {});
      return [`127.0.0.1:${p}`, r];
    }),
  );
  const lastFailover = new Map<number, number>();

  const shardRoles = async (slot: number) => {
    const view = parseClusterNodes((await conns.get(`127.0.0.1:${BASE}`)!.call('CLUSTER', 'NODES')) as string);
    const m = view.find((n) => n.flags.includes('master') && n.slots.some(([a, b]) => a <= slot && slot <= b))!;
    const r = view.find((n) => n.masterId === m.id)!;
    return { master: m, replica: r };
  };
  // Voters refuse a second vote about the same master within 2 x node timeout: space failovers of a shard.
  const spacing = async (slot: number) => {
    const wait = (lastFailover.get(slot) ?? 0) + 2 * NODE_TIMEOUT + 300 - Date.now();
    if (wait > 0) await new Promise((s) => setTimeout(s, wait));
  };
  const stable = async (slot: number) => {
    for (;;) {
      try {
        return await shardRoles(slot);
      } catch {
        await new Promise((s) => setTimeout(s, 50));
      }
    }
  };

  const baseline: number[] = [];
  const tool: number[] = [];
  const toolWall: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Baseline: the least an operator's script could do.
    let slot = SHARDS[(2 * i) % 3]!;
    await spacing(slot);
    let { master, replica } = await stable(slot);
    const sent = Date.now();
    await conns.get(replica.address)!.call('CLUSTER', 'FAILOVER');
    for (;;) {
      const views = await Promise.all(
        [...conns.values()].map(async (c) => parseClusterNodes((await c.call('CLUSTER', 'NODES')) as string)),
      );
      const agree = views.every((v) => {
        const cand = v.find((n) => n.id === replica.id);
        const old = v.find((n) => n.id === master.id);
        return (
          cand?.flags.includes('master') &&
          cand.slots.length > 0 &&
          old &&
          !old.flags.includes('master') &&
          old.masterId === replica.id
        );
      });
      if (agree) break;
      await new Promise((s) => setTimeout(s, 20));
    }
    baseline.push(Date.now() - sent);
    lastFailover.set(slot, Date.now());

    // The tool: the manual-failover runbook, unattended.
    slot = SHARDS[(2 * i + 1) % 3]!;
    await spacing(slot);
    ({ master, replica } = await stable(slot));
    const t0 = Date.now();
    const r = cli(['run', 'manual-failover', '--inventory', inventory, '--param', `node=${master.address}`, '--yes']);
    toolWall.push(Date.now() - t0);
    if (r.status !== 0) throw new Error(`run failed:\n${r.stdout}\n${r.stderr}`);
    const id = /^run (\S+):/m.exec(r.stdout)![1]!;
    const show = JSON.parse(cli(['show', id, '--json']).stdout);
    tool.push(show.steps.find((s: { stepId: string }) => s.stepId === 'agreement').output.failoverToAgreementMs);
    lastFailover.set(slot, Date.now());
    process.stderr.write(`round ${i + 1}/${ROUNDS}: baseline ${baseline.at(-1)} ms, runbook ${tool.at(-1)} ms\n`);
  }
  for (const c of conns.values()) c.disconnect();
  cli(['sandbox', 'down', '--name', 'bench']);

  const row = (name: string, xs: number[], ratio: string) =>
    `| ${name} | ${median(xs)} | ${Math.min(...xs)} | ${Math.max(...xs)} | ${ratio} |`;
  console.log(
    `\nmanual failover on the sandbox (3 masters x 1 replica, 20000 keys, cluster-node-timeout ${NODE_TIMEOUT} ms), ${ROUNDS} rounds each`,
  );
  console.log('| measurement | median ms | min ms | max ms | ratio to baseline (medians) |');
  console.log('|---|---|---|---|---|');
  console.log(row('baseline: CLUSTER FAILOVER -> all nodes agree (bare loop)', baseline, '1.00'));
  console.log(row('runbook: CLUSTER FAILOVER -> all nodes agree', tool, (median(tool) / median(baseline)).toFixed(2)));
  console.log(
    row(
      'runbook: whole run (process start to exit, 5 steps)',
      toolWall,
      (median(toolWall) / median(baseline)).toFixed(2),
    ),
  );
}

await main();
