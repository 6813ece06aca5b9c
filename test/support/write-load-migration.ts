import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { cli, tempStateDir } from './cli.js';
import { describeMissing, slotsOf, type Show } from './write-load.js';
import type { AckWriter } from './ack-writer.js';

/**
 * A source (3 x 1) and a target (3 x 1) with sshd, for the migration runbooks
 * under write load, and the checks they share. Registers the test file's
 * before/after hooks.
 */
export function migrationSandbox(BASE: number, name: string) {
  const TARGET = BASE + 100;
  const SOURCE_MASTERS = [0, 1, 2].map((i) => `127.0.0.1:${BASE + i}`);
  const home = tempStateDir(`rr-${name}-`);
  const ctx = { home, BASE, TARGET, SOURCE_MASTERS, inventory: '', password: '' };
  before(async () => {
    const r = await cli(home, [
      'sandbox',
      'up',
      '--name',
      name,
      '--base-port',
      String(BASE),
      '--keys',
      '3000',
      '--target-masters',
      '3',
      '--ssh',
    ]);
    if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
    ctx.inventory = r.stdout.trim().split('\n').pop()!;
    ctx.password = readFileSync(join(dirname(ctx.inventory), 'password'), 'utf8').trim();
  });
  after(async () => {
    // Said out loud: a sandbox left up holds its ports for every later test.
    const r = await cli(home, ['sandbox', 'down', '--name', name]);
    if (r.code !== 0) console.error(`sandbox down --name ${name} failed, its nodes are still up:\n${r.out}`);
  });

  /** Per source master: every write to its slots acknowledged before `at(master)` is on the target. */
  async function carried(writer: AckWriter, at: (master: string) => number): Promise<number> {
    let lost = 0;
    for (const m of SOURCE_MASTERS) {
      const missing = await writer.check(TARGET, ctx.password, {
        ackedBefore: at(m),
        slots: await slotsOf(BASE, ctx.password, m),
      });
      assert.deepEqual(missing, [], `${m}: ${describeMissing(missing)}`);
      lost += missing.length;
    }
    return lost;
  }

  /**
   * A comparison that found only late writes fails its run, which then holds the
   * clusters: the operator aborts it; so does the test, to go on.
   */
  async function release(id: string, s: Show): Promise<void> {
    if (s.run.status === 'succeeded') return;
    const r = await cli(home, ['abort', id]);
    assert.equal(r.code, 0, r.out);
  }

  return Object.assign(ctx, { carried, release });
}

/**
 * The differences the runbook's own comparison reports are writes made after
 * its promised moment: each differing key is one the writer wrote after `from`.
 * Returns the number of differences no late write explains (asserted 0).
 */
export function explained(s: Show & { findings?: Array<{ key: string }> }, writer: AckWriter, from: number): number {
  const late = new Set(writer.records.filter((w) => w.ackAt === null || w.ackAt >= from).map((w) => w.key));
  const found = s.findings ?? [];
  const unexplained = found.filter((f) => !late.has(f.key));
  assert.deepEqual(
    unexplained.map((f) => f.key).slice(0, 10),
    [],
    `the comparison found ${unexplained.length} differences no late write explains`,
  );
  // The table's "data differences" are the unexplained ones; the late writes are printed.
  console.log(`comparison: ${found.length} differences, all writes acknowledged after the promised moment`);
  return unexplained.length;
}

export const audited = (s: Show, command: string, target: string, arg0?: string) =>
  s.audit.find((a) => a.command === command && a.target === target && (arg0 === undefined || a.args[0] === arg0));
