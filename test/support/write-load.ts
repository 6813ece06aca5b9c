import assert from 'node:assert/strict';
import { cli, type CliResult } from './cli.js';
import { withNode } from './cluster.js';
import { AckWriter, type Missing } from './ack-writer.js';
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
  return (slot) => ranges.some(([a, b]) => a <= slot && slot <= b);
}

/**
 * Run the CLI while an AckWriter works on the cluster at `port`: the writer
 * starts `leadMs` before the run and stops `tailMs` after it (or, with
 * `stopWhen`, as soon as the run's show output satisfies it).
 */
export async function underLoad(home: string, args: string[], w: { port: number; password: string; prefix: string; leadMs?: number; tailMs?: number; stopWhen?: (s: Show) => boolean; runId?: () => string | undefined }): Promise<{ r: CliResult; writer: AckWriter }> {
  const writer = new AckWriter({ port: w.port, password: w.password, prefix: w.prefix }).start();
  await sleep(w.leadMs ?? 1000);
  const running = cli(home, args);
  let r: CliResult;
  if (w.stopWhen) r = await stopOnCondition(home, running, writer, w.stopWhen);
  else r = await running;
  await sleep(w.tailMs ?? 1000);
  await writer.stop();
  return { r, writer };
}

/** Poll the newest run's show output while the run goes; stop the writer once `when` holds. */
async function stopOnCondition(home: string, running: Promise<CliResult>, writer: AckWriter, when: (s: Show) => boolean): Promise<CliResult> {
  let done = false;
  void running.then(() => (done = true));
  while (!done) {
    await sleep(200);
    const runs = await cli(home, ['runs', '--json']);
    const list = JSON.parse(runs.stdout || '[]') as Array<{ id: string; status: string }>;
    const last = list.find((x) => x.status === 'running');
    if (!last) continue;
    const s = await cli(home, ['show', last.id, '--json']);
    if (s.code === 0 && when(JSON.parse(s.stdout) as Show)) break;
  }
  await writer.stop();
  return running;
}

export function describeMissing(m: Missing[]): string {
  return `${m.length} acknowledged writes missing:\n${m.slice(0, 10).map((x) => `${x.kind} ${x.key} (slot ${x.slot}): ${x.detail}`).join('\n')}`;
}

/** A one-line figure for the reliability table, printed to the test log. */
export function figure(name: string, writer: AckWriter, lost: number, differences: number): void {
  const acked = writer.acked().length;
  console.log(`FIGURE ${JSON.stringify({ case: name, sent: writer.records.length, acked, lost, differences })}`);
}
