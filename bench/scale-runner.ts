/**
 * Runs the redis-runbook CLI as a child process, as an operator would (the
 * measured runs through bin/redis-runbook, the command npm installs, with its
 * heap bound), and measures it: wall time, the process's exact peak RSS
 * (ru_maxrss written at exit by rss-probe.js, preloaded with --import through
 * NODE_OPTIONS), and its RSS sampled from /proc every 200 ms, so a run's
 * steps can each be given their own peak.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/redis-runbook', import.meta.url));
const PROBE = new URL('./rss-probe.js', import.meta.url).href;

export interface Measured {
  status: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  peakKiB: number;
  samples: Array<[number, number]>;
}

export class Runner {
  /** `heapMb`: the bound bin/redis-runbook gives the heap (REDIS_RUNBOOK_MAX_HEAP_MB; 0: none); default its own. */
  constructor(
    readonly home: string,
    private readonly heapMb?: number,
  ) {}

  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, REDIS_RUNBOOK_HOME: this.home, NO_COLOR: '1', ...extra };
  }

  /** Unmeasured (sandbox up/down, show). */
  plain(args: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(process.execPath, [CLI, ...args], { env: this.env(), encoding: 'utf8', maxBuffer: 1 << 28 });
  }

  /** Measured: the runner under test. */
  async measured(args: string[]): Promise<Measured> {
    const rssFile = join(this.home, `rss-${process.pid}-${Date.now()}`);
    const t0 = Date.now();
    const heap: Record<string, string> =
      this.heapMb === undefined ? {} : { REDIS_RUNBOOK_MAX_HEAP_MB: String(this.heapMb) };
    const child = spawn(BIN, args, {
      env: this.env({
        RR_BENCH_RSS_FILE: rssFile,
        NODE_OPTIONS: `--import=${PROBE}`,
        // The command's `node` is this one, as for the unmeasured runs.
        PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
        ...heap,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-20000);
    });
    const samples: Array<[number, number]> = [];
    const timer = setInterval(() => {
      const kib = vmRss(child.pid!);
      if (kib) samples.push([Date.now(), kib]);
    }, 200);
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearInterval(timer);
    const wallMs = Date.now() - t0;
    if (!existsSync(rssFile))
      throw new Error(`the runner exited (${status}) without writing its peak RSS:\n${stderr.slice(-2000)}`);
    const peakKiB = Number(readFileSync(rssFile, 'utf8'));
    rmSync(rssFile);
    return { status, stdout, stderr, wallMs, peakKiB, samples };
  }

  /** Each step's sampled peak RSS (KiB), from the run record's step times. */
  stepPeaks(runId: string, samples: Array<[number, number]>): Array<{ step: string; ms: number; peakKiB: number }> {
    const r = this.plain(['show', runId, '--json']);
    if (r.status !== 0) throw new Error(`show ${runId} --json exited ${r.status}: ${r.stderr.slice(-2000)}`);
    const show = JSON.parse(r.stdout) as {
      steps: Array<{ stepId: string; startedAt: number | null; finishedAt: number | null }>;
    };
    return show.steps
      .filter((s) => s.startedAt !== null)
      .map((s) => {
        const end = s.finishedAt ?? Date.now();
        const inStep = samples.filter(([t]) => t >= s.startedAt! && t <= end).map(([, k]) => k);
        return { step: s.stepId, ms: end - s.startedAt!, peakKiB: inStep.length ? Math.max(...inStep) : 0 };
      });
  }
}

function vmRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // exited between two samples
  }
}
