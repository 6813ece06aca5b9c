import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cli, type CliResult } from './cli.js';
import { withNode } from './cluster.js';
import { AckWriter, type Missing } from './ack-writer.js';
import { figures } from './reliability.js';
import { parseClusterNodes } from '../../src/redis/cluster-nodes.js';

/** What `show --json` gives for a run (the parts these tests read). */
export interface Show {
  run: { status: string };
  steps: Array<{ stepId: string; status: string; output: any; startedAt: number | null; finishedAt: number | null }>;
  audit: Array<{ command: string; target: string; args: string[]; at: number; durationMs: number }>;
}

export async function showRun(home: string, id: string): Promise<Show> {
  const r = await cli(home, ['show', id, '--json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout) as Show;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A predicate for the slots a master owned in the view of the node on `port`. */
export async function slotsOf(port: number, password: string, address: string): Promise<(slot: number) => boolean> {
  const view = parseClusterNodes((await withNode(port, password, (r) => r.call('CLUSTER', 'NODES'))) as string);
  const ranges = view.find((l) => l.address === address)?.slots ?? [];
  // No slots would make every check against them pass: a master is named by an address its cluster knows.
  if (!ranges.length)
    throw new Error(
      `${address} owns no slots in ${port}'s view of the cluster (is it the address CLUSTER NODES shows?)`,
    );
  return (slot) => ranges.some(([a, b]) => a <= slot && slot <= b);
}

/**
 * Run the CLI while an AckWriter works on the cluster at `port`: the writer
 * starts `leadMs` before the run and stops `tailMs` after it (or, with
 * `stopAfterStep`, as soon as that step of the running run is done).
 */
export async function underLoad(
  home: string,
  args: string[],
  w: {
    port: number;
    password: string;
    prefix: string;
    leadMs?: number;
    tailMs?: number;
    stopAfterStep?: string;
    commandTimeoutMs?: number;
  },
): Promise<{ r: CliResult; writer: AckWriter }> {
  const writer = new AckWriter({
    port: w.port,
    password: w.password,
    prefix: w.prefix,
    commandTimeoutMs: w.commandTimeoutMs,
  }).start();
  await sleep(w.leadMs ?? 1000);
  const running = cli(home, args);
  let r: CliResult;
  if (w.stopAfterStep) r = await stopAfter(home, running, writer, w.stopAfterStep);
  else r = await running;
  await sleep(w.tailMs ?? 1000);
  // close, not just stop: a cluster client left connected reconnects to the
  // sandbox's nodes forever and keeps the test file's process alive.
  await writer.close();
  return { r, writer };
}

/**
 * Watch the state database (read-only, no CLI process per look: the machine
 * is small) and stop the writer once the running run has finished `stepId`.
 */
async function stopAfter(
  home: string,
  running: Promise<CliResult>,
  writer: AckWriter,
  stepId: string,
): Promise<CliResult> {
  let done = false;
  void running.then(() => (done = true));
  const file = join(home, 'state.db');
  while (!done) {
    await sleep(100);
    if (!existsSync(file)) continue;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const row = db
        .prepare(
          "SELECT s.status FROM steps s JOIN runs r ON r.id = s.run_id WHERE r.status = 'running' AND s.step_id = ?",
        )
        .get(stepId) as { status: string } | undefined;
      if (row?.status === 'done') break;
    } catch {
      // The run's tables may not be there yet.
    } finally {
      db.close();
    }
  }
  await writer.stop();
  return running;
}

export function describeMissing(m: Missing[]): string {
  return `${m.length} acknowledged writes missing:\n${m
    .slice(0, 10)
    .map((x) => `${x.kind} ${x.key} (slot ${x.slot}): ${x.detail}`)
    .join('\n')}`;
}

/** The case's figures for the reliability table (see reliability.ts), also printed to the test log. */
export function figure(name: string, writer: AckWriter, lost: number, differences: number): void {
  const acked = writer.acked().length;
  figures(`${name} under write load`, { ackedLost: lost, differences });
  console.log(`FIGURE ${JSON.stringify({ case: name, sent: writer.records.length, acked, lost, differences })}`);
}
