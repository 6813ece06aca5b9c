/**
 * The built-in live-sync engine against the real RedisShake (v4.2.0), each as a process of its
 * own under /usr/bin/time (wall, CPU, peak RSS), on the same data: a 3-master source seeded with
 * BENCH_PEERS_KEYS (or BENCH_KEYS) mixed keys (default 1M) and an empty 5-master target, no replicas.
 *
 * 1. Full sync, BENCH_PEERS_RUNS (or BENCH_ROUNDS) alternating rounds (default 3), medians. Each
 *    run starts on a flushed target; its time is until the target's DBSIZE, summed over its masters,
 *    equals the source's (the same end test for both). The tool is then left to say its full sync is
 *    done (the engine: every shard in phase 'stream'; RedisShake: every reader of its status page in
 *    'syncing aof', which it refreshes once a second), reported beside, before it is stopped. The
 *    engine's checkpoint keys on the target (one per source shard per target master) are not counted.
 *    The engine runs as bench/peers-sync-engine.ts, with the heap bound bin/redis-runbook gives the
 *    CLI. MB/s is of the source's RDB bytes (the engine: what PSYNC sent it; RedisShake:
 *    rdb_file_size_bytes on its status page).
 * 2. Incremental lag: after a full sync of each, BENCH_RATE writes/s (default 5000) on the source
 *    for 15 s and a probe SET every 100 ms, timed until a GET on the target sees it (bench/lag.ts).
 *
 * The binary: RR_SHAKE_BINARY, else ../shared/tools/redis-shake/redis-shake beside the repository.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterPool } from '../src/redis/connect.js';
import { openEndpoint, type Endpoint } from '../src/data/endpoint.js';
import { shakeConfigV4, parseShakeStatus } from '../src/data/engines/redis-shake.js';
import { CHECKPOINT_PREFIX } from '../src/data/writer/checkpoint.js';
import { median, percentile } from './stats.js';
import { timedSpawn, type Timed, type TimedChild } from './timed.js';
import { measureLag, type Lag } from './lag.js';
import { benchCli } from './bench-cli.js';

const ENGINE = fileURLToPath(new URL('./peers-sync-engine.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHAKE = process.env.RR_SHAKE_BINARY ?? join(REPO, '..', 'shared', 'tools', 'redis-shake', 'redis-shake');
const KEYS = Number(process.env.BENCH_PEERS_KEYS ?? process.env.BENCH_KEYS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_PEERS_RUNS ?? process.env.BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.BENCH_RATE ?? 5000);
const LAG_SECONDS = 15;
const HEAP_MB = Number(process.env.REDIS_RUNBOOK_MAX_HEAP_MB ?? 192);
const NAME = 'peersync';
const BASE = 8800;
const TARGET_BASE = BASE + 100;
const STATUS_BASE = 8950; // 8950-8959, one per RedisShake run in turn
const TARGET_MASTERS = 5;
/** How long a full sync may take before the bench gives up on it. */
const LOAD_TIMEOUT_MS = Math.max(120_000, KEYS / 2);
const { home, cli } = benchCli('peers-sync');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Tool = 'built-in' | 'RedisShake';

interface Run {
  tool: Tool;
  /** Start -> loaded: the target's DBSIZE equal to the source's, the time compared (the same end test for both). */
  loadedS: number;
  /** Start -> the tool's own "full sync done". */
  doneS: number;
  cpuS: number;
  rssMb: number;
  keys: number;
  rdbBytes: number;
  /** RedisShake: what its status page said, and when (s from start). */
  events: string[];
}

/** Every tool process this bench started: killed (their process group) on every way out. */
const live = new Set<TimedChild>();
const killAll = () => live.forEach((c) => c.kill());
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    killAll();
    cli(['sandbox', 'down', '--name', NAME]);
    process.exit(130);
  });

const dbsize = async (ep: Endpoint) =>
  (await Promise.all(ep.masters.map((m) => m.call('DBSIZE')))).reduce((n: number, x) => n + Number(x), 0);

/** The keys of the engine's own bookkeeping on the target: a checkpoint per source shard per target master. */
async function checkpointKeys(ep: Endpoint): Promise<number> {
  let n = 0;
  for (const node of ep.masters)
    for (let cursor = '0'; ;) {
      const [next, keys] = (await node.call('SCAN', cursor, 'MATCH', `${CHECKPOINT_PREFIX}*`, 'COUNT', 10000)) as [
        string,
        string[],
      ];
      n += keys.length;
      cursor = String(next);
      if (cursor === '0') break;
    }
  return n;
}

/**
 * The target's keys (DBSIZE summed over its masters), less the engine's checkpoint keys once
 * it holds as many as the source (they are counted only then: a SCAN of every key). DBSIZE and
 * the SCAN are not one instant: while the engine writes or removes its checkpoints (it removes
 * them as it stops) the difference can be off by a few, so a count above the source's fails the
 * bench only when `strict` (the check after the tool has stopped); while waiting it is polled again.
 */
async function targetKeys(tgt: Endpoint, expected: number, strict: boolean): Promise<number> {
  let n = await dbsize(tgt);
  if (n > expected) n -= await checkpointKeys(tgt);
  if (n > expected && strict) throw new Error(`the target holds ${n} keys, more than the source's ${expected}`);
  return n;
}

/** SIGINT to the tool's own pid (RedisShake v4.2.0 ignores SIGTERM), SIGKILL to its group after 10 s. */
async function stop(c: TimedChild): Promise<Timed> {
  const pid = await c.pid().catch(() => undefined);
  if (pid) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // already gone
    }
  }
  const t = await Promise.race([c.done, sleep(10_000).then(() => undefined)]);
  if (t) return t;
  process.stderr.write(`pid ${pid} still ran 10 s after SIGINT: SIGKILL\n`);
  c.kill();
  return c.done;
}

/**
 * Waits for both end tests; `done()` is the tool's own verdict (undefined: not yet), checked
 * after each DBSIZE poll. Fails when the process ends first or the time is up.
 */
async function waitLoaded(
  tgt: Endpoint,
  expected: number,
  c: TimedChild,
  t0: number,
  done: () => boolean,
): Promise<{ loadedS: number; doneS: number }> {
  let exited = false;
  void c.done.then(
    () => (exited = true),
    () => (exited = true),
  );
  let dbsizeAt = 0;
  let doneAt = 0;
  for (;;) {
    // Ended before this poll: this poll saw all it will ever write.
    const ended = exited;
    const n = await targetKeys(tgt, expected, false);
    const now = Date.now();
    if (n === expected && !dbsizeAt) dbsizeAt = now;
    if (done() && !doneAt) doneAt = now;
    if (dbsizeAt && doneAt)
      return {
        loadedS: (dbsizeAt - t0) / 1000,
        doneS: (doneAt - t0) / 1000,
      };
    if (ended) {
      const t = await c.done.catch(() => undefined);
      throw new Error(
        `the sync process ended (exit ${t?.status}) with the target at ${n} of ${expected} keys${doneAt ? '' : ', before it said its full sync was done'}: ${t?.stderr.slice(-2000) ?? ''}`,
      );
    }
    if (now - t0 > LOAD_TIMEOUT_MS)
      throw new Error(`not loaded after ${LOAD_TIMEOUT_MS / 1000} s: the target holds ${n} of ${expected} keys`);
    await sleep(50);
  }
}

interface Started {
  run: Omit<Run, 'cpuS' | 'rssMb'>;
  child: TimedChild;
  /** RedisShake's config file (it holds the passwords): removed once it has stopped. */
  conf?: string;
}

/** The built-in engine in its own process; with `stay` it keeps streaming until stopped. */
async function startEngine(tgt: Endpoint, expected: number, pwFile: string, stay: boolean): Promise<Started> {
  const t0 = Date.now();
  const child = timedSpawn(
    process.execPath,
    [
      ...(HEAP_MB ? [`--max-old-space-size=${HEAP_MB}`] : []),
      ENGINE,
      `127.0.0.1:${BASE}`,
      `127.0.0.1:${TARGET_BASE}`,
      pwFile,
      ...(stay ? ['--stay'] : []),
    ],
    { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(child);
  let line: { ms: number; keys: number; rdbBytes: number } | undefined;
  let out = '';
  child.time.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    const nl = out.indexOf('\n');
    if (nl >= 0 && !line) line = JSON.parse(out.slice(0, nl)) as typeof line;
  });
  const w = await waitLoaded(tgt, expected, child, t0, () => !!line);
  return { child, run: { tool: 'built-in', ...w, keys: line!.keys, rdbBytes: line!.rdbBytes, events: [] } };
}

let shakeRuns = 0;

/** RedisShake in its own process group, its config written as the sync step writes it (shake-session.ts). */
async function startShake(tgt: Endpoint, expected: number, password: string): Promise<Started> {
  const dir = mkdtempSync(join(home, 'shake-'));
  const statusPort = STATUS_BASE + (shakeRuns++ % 10);
  const conf = join(dir, 'shake.toml');
  const side = (port: number) => ({ cluster: true, addresses: [`127.0.0.1:${port}`], password, tls: false });
  writeFileSync(
    conf,
    shakeConfigV4({ source: side(BASE), target: side(TARGET_BASE), dir, logFile: 'shake.log', statusPort }),
    { mode: 0o600 },
  );
  const out = openSync(join(dir, 'stdout.log'), 'a', 0o600);
  const t0 = Date.now();
  let child: TimedChild;
  try {
    child = timedSpawn(SHAKE, [conf], { cwd: dir, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  live.add(child);
  // Its status page, polled: what it says when, and whether every reader is past the RDB.
  const events: string[] = [];
  let last = '';
  let rdbBytes = 0;
  let done = false;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      try {
        const res = await fetch(`http://127.0.0.1:${statusPort}/`, { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        const page = parseShakeStatus(body);
        const raw = JSON.parse(body) as { reader?: Array<{ status?: string; rdb_file_size_bytes?: number }> };
        const readers = Array.isArray(raw.reader) ? raw.reader : [];
        const sizes = readers.reduce((n, r) => n + (r.rdb_file_size_bytes ?? 0), 0);
        if (sizes) rdbBytes = sizes;
        const phase = page
          ? `${readers.map((r) => r.status ?? '?').join(' / ') || 'no readers'}; consistent=${page.consistent}`
          : 'an answer that is not its status page';
        // Logged when the readers' phase changes (its unanswered count moves every second).
        const at = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
        if (phase !== last) events.push(`${at}: ${phase}${page ? `; unanswered=${page.unanswered ?? 0}` : ''}`);
        last = phase;
        // Every reader past its RDB. Not also `unanswered` 0: on an idle source it stays at 1-5 for many seconds.
        done = !!page && page.readers.length === 3 && page.readers.every((r) => r.phase === 'incremental');
      } catch {
        if (last !== 'no answer') events.push(`${((Date.now() - t0) / 1000).toFixed(1)} s: no answer`);
        last = 'no answer';
      }
      await sleep(100);
    }
  })();
  try {
    const w = await waitLoaded(tgt, expected, child, t0, () => done);
    return { child, conf, run: { tool: 'RedisShake', ...w, keys: expected, rdbBytes, events } };
  } finally {
    polling = false;
    await poll;
  }
}

async function fullRun(tool: Tool, tgt: Endpoint, expected: number, pwFile: string, password: string): Promise<Run> {
  await Promise.all(tgt.masters.map((m) => m.call('FLUSHALL')));
  const s =
    tool === 'built-in' ? await startEngine(tgt, expected, pwFile, false) : await startShake(tgt, expected, password);
  // The engine exits by itself once it has said it is done; RedisShake is stopped.
  const t = tool === 'built-in' ? await s.child.done : await stop(s.child);
  live.delete(s.child);
  if (s.conf) rmSync(s.conf, { force: true });
  const after = await targetKeys(tgt, expected, true);
  if (after !== expected)
    throw new Error(`${tool}: the target holds ${after} keys after the run, the source ${expected}: keys were lost`);
  return { ...s.run, cpuS: t.cpuS, rssMb: t.rssMb };
}

/** Removes what the write load and the probes added to the source, so each tool's lag run starts on the same data. */
async function cleanSource(src: Endpoint): Promise<void> {
  for (const node of src.masters)
    for (const match of ['load:*', 'probe-*'])
      for (let cursor = '0'; ;) {
        const [next, keys] = (await node.call('SCAN', cursor, 'MATCH', match, 'COUNT', 1000)) as [string, string[]];
        if (keys.length) await node.pipeline(keys.map((k) => ['UNLINK', k] as const));
        cursor = String(next);
        if (cursor === '0') break;
      }
}

async function lagRun(
  tool: Tool,
  src: Endpoint,
  tgt: Endpoint,
  pwFile: string,
  password: string,
): Promise<{ lag: Lag; events: string[] }> {
  await cleanSource(src);
  const expected = await dbsize(src);
  await Promise.all(tgt.masters.map((m) => m.call('FLUSHALL')));
  const s =
    tool === 'built-in' ? await startEngine(tgt, expected, pwFile, true) : await startShake(tgt, expected, password);
  try {
    const lag = await measureLag({
      sourcePort: BASE,
      targetPort: TARGET_BASE,
      password,
      rate: RATE,
      seconds: LAG_SECONDS,
      probePrefix: `probe-${tool === 'built-in' ? 'builtin' : 'shake'}`,
    });
    return { lag, events: s.run.events };
  } finally {
    await stop(s.child);
    live.delete(s.child);
    if (s.conf) rmSync(s.conf, { force: true });
  }
}

function header(): void {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim();
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\n${new Date().toISOString()}; nproc ${nproc}; CPU ${cpu}; ${redis}`);
}

async function main(): Promise<void> {
  if (!existsSync(SHAKE)) throw new Error(`RedisShake not found at ${SHAKE}: set RR_SHAKE_BINARY to its path`);
  process.stderr.write(`RedisShake: ${SHAKE}\n`);
  process.stderr.write(
    `starting a 3-master source with ${KEYS} keys and an empty ${TARGET_MASTERS}-master target...\n`,
  );
  const up = cli([
    ...['sandbox', 'up', '--name', NAME, '--base-port', String(BASE), '--replicas', '0'],
    ...['--keys', String(KEYS), '--target-masters', String(TARGET_MASTERS)],
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  const inventory = up.stdout.trim();
  const pwFile = join(inventory, '..', 'password');
  const password = readFileSync(pwFile, 'utf8').trim();
  const pool = (name: string, port: number) =>
    new ClusterPool(
      { name, seeds: [`127.0.0.1:${port}`], auth: { password: { file: pwFile } } },
      { access: 'read-write' },
    );
  const source = pool('source', BASE);
  const target = pool('target', TARGET_BASE);
  try {
    const src = await openEndpoint(source);
    const tgt = await openEndpoint(target);
    const expected = await dbsize(src);
    const runs: Run[] = [];
    for (let i = 0; i < ROUNDS; i++)
      for (const tool of (i % 2 === 0 ? ['built-in', 'RedisShake'] : ['RedisShake', 'built-in']) as Tool[]) {
        const r = await fullRun(tool, tgt, expected, pwFile, password);
        runs.push(r);
        process.stderr.write(
          `round ${i + 1}/${ROUNDS}: ${tool} loaded ${r.keys} keys in ${r.loadedS.toFixed(2)} s (DBSIZE equal; done by its own account at ${r.doneS.toFixed(2)} s), CPU ${r.cpuS.toFixed(1)} s, peak RSS ${Math.round(r.rssMb)} MB\n`,
        );
        for (const e of r.events) process.stderr.write(`  RedisShake status page at ${e}\n`);
      }
    const lags = new Map<Tool, { lag: Lag; events: string[] }>();
    for (const tool of ['built-in', 'RedisShake'] as Tool[]) {
      lags.set(tool, await lagRun(tool, src, tgt, pwFile, password));
      const l = lags.get(tool)!.lag;
      process.stderr.write(
        `incremental ${tool}: ${l.lags.length} probes, median ${median(l.lags)} ms, p99 ${percentile(l.lags, 99)} ms, max ${Math.max(...l.lags)} ms; over 100 ms: ${
          l.lags
            .map((ms, i) => [ms, i] as const)
            .filter(([ms]) => ms > 100)
            .map(([ms, i]) => `probe ${i}: ${ms} ms`)
            .join(', ') || 'none'
        }\n`,
      );
    }

    header();
    const by = (tool: Tool) => runs.filter((r) => r.tool === tool);
    const kps = (tool: Tool) => median(by(tool).map((r) => r.keys / r.loadedS));
    const rss = (tool: Tool) => median(by(tool).map((r) => r.rssMb));
    const ratio = kps('built-in') / kps('RedisShake');
    console.log(
      `\nfull sync: ${expected} mixed keys (strings, lists, hashes, sets, zsets, streams; ~10% with TTL), source 3 masters -> empty target ${TARGET_MASTERS} masters, no replicas, ${ROUNDS} alternating rounds, medians. End: the target's DBSIZE (summed over its masters; the engine's checkpoint keys not counted) equals the source's, the same test for both. MB/s: source RDB bytes. CPU and peak RSS: the syncing process, under /usr/bin/time.`,
    );
    console.log(
      '| tool | median wall s | keys/s | MB/s | CPU s | peak RSS MB | runs (s) | ratio built-in/RedisShake keys/s |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const tool of ['built-in', 'RedisShake'] as Tool[]) {
      const rs = by(tool);
      const name =
        tool === 'built-in'
          ? `built-in engine (node, --max-old-space-size=${HEAP_MB || 'default'})`
          : 'RedisShake v4.2.0';
      console.log(
        `| ${name} | ${median(rs.map((r) => r.loadedS)).toFixed(2)} | ${Math.round(kps(tool))} | ${median(rs.map((r) => r.rdbBytes / 1048576 / r.loadedS)).toFixed(1)} | ${median(rs.map((r) => r.cpuS)).toFixed(1)} | ${Math.round(rss(tool))} | ${rs.map((r) => r.loadedS.toFixed(2)).join(', ')} | ${tool === 'built-in' ? ratio.toFixed(2) : '1.00'} |`,
      );
    }
    console.log(
      `\nwhere the time went (medians, s from start): ${(['built-in', 'RedisShake'] as Tool[]).map((t) => `${t}: DBSIZE equal at ${median(by(t).map((r) => r.loadedS)).toFixed(2)}, done by its own account at ${median(by(t).map((r) => r.doneS)).toFixed(2)}`).join('; ')}`,
    );
    console.log(
      `\nincremental: ${RATE} writes/s asked on the source for ${LAG_SECONDS} s after each tool's full sync; probe SET every 100 ms, source ack -> GET on the target sees it`,
    );
    console.log('| tool | writes/s | probes | lag median ms | p99 ms | max ms |');
    console.log('|---|---|---|---|---|---|');
    for (const [tool, { lag }] of lags)
      console.log(
        `| ${tool} | ${Math.round(lag.writes / lag.elapsed)} | ${lag.lags.length} | ${median(lag.lags)} | ${percentile(lag.lags, 99)} | ${Math.max(...lag.lags)} |`,
      );
    const ours = lags.get('built-in')!.lag.lags;
    const theirs = lags.get('RedisShake')!.lag.lags;
    const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
    console.log(
      `\ngoals: built-in >= 1.5x RedisShake keys/s (${ratio.toFixed(2)}x: ${met(ratio >= 1.5)}) with no more memory (${Math.round(rss('built-in'))} vs ${Math.round(rss('RedisShake'))} MB: ${met(rss('built-in') <= rss('RedisShake'))}); incremental p99 < 50 ms (${percentile(ours, 99)}: ${met(percentile(ours, 99) < 50)}), max < 1 s (${Math.max(...ours)} ms: ${met(Math.max(...ours) < 1000)}), no worse than RedisShake (p99 ${percentile(ours, 99)} vs ${percentile(theirs, 99)}, max ${Math.max(...ours)} vs ${Math.max(...theirs)}: ${met(percentile(ours, 99) <= percentile(theirs, 99) && Math.max(...ours) <= Math.max(...theirs))})`,
    );
  } finally {
    killAll();
    await source.close();
    await target.close();
  }
}

try {
  await main();
} finally {
  cli(['sandbox', 'down', '--name', NAME]);
}
