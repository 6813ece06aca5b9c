/**
 * Wall time of the two file-based migration runbooks on the sandbox with 1M
 * keys, over the sandbox's loopback sshd (every host command and copy goes
 * through ssh), unattended: migrate-copy-files (3 masters x 1 replica to the
 * same shape, RDB) and migrate-consolidate-reshard (3 x 1 to 5 x 1). Per
 * step times come from the run record. One run each: these take minutes.
 */
import { benchCli } from './bench-cli.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const { cli } = benchCli('mig');

function runOnce(
  name: string,
  base: number,
  targetMasters: number,
  runbook: string,
  params: string[],
): { wall: number; steps: Array<[string, number]> } {
  process.stderr.write(`${runbook}: seeding ${KEYS} keys...\n`);
  const up = cli([
    'sandbox',
    'up',
    '--name',
    name,
    '--base-port',
    String(base),
    '--keys',
    String(KEYS),
    '--target-masters',
    String(targetMasters),
    '--ssh',
  ]);
  if (up.status !== 0) throw new Error(up.stderr);
  try {
    const inventory = up.stdout.trim();
    const t0 = Date.now();
    const r = cli([
      'run',
      runbook,
      '--inventory',
      inventory,
      ...params.flatMap((p) => ['--param', p]),
      '--yes',
      '--allow-destructive',
    ]);
    const wall = Date.now() - t0;
    if (r.status !== 0) throw new Error(`${runbook} failed:\n${r.stdout.slice(-3000)}\n${r.stderr}`);
    const id = /^run (\S+):/m.exec(r.stdout)![1]!;
    const show = JSON.parse(cli(['show', id, '--json']).stdout) as {
      steps: Array<{ stepId: string; startedAt: number | null; finishedAt: number | null }>;
    };
    return { wall, steps: show.steps.map((s) => [s.stepId, (s.finishedAt ?? 0) - (s.startedAt ?? 0)]) };
  } finally {
    cli(['sandbox', 'down', '--name', name]);
  }
}

const copy = runOnce('migcopy', 8250, 3, 'migrate-copy-files', ['sample=1']);
const reshard = runOnce('migcr', 8270, 5, 'migrate-consolidate-reshard', ['sample=1', 'restoreSource=true']);
console.log(`\nfile-based migrations on the sandbox, ${KEYS} keys, over loopback ssh, unattended, one run each`);
console.log('| runbook | wall time s | slowest steps (s) |');
console.log('|---|---|---|');
for (const [name, r] of [
  ['migrate-copy-files (3x1 -> 3x1, rdb)', copy],
  ['migrate-consolidate-reshard (3x1 -> 5x1, source put back)', reshard],
] as const) {
  const top = [...r.steps]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([id, ms]) => `${id} ${(ms / 1000).toFixed(1)}`)
    .join(', ');
  console.log(`| ${name} | ${(r.wall / 1000).toFixed(1)} | ${top} |`);
}
