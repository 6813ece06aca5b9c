import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { cli, tempStateDir, CLI } from '../support/cli.js';
import { startWriter } from '../support/writer.js';
import { withNode } from '../support/cluster.js';

/**
 * engine=redis-shake with the real RedisShake v4.2.0 binary (not the stand-in):
 * 3 -> 3 and 3 -> 5 masters, a mixed dataset (the sandbox's strings, hashes,
 * lists, sets, zsets with 3-decimal scores, streams, TTLs, plus a big hash,
 * binary keys and integer-score zsets: nothing v4.2.0's 6-decimal scores
 * would change), writes during the full and the incremental sync, cut-over
 * with paused writes, 0 differences; a Ctrl-C of the runner stops RedisShake
 * (SIGINT to its pid), a SIGKILL of the runner leaves it running and
 * `resume` stops it before it syncs again.
 *
 * The binary: RR_SHAKE_BINARY, else ../shared/tools/redis-shake/redis-shake
 * beside the repository (CI's layout). Missing: a failure under CI=true, a
 * skip with the reason otherwise.
 */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BINARY = process.env.RR_SHAKE_BINARY || join(ROOT, '..', 'shared', 'tools', 'redis-shake', 'redis-shake');
const MISSING = existsSync(BINARY)
  ? undefined
  : `the RedisShake binary is not at ${BINARY} (set RR_SHAKE_BINARY to its path)`;
if (MISSING && process.env.CI === 'true') throw new Error(`${MISSING}: CI must run these tests`);
if (MISSING) console.log(`# skipping redis-shake-real: ${MISSING}`);

// Sandbox 3 -> 3: source 15820-15822, target 15920-15922. Sandbox 3 -> 5: source 15850-15852, target 15950-15954.
const A = 15820;
const B = 15850;
const home = tempStateDir('rr-shake-');
const inv: Record<string, string> = {};
const pw: Record<string, string> = {};

async function up(name: string, base: number, targetMasters: number): Promise<void> {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    name,
    '--base-port',
    String(base),
    '--replicas',
    '0',
    '--keys',
    '8000',
    '--target-masters',
    String(targetMasters),
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  inv[name] = r.stdout.trim().split('\n').pop()!;
  pw[name] = readFileSync(join(dirname(inv[name]), 'password'), 'utf8').trim();
  await seedMore(base, pw[name]);
}

/** What the sandbox's seed lacks: a big hash (~4 MB), binary keys and values, integer-score zsets, TTLs. */
async function seedMore(port: number, password: string): Promise<void> {
  const c = new Cluster([{ host: '127.0.0.1', port }], { redisOptions: { password } });
  try {
    for (let i = 0; i < 40; i++)
      await c.hset(
        '{big}:hash',
        ...Array.from({ length: 1000 }, (_, j) => [`f${i * 1000 + j}`, randomBytes(75).toString('base64')]).flat(),
      );
    for (let i = 0; i < 200; i++) {
      const key = Buffer.concat([Buffer.from([0, 0xff, i & 0xff, 0x80]), randomBytes(8)]);
      await c.set(key, randomBytes(64), 'EX', 3600 + i);
    }
    for (let i = 0; i < 100; i++)
      await c.zadd(`rank:int:${i}`, ...Array.from({ length: 20 }, (_, j) => [String(j * 7 - 50), `m${j}`]).flat());
  } finally {
    c.disconnect();
  }
}

before(async () => {
  if (MISSING) return;
  await Promise.all([up('shake3', A, 3), up('shake5', B, 5)]);
});
after(async () => {
  if (MISSING) return;
  await cli(home, ['sandbox', 'down', '--name', 'shake3']);
  await cli(home, ['sandbox', 'down', '--name', 'shake5']);
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function gone(pid: number, ms = 15_000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) if (!alive(pid)) return true;
  return !alive(pid);
}
const unpause = async (base: number, password: string) => {
  for (let p = base; p < base + 3; p++) await withNode(p, password, (c) => c.call('CLIENT', 'UNPAUSE'));
};
const shakeArgs = (name: string) => [
  '--inventory',
  inv[name]!,
  '--yes',
  '--param',
  'engine=redis-shake',
  '--param',
  `shakeBinary=${BINARY}`,
  '--param',
  'max-lag=1mb',
  '--param',
  'pauseWrites=true',
  '--param',
  'pauseSeconds=60',
];

/** The CLI as a child this test can signal; `until` waits for a pattern in its output. */
function spawnCli(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return {
    child,
    closed,
    out: () => out,
    async until(re: RegExp, ms = 120_000): Promise<RegExpExecArray> {
      for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) {
        const m = re.exec(out);
        if (m) return m;
      }
      throw new Error(`no ${re} within ${ms / 1000} s:\n${out}`);
    },
  };
}

const reportOf = async (id: string) => {
  const show = JSON.parse((await cli(home, ['show', id, '--json'])).stdout);
  return show.steps.find((s: { stepId: string }) => s.stepId === 'report')?.output;
};

test(
  '3 -> 3 with the real RedisShake v4.2.0: writes during the full and incremental sync, cut-over, 0 differences; stopped with SIGINT at cut-over',
  { skip: MISSING },
  async () => {
    const writer = startWriter(A, pw.shake3!, 'w3');
    await sleep(500); // writes under way before the full sync starts, and during it
    const r = await cli(home, ['run', 'migrate-sync', ...shakeArgs('shake3')]);
    await unpause(A, pw.shake3!);
    const writes = await writer.stop();
    assert.equal(r.code, 0, r.out);
    assert.ok(writes > 1000, `${writes} writes`);
    assert.match(r.out, /PASS zset score precision: \d+ sorted set\(s\) read: no score has more than 6 decimals/);
    assert.match(r.out, /PASS redis-shake limits: WARNING/);
    const pid = Number(/RedisShake started \(pid (\d+)/.exec(r.out)![1]);
    assert.match(r.out, new RegExp(`sent SIGINT to RedisShake \\(pid ${pid}\\)`));
    assert.doesNotMatch(r.out, /SIGKILL/);
    assert.ok(await gone(pid, 2000), `RedisShake pid ${pid} is gone after cut-over`);
    assert.doesNotMatch(r.out, new RegExp(pw.shake3!));
    const id = /run (\S+) succeeded/.exec(r.out)![1]!;
    const out = await reportOf(id);
    assert.equal(out.verify.differ, 0, r.out);
    assert.ok(out.verify.compared > 8000, `${out.verify.compared} keys compared`);
  },
);

test(
  '3 -> 5 with the real RedisShake v4.2.0: Ctrl-C of the runner stops it (SIGINT); a SIGKILLed runner leaves it running and `resume` stops it, syncs again, cuts over with 0 differences',
  { skip: MISSING },
  async () => {
    const writer = startWriter(B, pw.shake5!, 'w5');
    try {
      // 1. Ctrl-C (SIGINT) of the runner during the incremental sync: RedisShake gets SIGINT and exits.
      const first = spawnCli(['run', 'migrate-sync', ...shakeArgs('shake5')]);
      const pid1 = Number((await first.until(/RedisShake started \(pid (\d+)/))[1]);
      const id = (await first.until(/^run (\S+):/m))[1]!;
      await first.until(/\[5\/8\] catch-up/);
      first.child.kill('SIGINT');
      await first.closed;
      assert.match(first.out(), new RegExp(`sent SIGINT to RedisShake \\(pid ${pid1}\\)`), first.out());
      assert.ok(await gone(pid1, 2000), `RedisShake pid ${pid1} stopped with the run\n${first.out()}`);

      // 2. The resumed run starts a new RedisShake; the runner is SIGKILLed: RedisShake runs on, orphaned.
      const second = spawnCli(['resume', id, '--yes']);
      const pid2 = Number((await second.until(/RedisShake started \(pid (\d+)/))[1]);
      await second.until(/RedisShake source \d: incremental/);
      second.child.kill('SIGKILL');
      await second.closed;
      await sleep(1500);
      assert.ok(alive(pid2), `RedisShake pid ${pid2} outlives the killed runner`);

      // 3. `resume` finds it (pid, start time, command line), stops it, syncs again and finishes.
      const r = await cli(home, ['resume', id, '--yes']);
      await unpause(B, pw.shake5!);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`stopping RedisShake \\(pid ${pid2}\\) left by the interrupted run`));
      assert.match(r.out, new RegExp(`sent SIGINT to RedisShake \\(pid ${pid2}\\)`));
      assert.ok(!alive(pid2), `RedisShake pid ${pid2} is gone`);
      const out = await reportOf(id);
      assert.equal(out.verify.differ, 0, r.out);
      assert.ok(out.verify.compared > 8000, `${out.verify.compared} keys compared`);
    } finally {
      await writer.stop();
    }
  },
);

test(
  'a SIGKILLed runner leaves the real RedisShake running: `abort` stops it (SIGINT to its pid) and removes its config directory',
  { skip: MISSING },
  async () => {
    // The target holds the first test's keys: the new run's full sync empties it first (consented).
    const run = spawnCli(['run', 'migrate-sync', ...shakeArgs('shake3'), '--allow-destructive']);
    const id = (await run.until(/^run (\S+):/m))[1]!;
    const pid = Number((await run.until(/RedisShake started \(pid (\d+)/))[1]);
    await run.until(/RedisShake source \d: incremental/);
    run.child.kill('SIGKILL');
    await run.closed;
    await sleep(1500);
    assert.ok(alive(pid), `RedisShake pid ${pid} outlives the killed runner`);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const conf = cmdline.find((a) => a.endsWith('shake.toml'))!;
    assert.ok(existsSync(conf), `its config ${conf} is there while it runs`);
    const r = await cli(home, ['abort', id]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`sent SIGINT to RedisShake \\(pid ${pid}\\)`));
    assert.match(r.out, new RegExp(`cleanup: stopped RedisShake \\(pid ${pid}\\) left by the run`));
    assert.ok(await gone(pid, 2000), `RedisShake pid ${pid} is gone after abort`);
    assert.equal(existsSync(dirname(conf)), false, 'its directory (config with passwords) is removed');
  },
);
