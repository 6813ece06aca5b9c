import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cli, sandbox, tempStateDir } from '../support/cli.js';
import { startWriter } from '../support/writer.js';

// Source 21610-21615 (3x1), target 21710-21715 (3x1), the run's metrics on 21790.
const BASE = 21610;
const METRICS = 21790;
const home = tempStateDir();
let inventory = '';
let password = '';

before(async () => {
  ({ inventory, password } = await sandbox(home, BASE, [
    '--name',
    'watch',
    '--keys',
    '40000',
    '--target-masters',
    '3',
  ]));
});
after(async () => {
  await cli(home, ['sandbox', 'down', '--name', 'watch']);
});

/** Prometheus text format: every sample line parses, and every metric has its HELP and TYPE first. */
function parseMetrics(text: string): Map<string, Array<{ labels: string; value: number }>> {
  const out = new Map<string, Array<{ labels: string; value: number }>>();
  const declared = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const c = /^# (HELP|TYPE) ([a-z_]+) (.+)$/.exec(line);
    if (c) {
      if (c[1] === 'TYPE') assert.equal(c[3], 'gauge', line);
      declared.add(`${c[1]} ${c[2]}`);
      continue;
    }
    const m = /^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    assert.ok(declared.has(`HELP ${m[1]}`) && declared.has(`TYPE ${m[1]}`), `no HELP/TYPE before ${m[1]}`);
    assert.ok(Number.isFinite(Number(m[3])), line);
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), { labels: m[2] ?? '', value: Number(m[3]) }]);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('during a live sync: /metrics serves lag, phase and keys that move; status --json and status --watch from other processes show the step and its figures; status reads a read-only state dir without writing; no \\r or escapes reach a log', async () => {
  const writer = startWriter(BASE, password, 'watch');
  const logFile = join(home, 'run.log');
  const log = openSync(logFile, 'w');
  // The run writes its narration to a file, as a cron job or `> run.log 2>&1` would.
  const run = spawn(
    process.execPath,
    [
      CLI,
      'run',
      'migrate-sync',
      '--inventory',
      inventory,
      '--yes',
      '--param',
      'max-lag=1mb',
      '--param',
      'rounds=1',
    ].concat(['--metrics-addr', `127.0.0.1:${METRICS}`]),
    { env: { ...process.env, REDIS_RUNBOOK_HOME: home }, stdio: ['ignore', log, log] },
  );
  const exited = new Promise<number>((r) => run.on('close', (code) => r(code ?? 1)));
  let ended = false;
  void exited.then(() => (ended = true));

  // status --watch from another process, without a terminal: a block per change, until the run ends.
  let runId = '';
  let writerStopped = false;
  let watchOut = '';
  const watch = (async () => {
    while (!ended) {
      if (runId) break;
      await sleep(200);
    }
    const w = await cli(home, ['status', '--watch', '--interval', '0.5']);
    watchOut = w.out;
    return w.code;
  })();

  const scrapes: Array<Map<string, Array<{ labels: string; value: number }>>> = [];
  const statuses: Array<{
    step: { kind: string; status: string } | null;
    progress: { figures: Record<string, unknown> } | null;
  }> = [];
  // Scrapes on their own loop: a `status` call (a CLI process) takes seconds on a loaded machine.
  const scraping = (async () => {
    while (!ended) {
      let text: string | undefined;
      try {
        const res = await fetch(`http://127.0.0.1:${METRICS}/metrics`);
        if (res.status === 200) {
          assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
          text = await res.text();
        }
      } catch {
        // not listening yet, or closed as the run ended
      }
      if (text) {
        const m = parseMetrics(text);
        scrapes.push(m);
        runId ||= /run_id="([^"]+)"/.exec(m.get('redis_runbook_run_info')?.[0]?.labels ?? '')?.[1] ?? '';
        // Writes stop once every shard streams: after cut-over they would reach the source alone
        // (an application switches to the target there), and the comparison would find them.
        const kind = /kind="([^"]*)"/.exec(m.get('redis_runbook_step_info')?.[0]?.labels ?? '')?.[1] ?? '';
        const phase = m.get('redis_runbook_phase')?.[0]?.labels ?? '';
        if (!writerStopped && (/incremental/.test(phase) || ['wait-sync-lag', 'cut-over'].includes(kind))) {
          writerStopped = true;
          await writer.stop();
        }
      }
      await sleep(250);
    }
  })();
  while (!ended) {
    if (runId) {
      const st = await cli(home, ['status', runId, '--json']);
      if (st.code === 0) statuses.push(JSON.parse(st.stdout));
    }
    await sleep(300);
  }
  await scraping;
  const code = await exited;
  closeSync(log);
  if (!writerStopped) await writer.stop();
  const logText = readFileSync(logFile, 'utf8');
  assert.equal(code, 0, `${scrapes.length} scrapes, writer stopped: ${writerStopped}\n${logText}`);

  // Metrics: the sync's lag, phase and keys were there, and moved.
  const during = scrapes.filter((s) => s.has('redis_runbook_sync_lag_bytes'));
  assert.ok(during.length >= 2, `${scrapes.length} scrapes, ${during.length} with a sync lag`);
  for (const s of during) {
    assert.match(s.get('redis_runbook_run_info')![0]!.labels, new RegExp(`run_id="${runId}",runbook="migrate-sync"`));
    assert.match(s.get('redis_runbook_phase')![0]!.labels, /phase="(full-sync|incremental|catch-up)"/);
    assert.ok(s.has('redis_runbook_keys_per_second'));
    assert.ok(s.has('redis_runbook_sync_lag_seconds') || s.get('redis_runbook_sync_lag_bytes')![0]!.value >= 0);
  }
  const seen = (name: string) => new Set(during.map((s) => JSON.stringify(s.get(name) ?? null)));
  assert.ok(
    seen('redis_runbook_keys_per_second').size + seen('redis_runbook_sync_lag_bytes').size > 2,
    'the figures changed between scrapes',
  );

  // status --json from another process: the step in progress and its figures.
  const syncing = statuses.filter(
    (s) => s.step && ['wait-full-sync', 'wait-sync-lag'].includes(s.step.kind) && s.progress?.figures.phase,
  );
  assert.ok(syncing.length >= 1, JSON.stringify(statuses.map((s) => s.step?.kind)));
  assert.ok(syncing.some((s) => typeof s.progress!.figures.keys === 'number'));
  const verifying = statuses.find((s) => s.step?.kind === 'verify-data' && s.progress);
  if (verifying) assert.equal(verifying.progress!.figures.unit, 'keys');

  // status --watch: several blocks, ended with the run, exit 0 because it succeeded.
  assert.equal(await watch, 0, watchOut);
  assert.ok((watchOut.match(/^run /gm) ?? []).length >= 2, watchOut);
  assert.match(watchOut, /phase (full-sync|incremental)/);
  assert.match(watchOut, /succeeded/);
  assert.doesNotMatch(watchOut, /\r|\x1b/);

  // The run's log (not a terminal): progress lines, but no \r, no escape, no padding.
  assert.match(logText, /shard \d/);
  assert.doesNotMatch(logText, /\r/);
  assert.doesNotMatch(logText, /\x1b/);
  assert.doesNotMatch(logText, / {10,}/);

  // A read-only state directory (root ignores the mode: the point is that status opens the database
  // read-only, so nothing is written, the file unchanged).
  const db = join(home, 'state.db');
  const seenBefore = statSync(db);
  chmodSync(home, 0o500);
  try {
    const st = await cli(home, ['status', runId, '--json']);
    assert.equal(st.code, 0, st.out);
    assert.equal(JSON.parse(st.stdout).run.status, 'succeeded');
  } finally {
    chmodSync(home, 0o700);
  }
  const seenAfter = statSync(db);
  assert.equal(seenAfter.mtimeMs, seenBefore.mtimeMs);
  assert.equal(seenAfter.size, seenBefore.size);
});
