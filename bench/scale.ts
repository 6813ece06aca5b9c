/**
 * `npm run bench -- scale`: the data-moving runbooks at size. For each size
 * (default 100k, 1M, 3M mixed keys, `--sizes` to change) a sandbox source
 * (3 masters, no replicas, over its loopback sshd) gets the sandbox's mixed
 * keys, 1% more with binary names, and one big key of each kind (1M
 * elements, a 200 MB string; `--big-elements`, `--big-string-mb`). Then, in
 * turn, each against an emptied 3-master target: migrate-copy-files,
 * migrate-consolidate-reshard (source put back), migrate-sync, and a full
 * `verify` of the synced target. Each is the CLI in a child process; the
 * table gives its wall time, keys/s and peak RSS, and the step whose
 * sampled RSS was highest. A run without big keys (`--plain`, default 100k)
 * is the baseline the big keys' memory is measured against, in the same run.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Runner, type Measured } from './scale-runner.js';
import { addBigKeys, addBinaryKeys, Source, type BigKeySizes } from './scale-data.js';

const BASE = 13500;
const TARGET = BASE + 100;
const MASTERS = 3;

interface Case {
  keys: number;
  big: boolean;
}
interface Row {
  c: Case;
  total: number;
  runbook: string;
  wallMs: number;
  peakKiB: number;
  topStep: string;
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`--sizes: ${s} is not a key count (e.g. 100k, 1M, 3M)`);
  return Math.round(Number(m[1]) * (m[2]!.toLowerCase() === 'k' ? 1e3 : m[2]!.toLowerCase() === 'm' ? 1e6 : 1));
}

function options(argv: string[]): { cases: Case[]; big: BigKeySizes; runbooks: string[]; heapMb?: number } {
  const get = (flag: string, dflt: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
  };
  const plain = get('--plain', '100k');
  const cases: Case[] = [
    ...(plain === 'none' ? [] : [{ keys: parseSize(plain), big: false }]),
    ...get('--sizes', '100k,1M,3M')
      .split(',')
      .map((s) => ({ keys: parseSize(s), big: true })),
  ];
  const runbooks = get('--runbooks', 'copy,reshard,sync,verify').split(',');
  for (const r of runbooks)
    if (!RUNBOOKS[r]) throw new Error(`--runbooks: unknown ${r}; use ${Object.keys(RUNBOOKS).join(',')}`);
  return {
    cases,
    big: {
      elements: parseSize(get('--big-elements', '1M')),
      stringBytes: Math.round(Number(get('--big-string-mb', '200')) * 1048576),
    },
    runbooks,
    // The heap bound of the measured runner (default bin/redis-runbook's own; 0: V8's default):
    // a run that finishes under a bound shows the data it keeps live fits there.
    heapMb: get('--runner-heap-mb', '') ? Number(get('--runner-heap-mb', '')) : undefined,
  };
}

const RUNBOOKS: Record<string, { label: string; args: (inv: string) => string[] }> = {
  copy: {
    label: 'migrate-copy-files (rdb, 3 -> 3)',
    args: (inv) => [
      'run',
      'migrate-copy-files',
      '--inventory',
      inv,
      '--param',
      'sample=1',
      '--yes',
      '--allow-destructive',
    ],
  },
  reshard: {
    label: 'migrate-consolidate-reshard (3 -> 3, source put back)',
    args: (inv) => [
      'run',
      'migrate-consolidate-reshard',
      '--inventory',
      inv,
      '--param',
      'sample=1',
      '--param',
      'restoreSource=true',
      '--yes',
      '--allow-destructive',
    ],
  },
  sync: {
    label: 'migrate-sync (psync, full verify with extra keys)',
    args: (inv) => ['run', 'migrate-sync', '--inventory', inv, '--yes', '--allow-destructive'],
  },
  verify: {
    label: 'verify --mode full --qps 0 (source vs synced target)',
    args: (inv) => [
      'verify',
      '--inventory',
      inv,
      '--source',
      'source',
      '--target',
      'target',
      '--qps',
      '0',
      '--rounds',
      '1',
    ],
  },
};

const say = (s: string) => process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const mb = (kib: number) => (kib / 1024).toFixed(0);
const fmtKeys = (n: number) =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : String(n);

async function eachMaster(port0: number, password: string, f: (r: Redis) => Promise<unknown>): Promise<unknown[]> {
  return Promise.all(
    Array.from({ length: MASTERS }, async (_, i) => {
      const r = new Redis({ port: port0 + i, password });
      try {
        return await f(r);
      } finally {
        r.disconnect();
      }
    }),
  );
}

async function prepare(
  runner: Runner,
  c: Case,
  big: BigKeySizes,
): Promise<{ inv: string; password: string; total: number }> {
  say(`${fmtKeys(c.keys)}${c.big ? ' + big keys' : ''}: sandbox up, seeding...`);
  // cluster-node-timeout 15000, Redis's default, not the sandbox's 2000: a MIGRATE of the
  // 200 MB key blocks both nodes for seconds, and at 2000 ms the others flag them failed
  // (no replicas here: the cluster goes down until the flag clears).
  const up = runner.plain([
    'sandbox',
    'up',
    '--name',
    'scale',
    '--base-port',
    String(BASE),
    '--replicas',
    '0',
    '--keys',
    String(c.keys),
    '--target-masters',
    String(MASTERS),
    '--ssh',
    '--node-timeout',
    '15000',
  ]);
  if (up.status !== 0) throw new Error(`sandbox up failed:\n${up.stderr}`);
  const inv = up.stdout.trim();
  const password = readFileSync(join(inv, '..', 'password'), 'utf8').trim();
  const cl = await Source.open(BASE, password);
  try {
    const t = Date.now();
    await addBinaryKeys(cl, Math.round(c.keys / 100));
    if (c.big) await addBigKeys(cl, big);
    say(`binary${c.big ? ' and big' : ''} keys added in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } finally {
    cl.close();
  }
  const sizes = (await eachMaster(BASE, password, (r) => r.dbsize())) as number[];
  return { inv, password, total: sizes.reduce((a, b) => a + b, 0) };
}

async function runCase(runner: Runner, c: Case, big: BigKeySizes, runbooks: string[]): Promise<Row[]> {
  const rows: Row[] = [];
  try {
    const { inv, password, total } = await prepare(runner, c, big);
    for (const name of runbooks) {
      if (name !== 'verify') await eachMaster(TARGET, password, (r) => r.flushall());
      const rb = RUNBOOKS[name]!;
      say(`${fmtKeys(c.keys)}: ${rb.label}...`);
      const m: Measured = await runner.measured(rb.args(inv));
      if (m.status !== 0)
        throw new Error(`${rb.label} exited ${m.status}:\n${m.stdout.slice(-4000)}\n${m.stderr.slice(-2000)}`);
      const id = /^run (\S+):/m.exec(m.stdout)?.[1];
      let steps: ReturnType<Runner['stepPeaks']> = [];
      try {
        if (id) steps = runner.stepPeaks(id, m.samples);
      } catch (err) {
        say(`no step times: ${(err as Error).message}`);
      }
      const top = steps.sort((a, b) => b.peakKiB - a.peakKiB)[0];
      const row = {
        c,
        total,
        runbook: rb.label,
        wallMs: m.wallMs,
        peakKiB: m.peakKiB,
        topStep: top ? `${top.step} ${mb(top.peakKiB)}` : '',
      };
      say(
        `${rb.label}: ${(m.wallMs / 1000).toFixed(1)} s, peak RSS ${mb(m.peakKiB)} MB${top ? `, highest step ${row.topStep} MB` : ''}`,
      );
      rows.push(row);
    }
  } finally {
    runner.plain(['sandbox', 'down', '--name', 'scale']);
  }
  return rows;
}

function print(rows: Row[], big: BigKeySizes, started: number): void {
  const bigText = `one big key of each kind (string ${(big.stringBytes / 1048576).toFixed(0)} MB; list, hash, set, zset, stream ${fmtKeys(big.elements)} elements each)`;
  console.log(
    `\nscale: sandbox source 3 masters, target 3 masters, no replicas, loopback ssh; mixed keys + 1% binary keys${rows.some((r) => r.c.big) ? ` + ${bigText}` : ''}; one run each; the whole benchmark took ${((Date.now() - started) / 60000).toFixed(1)} min`,
  );
  console.log(
    '| mixed keys | big keys | keys in source | runbook | wall s | keys/s | runner peak RSS MB | step with the highest sampled RSS (MB) |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${fmtKeys(r.c.keys)} | ${r.c.big ? 'yes' : 'no'} | ${r.total} | ${r.runbook} | ${(r.wallMs / 1000).toFixed(1)} | ${Math.round(r.total / (r.wallMs / 1000))} | ${mb(r.peakKiB)} | ${r.topStep} |`,
    );
  const sized = rows.filter((r) => r.c.big);
  const sizes = [...new Set(sized.map((r) => r.c.keys))];
  if (sizes.length < 2) return;
  console.log(`\nwall time against the smaller size (big keys in both): linear would be the key ratio`);
  console.log(
    `| runbook | ${sizes
      .slice(1)
      .map((s, i) => `${fmtKeys(s)} / ${fmtKeys(sizes[i]!)} (keys x${(s / sizes[i]!).toFixed(1)})`)
      .join(' | ')} |`,
  );
  console.log(
    `|---|${sizes
      .slice(1)
      .map(() => '---|')
      .join('')}`,
  );
  for (const label of [...new Set(sized.map((r) => r.runbook))]) {
    const wall = (s: number) => sized.find((r) => r.runbook === label && r.c.keys === s)?.wallMs;
    console.log(
      `| ${label} | ${sizes
        .slice(1)
        .map((s, i) => {
          const a = wall(sizes[i]!);
          const b = wall(s);
          return a && b ? (b / a).toFixed(2) : '';
        })
        .join(' | ')} |`,
    );
  }
}

async function main(): Promise<void> {
  const { cases, big, runbooks, heapMb } = options(process.argv.slice(2));
  const runner = new Runner(mkdtempSync(join(tmpdir(), 'rr-bench-scale-')), heapMb);
  const started = Date.now();
  const rows: Row[] = [];
  try {
    for (const c of cases) rows.push(...(await runCase(runner, c, big, runbooks)));
  } finally {
    if (rows.length) print(rows, big, started);
  }
}

await main();
