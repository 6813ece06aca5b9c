/** A benchmark's own state directory, and the CLI run in it as a child process (no colours, output captured). */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export function benchCli(name: string): { home: string; cli: (args: string[]) => SpawnSyncReturns<string> } {
  const home = mkdtempSync(join(tmpdir(), `rr-bench-${name}-`));
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' },
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
  return { home, cli };
}
