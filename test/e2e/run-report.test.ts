import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cli, runIdOf, sandbox, sandboxDown, tempStateDir } from '../support/cli.js';
import { roles, SHARD_SLOTS } from '../support/cluster.js';

// Consolidate-reshard: source 21210-21215 (3 x 1), sshd 21309, target 21310-21319 (5 x 1) (21200-21205 and
// 21300-21305 are the bus ports of another file's nodes).
// Failover drill: a second sandbox, 21350-21355 (3 x 1). Both in one state directory.
const CR_BASE = 21210;
const DRILL_BASE = 21350;
const home = tempStateDir();
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTEFACTS = process.env.RR_ARTEFACTS_DIR || join(ROOT, 'test-artefacts');
let crInventory = '';
let drill = { inventory: '', password: '' };
let browser: Browser;

before(async () => {
  crInventory = (await sandbox(home, CR_BASE, ['--target-masters', '5', '--ssh'], 'cr')).inventory;
  drill = await sandbox(home, DRILL_BASE, ['--keys', '2000']);
  mkdirSync(ARTEFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
after(async () => {
  await browser?.close();
  await sandboxDown(home, 'cr');
  await sandboxDown(home);
});

interface Show {
  run: { status: string };
  steps: Array<{ stepId: string; kind: string; status: string; output: any; startedAt: number }>;
}

async function show(id: string): Promise<Show> {
  const r = await cli(home, ['show', id, '--json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout) as Show;
}

/** `report --html --md`, then the page in headless Chromium: what it requested, and screenshots. */
async function openReport(id: string): Promise<{ page: Page; requests: string[]; md: string; close(): Promise<void> }> {
  const html = join(ARTEFACTS, `${id}.html`);
  const md = join(ARTEFACTS, `${id}.md`);
  const r = await cli(home, ['report', id, '--html', html, '--md', md]);
  assert.equal(r.code, 0, r.out);
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (q) => requests.push(q.url()));
  await page.goto(pathToFileURL(html).href);
  await page.screenshot({ path: join(ARTEFACTS, `${id}.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(ARTEFACTS, `${id}-phone.png`), fullPage: true });
  console.log(
    `report artefacts: ${html}, ${md}, ${join(ARTEFACTS, `${id}.png`)}, ${join(ARTEFACTS, `${id}-phone.png`)}`,
  );
  assert.deepEqual(requests, [pathToFileURL(html).href], 'the page requested nothing but itself');
  return { page, requests, md: readFileSync(md, 'utf8'), close: () => context.close() };
}

const count = (page: Page, sel: string) => page.locator(sel).count();

async function assertSteps(page: Page, s: Show): Promise<void> {
  for (const step of s.steps) {
    assert.equal(await count(page, `.gantt-row[data-step="${step.stepId}"]`), 1, `${step.stepId} on the timeline`);
    assert.equal(await count(page, `.step-figures[data-step="${step.stepId}"]`), 1, `${step.stepId} figures`);
  }
}

async function slotRows(page: Page, cluster: string, when: string): Promise<string[]> {
  return page
    .locator(`svg.slot-map[data-cluster="${cluster}"][data-when="${when}"] .slot-row`)
    .evaluateAll((gs) => gs.map((g) => g.getAttribute('data-master') ?? ''));
}

function rowsOf(table: 'progress' | 'node_logs', runId: string): number {
  const db = new Database(join(home, 'state.db'), { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE run_id = ?`).get(runId) as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Samples and log lines as the progress and node-log writers (other parts of the tool) would store them. */
function insertSamples(runId: string, stepId: string, at: number, node: string): void {
  const db = new Database(join(home, 'state.db'));
  try {
    const p = db.prepare('INSERT INTO progress (run_id, step_id, at, line, figures_json) VALUES (?,?,?,?,?)');
    for (let i = 0; i < 8; i++)
      p.run(
        runId,
        stepId,
        at + i * 400,
        `lag sample ${i}`,
        JSON.stringify({ lagBytes: 9000 - i * 1100, lagMs: 800 - i * 100 }),
      );
    const l = db.prepare('INSERT INTO node_logs (run_id, step_id, node, source, at, line) VALUES (?,?,?,?,?,?)');
    l.run(runId, stepId, node, 'redis.log', at + 300, 'Failover election won <script>alert(1)</script>\u0001');
    l.run(runId, stepId, node, 'redis.log', null, 'a line without a time');
  } finally {
    db.close();
  }
}

test('failover drill: the report shows every step, the promotion time, the slot map before and after, lag and node logs, and fetches nothing', async () => {
  const { masterOfSlot0: master } = await roles(DRILL_BASE, drill.password, SHARD_SLOTS[0]);
  const r = await cli(home, [
    'run',
    'failover-drill',
    '--inventory',
    drill.inventory,
    '--param',
    `node=${master}`,
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  const id = runIdOf(r);
  // The step-done line is a summary now, not JSON.
  assert.match(r.stdout, /done in \d+ ms: \S+ promoted [\d.]+ m?s after the stop \(shutdown\); writes failed for/);
  assert.doesNotMatch(r.stdout, /show --json\)/);
  const s = await show(id);
  const fail = s.steps.find((x) => x.kind === 'drill-fail-master')!;
  insertSamples(id, fail.stepId, fail.startedAt, fail.output.newMaster);

  const { page, md, close } = await openReport(id);
  try {
    await assertSteps(page, s);
    const promotion = await page
      .locator(`.step-figures[data-step="${fail.stepId}"] table.fig tr`, { hasText: /^promotion/ })
      .first()
      .innerText();
    assert.match(promotion, /promotion\s+[\d.]+ m?s/);
    const beforeRows = await slotRows(page, 'source', 'before');
    assert.equal(beforeRows.length, 3);
    assert.ok(beforeRows.includes(master), beforeRows.join(' '));
    const after = await slotRows(page, 'source', 'after');
    assert.equal(after.length, 3);
    assert.ok(after.includes(fail.output.newMaster) && !after.includes(master), after.join(' '));
    assert.equal(await count(page, 'svg.chart[data-series="lagBytes"] polyline'), 1);
    // The nodes' own logs, as the run collected them: the promoted replica won the election.
    assert.ok((await count(page, `#node-logs .log[data-node="${fail.output.newMaster}"]`)) >= 1);
    const logs = await page.locator('#node-logs').innerText();
    assert.match(logs, /Failover election won/);
    assert.match(logs, /<script>alert\(1\)<\/script>\\x01/);
    assert.equal(await page.evaluate(() => document.querySelectorAll('script').length), 0);
    assert.match(md, /\| promotion \| [\d.]+ m?s \|/);
  } finally {
    await close();
  }
});

test('consolidate-reshard: 3 masters before, 1 after on the source; 5 and 5 on the target; moves and comparison shown', async () => {
  const r = await cli(home, [
    'run',
    'migrate-consolidate-reshard',
    '--inventory',
    crInventory,
    '--yes',
    '--allow-destructive',
  ]);
  assert.equal(r.code, 0, r.out);
  const id = runIdOf(r);
  const s = await show(id);
  const { page, md, close } = await openReport(id);
  try {
    await assertSteps(page, s);
    assert.equal((await slotRows(page, 'source', 'before')).length, 3);
    assert.equal((await slotRows(page, 'source', 'after')).length, 1);
    assert.equal((await slotRows(page, 'target', 'before')).length, 5);
    assert.equal((await slotRows(page, 'target', 'after')).length, 5);
    const text = await page.locator('body').innerText();
    assert.match(text, /moved 13107 slots \(\d+ keys\) in [\d.]+ s/);
    assert.match(text, /compared \d+ keys: 0 differ/);
    assert.match(text, /copied 1 file \([\d.]+ kB\)/);
    // A slot move's thousands of writes are folded: its first, how many more, its last.
    assert.match(text, /MOVE-SLOTS .* and \d+ more like it until \+[\d.]+ s, the last MOVE-SLOTS/);
    // The slot moves reported their progress; the target's masters said what they loaded at start.
    assert.ok(rowsOf('progress', id) > 0);
    assert.ok(rowsOf('node_logs', id) > 0);
    assert.match(await page.locator('#node-logs').innerText(), /DB loaded from disk|Done loading RDB/);
    assert.match(md, /\| 127\.0\.0\.1:\d+ \| 16384 \| 0-16383 \|/);
  } finally {
    await close();
  }
});
