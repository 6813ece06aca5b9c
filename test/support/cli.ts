import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI, run as a user would run it: a child process. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
}

export function tempStateDir(prefix = 'rr-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * No CLI call of a test runs longer than this (RR_TEST_CLI_TIMEOUT_MS, default
 * 10 min): a run that hangs is killed and the test fails with what it printed
 * so far, instead of holding the whole suite until CI gives up.
 */
export const CLI_TIMEOUT_MS = Number(process.env.RR_TEST_CLI_TIMEOUT_MS) || 10 * 60_000;

/** Run the CLI to completion (no terminal: stdin is closed). */
export function cli(home: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CLI_TIMEOUT_MS);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut)
        stderr += `\n[test harness: \`${args.slice(0, 2).join(' ')}\` killed after ${CLI_TIMEOUT_MS / 1000} s without finishing]\n`;
      resolve({
        code: timedOut ? 124 : (code ?? (signal === 'SIGKILL' ? 137 : 1)),
        stdout,
        stderr,
        out: stdout + stderr,
      });
    });
  });
}

export function cliSync(home: string, args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' },
    encoding: 'utf8',
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr };
}

/** The run id a `run` prints on its first line. */
export function runIdOf(r: CliResult): string {
  const m = /^run (\S+):/m.exec(r.stdout);
  if (!m) throw new Error(`no run id in output:\n${r.out}`);
  return m[1]!;
}

/** Start a sandbox for a test file (3000 keys unless `extra` says otherwise); returns its inventory path. */
export async function sandbox(
  home: string,
  basePort: number,
  extra: string[] = [],
  name = 't',
): Promise<{ inventory: string; password: string }> {
  const r = await cli(home, [
    'sandbox',
    'up',
    '--name',
    name,
    '--base-port',
    String(basePort),
    '--keys',
    '3000',
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`sandbox up failed:\n${r.out}`);
  const inventory = r.stdout.trim().split('\n').pop()!;
  return { inventory, password: readFileSync(join(inventory, '..', 'password'), 'utf8').trim() };
}

export async function sandboxDown(home: string, name = 't'): Promise<void> {
  await cli(home, ['sandbox', 'down', '--name', name]);
}
