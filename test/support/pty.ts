import { spawn } from 'node:child_process';
import { CLI } from './cli.js';

export interface GuidedSession {
  code: number;
  out: string;
}

/**
 * Run the CLI under a real pseudo-terminal (util-linux `script`), as an
 * operator at a terminal would, answering each prompt with `answer(n, screen)`:
 * keystrokes to type when the n-th prompt appears.
 */
export function guided(
  home: string,
  args: string[],
  answer: (n: number, out: string) => string,
): Promise<GuidedSession> {
  const cmd = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
      env: { ...process.env, REDIS_RUNBOOK_HOME: home, NO_COLOR: '1' },
    });
    let out = '';
    let answered = 0;
    const onData = (d: Buffer) => {
      out += d.toString();
      // Each prompt draws its choices once; "❯" marks the highlighted choice of a live prompt.
      const prompts = out.split('↑↓ navigate').length - 1;
      if (prompts > answered) {
        answered = prompts;
        const keys = answer(answered, out);
        setTimeout(() => child.stdin.write(keys), 150);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}

export const ENTER = '\r';
export const DOWN = '\x1b[B';
export const CTRL_C = '\x03';
