/**
 * `verify --mode full` against RedisFullCheck (`--comparemode=1`, full values), both as the
 * operator runs them (a process each, timed by /usr/bin/time for wall, CPU and peak RSS), on
 * the same data: a 3-master source and a 5-master target seeded with the same mixed keys
 * (default 1M). Rounds alternate; medians are reported. Then the same set of planted
 * differences, one of each kind, is given to both, and the table says which each found.
 *
 * RedisFullCheck compares one way (source keys only) and ignores TTLs: verify is timed both
 * for its full comparison (type, value and TTL) and with --no-ttl (type and value: what
 * RedisFullCheck compares). Both are one way here (no --extra), like RedisFullCheck.
 * The binary: RR_FULLCHECK_BINARY, else ../shared/tools/redis-full-check/redis-full-check
 * beside the repository (where this machine image keeps it).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { median } from './stats.js';
import { timed, type Timed } from './timed.js';
import { seedKeys, type SeedKey } from '../src/sandbox/seed-keys.js';
import { CLI } from './bench-cli.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const KEYS = Number(process.env.BENCH_PEERS_KEYS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_PEERS_RUNS ?? 3);
const BASE = 8600;
const FULLCHECK =
  process.env.RR_FULLCHECK_BINARY ?? join(REPO, '..', 'shared', 'tools', 'redis-full-check', 'redis-full-check');
const home = mkdtempSync(join(tmpdir(), 'rr-bench-peers-'));

/** Runs a command under GNU time, in this bench's home. */
const timedHere = (cmd: string, args: string[]): Timed =>
  timed(cmd, args, home, { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' });

const cli = (args: string[]) => timedHere(process.execPath, [CLI, ...args]);
const nodes = (base: number, n: number) => Array.from({ length: n }, (_, i) => `127.0.0.1:${base + i}`).join(';');

function runVerify(inventory: string, extra: boolean, ttl = true): { t: Timed; keys: string[] } {
  const args = ['verify', '--inventory', inventory, '--source', 'source', '--target', 'target'];
  args.push('--rounds', '1', '--qps', '0', '--json', ...(extra ? ['--extra'] : []), ...(ttl ? [] : ['--no-ttl']));
  const t = cli(args);
  const out = JSON.parse(t.stdout) as { report: { compared: number }; differences: Array<{ key: string }> };
  return { t, keys: out.differences.map((d) => d.key) };
}

function runFullCheck(password: string, run: string, mayFail = false): { t: Timed; keys: string[] } {
  const result = join(home, `${run}.txt`);
  const t = timedHere(FULLCHECK, [
    ...['-s', nodes(BASE, 3), '-p', password, '--sourcedbtype=1'],
    ...['-t', nodes(BASE + 100, 5), '-a', password, '--targetdbtype=1'],
    ...['--comparemode=1', '--comparetimes=1', '--qps=1000000', `--db=${join(home, run)}.db`],
    ...[`--result=${result}`, `--log=${join(home, run)}.log`],
  ]);
  if (t.status !== 0 && mayFail) return { t, keys: [] };
  if (t.status !== 0) throw new Error(`redis-full-check failed (${t.status}): ${t.stderr.slice(-2000)}`);
  // One line per difference: db, kind, key, field.
  const keys = existsSync(result)
    ? readFileSync(result, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[2]!)
    : [];
  return { t, keys: [...new Set(keys)] };
}

/** One planted difference of each kind, on keys of the seeded data (deterministic: seed-keys.ts). */
async function plant(target: Cluster): Promise<Array<{ kind: string; key: string }>> {
  const seeded = [...seedKeys(Math.min(KEYS, 20_000))];
  const pick = (type: SeedKey['type'], ttl: boolean, skip = 0): string =>
    seeded.filter((k) => k.type === type && !!k.ttlSeconds === ttl)[skip]!.key;
  const planted: Array<{ kind: string; key: string; act: () => Promise<unknown> }> = [];
  const add = (kind: string, key: string, act: (k: string) => Promise<unknown>) =>
    planted.push({ kind, key, act: () => act(key) });
  add('string value changed', pick('string', false, 0), (k) => target.set(k, 'planted'));
  add('key missing on the target', pick('string', false, 1), (k) => target.del(k));
  add('key only on the target', 'peers:planted:extra', (k) => target.set(k, '1'));
  add('hash field value changed', pick('hash', false, 0), async (k) => {
    const [f] = await target.hkeys(k);
    return target.hset(k, f!, 'planted');
  });
  add('hash field missing', pick('hash', false, 1), async (k) => target.hdel(k, (await target.hkeys(k))[0]!));
  add('hash field extra', pick('hash', false, 2), (k) => target.hset(k, 'planted-field', '1'));
  add('list element changed', pick('list', false, 0), (k) => target.lset(k, 0, 'planted'));
  add('set member missing', pick('set', false, 0), async (k) => target.srem(k, (await target.smembers(k))[0]!));
  add('zset score changed', pick('zset', false, 0), async (k) => {
    const [m] = await target.zrange(k, 0, 0);
    return target.zincrby(k, 1, m!);
  });
  add('stream entry extra', pick('stream', false, 0), (k) => target.xadd(k, '*', 'planted', '1'));
  add('TTL lost (PERSIST)', pick('string', true, 0), (k) => target.persist(k));
  add('TTL added', pick('string', false, 2), (k) => target.expire(k, 86_400));
  for (const p of planted) await p.act();
  return planted.map(({ kind, key }) => ({ kind, key }));
}

/** Planted after the others: RedisFullCheck 1.4.8 stops (a Go panic on WRONGTYPE) when a key's type differs. */
async function plantTypeChange(target: Cluster): Promise<{ kind: string; key: string }> {
  const key = [...seedKeys(Math.min(KEYS, 20_000))].filter((k) => k.type === 'string' && !k.ttlSeconds)[3]!.key;
  await target.del(key);
  await target.rpush(key, 'planted');
  return { kind: 'type changed (string -> list)', key };
}

function row(name: string, xs: Timed[], keys: number, base?: number): string {
  const rate = median(xs.map((t) => keys / t.wallS));
  const ratio = base ? (rate / base).toFixed(2) : '1.00';
  const f = (v: number) => v.toFixed(1);
  return `| ${name} | ${Math.round(rate)} | ${f(median(xs.map((t) => t.wallS)))} | ${f(median(xs.map((t) => t.cpuS)))} | ${Math.round(median(xs.map((t) => t.rssMb)))} | ${ratio} |`;
}

async function main(): Promise<void> {
  if (!existsSync(FULLCHECK))
    throw new Error(`RedisFullCheck not found at ${FULLCHECK}: set RR_FULLCHECK_BINARY to its path`);
  process.stderr.write(`starting a 3-master source and a 5-master target with ${KEYS} keys each...\n`);
  const up = cli([
    ...['sandbox', 'up', '--name', 'peers', '--base-port', String(BASE), '--replicas', '0'],
    ...['--target-masters', '5', '--seed-target', '--keys', String(KEYS)],
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const inventory = up.stdout.trim();
  const password = readFileSync(join(inventory, '..', 'password'), 'utf8').trim();
  const ours: Timed[] = [];
  const oursNoTtl: Timed[] = [];
  const theirs: Timed[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const v = runVerify(inventory, false);
      if (v.t.status !== 0 || v.keys.length) throw new Error(`verify on equal data: ${v.t.stdout.slice(0, 2000)}`);
      ours.push(v.t);
      const n = runVerify(inventory, false, false);
      if (n.t.status !== 0 || n.keys.length)
        throw new Error(`verify --no-ttl on equal data: ${n.t.stdout.slice(0, 2000)}`);
      oursNoTtl.push(n.t);
      const c = runFullCheck(password, `round${i}`);
      if (c.keys.length) throw new Error(`redis-full-check on equal data found ${c.keys.length}: ${c.keys[0]}`);
      theirs.push(c.t);
      process.stderr.write(
        `round ${i + 1}/${RUNS}: verify ${v.t.wallS} s, verify --no-ttl ${n.t.wallS} s, redis-full-check ${c.t.wallS} s (${KEYS} keys)\n`,
      );
    }
    const target = new Cluster([{ host: '127.0.0.1', port: BASE + 100 }], { redisOptions: { password } });
    const planted = await plant(target);
    const v = new Set(runVerify(inventory, true).keys);
    const c = new Set(runFullCheck(password, 'planted').keys);
    // Then the type change, alone on top of the others: each tool's run is reported as it ended.
    const typed = await plantTypeChange(target);
    target.disconnect();
    planted.push(typed);
    if (runVerify(inventory, true).keys.includes(typed.key)) v.add(typed.key);
    const last = runFullCheck(password, 'planted-type', true);
    const crashed = last.t.status !== 0 && /panic|goroutine/.test(last.t.stderr);
    if (last.keys.includes(typed.key)) c.add(typed.key);
    console.log(`\nverify vs RedisFullCheck, ${KEYS} mixed keys, 3-master source, 5-master target, ${RUNS} rounds`);
    console.log('| tool | median keys/s | wall s | CPU s | peak RSS MB | ratio to RedisFullCheck |');
    console.log('|---|---|---|---|---|---|');
    const base = median(theirs.map((t) => KEYS / t.wallS));
    console.log(row('RedisFullCheck 1.4.8 --comparemode=1 (values; one way, no TTL)', theirs, KEYS));
    console.log(row('redis-runbook verify --mode full (values and TTLs)', ours, KEYS, base));
    console.log(
      row('redis-runbook verify --mode full --no-ttl (values; what RedisFullCheck checks)', oursNoTtl, KEYS, base),
    );
    console.log(`\nplanted differences (${planted.length}), found by each`);
    console.log('| difference | key | verify --extra | RedisFullCheck |');
    console.log('|---|---|---|---|');
    for (const p of planted)
      console.log(
        `| ${p.kind} | \`${p.key}\` | ${v.has(p.key) ? 'found' : 'MISSED'} | ${c.has(p.key) ? 'found' : p === typed && crashed ? `stopped (exit ${last.t.status}: panic on WRONGTYPE)` : 'missed'} |`,
      );
    const missedByUs = planted.filter((p) => !v.has(p.key));
    if (missedByUs.length) process.exitCode = 1;
  } finally {
    cli(['sandbox', 'down', '--name', 'peers']);
  }
}

await main();
