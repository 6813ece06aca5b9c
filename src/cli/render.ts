import type { Plan, PlanReport } from '../engine/plan.js';
import type { RunRow, StepRow, AuditRow, Finding } from '../engine/store.js';
import type { Condition } from '../steps/kind.js';
import { isReadOnly } from '../redis/connect.js';
import { stepSummary } from '../report/step-summary.js';
import { bold, dim, mark, red, yellow, green } from './style.js';
import { renderNodeLogs } from './render-node-logs.js';
import type { NodeLogRow } from '../engine/node-log-store.js';

export function renderConditions(cs: Condition[], indent = '    '): string[] {
  return cs.map((c) => `${indent}${mark(c.ok)} ${c.name}: ${c.reason}`);
}

export function renderPlan(r: PlanReport): string {
  const p = r.plan;
  const out: string[] = [];
  out.push(bold(`Plan: ${p.runbook}`) + dim(`  (plan ${p.id}, made ${p.createdAt})`));
  out.push(
    `  params: ${Object.entries(p.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  for (const [name, c] of Object.entries(p.clusters))
    out.push(`  cluster ${name}: ${c.structure.length} nodes, topology fingerprint ${c.fingerprint}`);
  out.push('');
  p.steps.forEach((s, i) => {
    out.push(`${bold(`${i + 1}. [${s.id}]`)} ${s.title}${s.destructive ? `  ${red('DESTRUCTIVE')}` : ''}`);
    if (s.destructive) out.push(`    ${yellow(`! ${s.destructive}`)}`);
    for (const c of s.commands)
      out.push(`    ${dim('->')} ${c.target}: ${c.command}${c.when ? dim(`  (${c.when})`) : ''}`);
    const pre = r.preconditions[s.id];
    if (pre) out.push(...renderConditions(pre));
  });
  if (p.omitted?.length) {
    out.push(dim(`not in this plan: ${p.omitted.map((o) => `${o.id} (${o.reason})`).join('; ')}`));
  }
  const failed = Object.entries(r.preconditions).flatMap(([id, cs]) =>
    cs.filter((c) => !c.ok).map((c) => `${id}: ${c.name}`),
  );
  out.push('');
  out.push(
    failed.length
      ? red(`${failed.length} precondition(s) fail: ${failed.join(', ')}. A run would be refused.`)
      : green('All preconditions pass. Nothing was changed (plan is read-only).'),
  );
  return out.join('\n');
}

const fmtTime = (ms: number | null) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 23) : '-');
const fmtDur = (a: number | null, b: number | null) => (a && b ? `${b - a} ms` : '-');

export function renderRuns(runs: RunRow[]): string {
  if (!runs.length) return 'no runs yet';
  const rows = runs.map((r) => [r.id, r.runbook, r.clusters.join(','), r.status, fmtTime(r.createdAt)]);
  return table(['RUN', 'RUNBOOK', 'CLUSTERS', 'STATUS', 'STARTED'], rows);
}

// The same list the read-only connections enforce: one definition of "a read".
const isRead = (a: AuditRow) => !a.write && a.target !== 'operator' && isReadOnly(a.command, a.args);

export function renderShow(
  run: RunRow,
  steps: StepRow[],
  audit: AuditRow[],
  withReads = false,
  findings: Array<Finding & { stepId: string }> = [],
  nodeLogs: NodeLogRow[] = [],
): string {
  const plan = JSON.parse(run.planJson) as Plan;
  const out: string[] = [];
  out.push(bold(`run ${run.id}`) + `  ${run.runbook}  status ${statusColor(run.status)}`);
  out.push(
    `  params: ${Object.entries(plan.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  out.push(`  started ${fmtTime(run.createdAt)}, updated ${fmtTime(run.updatedAt)}`);
  if (run.error) out.push(`  ${red(run.error)}`);
  out.push('');
  out.push(
    table(
      ['#', 'STEP', 'STATUS', 'TRIES', 'STARTED', 'TOOK', 'TITLE'],
      steps.map((s) => [
        String(s.idx + 1),
        s.stepId,
        s.status,
        String(s.attempts),
        fmtTime(s.startedAt),
        fmtDur(s.startedAt, s.finishedAt),
        s.title,
      ]),
    ),
  );
  for (const s of steps) {
    if (s.error) out.push(`  ${s.stepId}: ${red(s.error)}`);
    // The step's figures in a line; the output JSON itself is in `show --json`.
    const summary = stepSummary(s.kind, s.output, s.startedAt && s.finishedAt ? s.finishedAt - s.startedAt : undefined);
    if (summary) out.push(`  ${s.stepId}: ${dim(summary)}`);
  }
  if (findings.length) {
    out.push('');
    out.push(bold(`findings: ${findings.length}`));
    out.push(
      table(
        ['STEP', 'KIND', 'KEY', 'SOURCE', 'TARGET'],
        findings.map((f) => [f.stepId, f.kind, f.key, f.source, f.target]),
      ),
    );
  }
  out.push(...renderNodeLogs(nodeLogs, steps, audit));
  out.push('');
  const reads = audit.filter(isRead);
  const shown = withReads ? audit : audit.filter((a) => !isRead(a));
  const readsSent = reads.reduce((n, a) => n + a.count, 0);
  out.push(
    bold(`audit log: ${audit.length} events`) +
      (withReads ? '' : dim(` (${readsSent} reads hidden; --reads lists them)`)),
  );
  for (const a of shown) {
    // A folded read: the same read sent `count` times until lastAt; the time shown is the longest.
    const times = a.count > 1 ? dim(` x${a.count} until ${fmtTime(a.lastAt).slice(11)}, longest`) : '';
    out.push(
      `  ${fmtTime(a.at)} ${(a.stepId ?? '-').padEnd(16)} ${a.target.padEnd(16)} ${a.command} ${a.args.join(' ')}${times}${a.durationMs ? dim(` ${a.durationMs}ms`) : ''}${a.ok ? '' : red(` ERR ${a.error ?? ''}`)}`,
    );
  }
  return out.join('\n');
}

function statusColor(s: string): string {
  return s === 'succeeded' ? green(s) : s === 'failed' || s === 'aborted' || s === 'refused' ? red(s) : yellow(s);
}

export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}
