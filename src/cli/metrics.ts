import { createServer, type Server } from 'node:http';
import type Database from 'better-sqlite3';
import { usageError } from '../errors.js';
import { runView, type RunView } from '../engine/run-view.js';

/**
 * `--metrics-addr HOST:PORT` on run, resume and verify: the run's state in Prometheus text
 * format on GET /metrics, for as long as the run lasts. Read from the state database (the
 * same rows `status` shows) at each scrape, so the figures are the sampled ones (<= 1 s old).
 * Plain node:http: no dependency for one endpoint.
 */

/** `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`: any address the operator gives, but well formed. */
export function parseMetricsAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535))
    throw usageError(
      'E_USAGE',
      `--metrics-addr ${addr}: not HOST:PORT with a port from 1 to 65535`,
      'pass e.g. --metrics-addr 127.0.0.1:9464 (an IPv6 address in brackets: [::1]:9464)',
    );
  return { host: m[1] ?? m[2]!, port };
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

type Labels = Record<string, string>;
interface Metric {
  name: string;
  help: string;
  samples: Array<{ labels?: Labels; value: number }>;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The metrics of a run as it is now (none of a figure the step did not report). */
export function metricsOf(v: RunView | undefined): Metric[] {
  const m = (name: string, help: string, value: number | undefined, labels?: Labels): Metric => ({
    name,
    help,
    samples: value === undefined ? [] : [{ labels, value }],
  });
  const f = v?.sample?.figures ?? {};
  const unit = typeof f.unit === 'string' ? f.unit : undefined;
  const lagMs = num(f.lagMs);
  return [
    m('redis_runbook_run_info', 'The run this process executes (1), with its id, runbook and status.', v && 1, {
      run_id: v?.run.id ?? '',
      runbook: v?.run.runbook ?? '',
      status: v?.run.status ?? '',
    }),
    m('redis_runbook_step_info', 'The step in progress (1): its id, index (1-based) and kind.', v?.step && 1, {
      step: v?.step?.id ?? '',
      index: String((v?.step?.index ?? 0) + 1),
      kind: v?.step?.kind ?? '',
    }),
    m(
      'redis_runbook_phase',
      'The phase the step reports (1): full-sync, incremental, a verify round...',
      f.phase ? 1 : undefined,
      {
        phase: String(f.phase ?? ''),
      },
    ),
    m(
      'redis_runbook_sync_lag_bytes',
      "The sync's largest lag of a shard behind its source, in bytes.",
      num(f.lagBytes),
    ),
    m(
      'redis_runbook_sync_lag_seconds',
      "The sync's largest lag of a shard behind its source, in seconds.",
      lagMs === undefined ? undefined : lagMs / 1000,
    ),
    m(
      'redis_runbook_keys_per_second',
      'Keys per second the step handles now (synced, compared, moved).',
      num(f.keysPerSec),
    ),
    m('redis_runbook_bytes_per_second', 'Bytes per second the step moves now (file copy).', num(f.bytesPerSec)),
    m('redis_runbook_progress_done', 'What the step has done, in its unit.', num(f.done), unit ? { unit } : undefined),
    m(
      'redis_runbook_progress_total',
      'What the step has to do, in its unit.',
      num(f.total),
      unit ? { unit } : undefined,
    ),
    m('redis_runbook_differences', 'Differences a verify found so far.', num(f.differences)),
    m(
      'redis_runbook_progress_sample_age_seconds',
      'How old the latest progress sample of the step is.',
      v?.sample && Math.max(0, (Date.now() - v.sample.at) / 1000),
    ),
  ];
}

/** Prometheus text exposition format 0.0.4: # HELP and # TYPE (all gauges), then the samples. */
export function renderMetrics(metrics: Metric[]): string {
  const out: string[] = [];
  for (const x of metrics) {
    out.push(`# HELP ${x.name} ${x.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${x.name} gauge`);
    for (const s of x.samples) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
      out.push(`${x.name}${l} ${Number.isInteger(s.value) ? s.value : s.value.toPrecision(6)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The endpoint of one run; `setRun` once its id is known, `close` when it ends. */
export interface MetricsServer {
  setRun(runId: string): void;
  close(): Promise<void>;
}

const NONE: MetricsServer = { setRun: () => {}, close: async () => {} };

/**
 * Listen before the run starts: a malformed address or a port in use is a usage error then,
 * not a surprise halfway through a migration.
 */
export async function startMetrics(addr: string | undefined, db: () => Database.Database): Promise<MetricsServer> {
  if (!addr) return NONE;
  const { host, port } = parseMetricsAddr(addr);
  let runId: string | undefined;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    try {
      const body = renderMetrics(metricsOf(runId ? runView(db(), runId) : undefined));
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot read the run: ${(err as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        usageError(
          'E_USAGE',
          `--metrics-addr ${addr}: cannot listen (${err.code ?? err.message})`,
          err.code === 'EADDRINUSE'
            ? 'another process uses that port: pick another one'
            : 'pass an address of this machine, e.g. 127.0.0.1:9464',
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  // Scrapes must not keep a finished run's process alive.
  server.unref();
  return {
    setRun: (id) => (runId = id),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
