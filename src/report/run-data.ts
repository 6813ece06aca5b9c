import type { Store, AuditRow } from '../engine/store.js';
import type { Plan } from '../engine/plan.js';
import { isReadOnly } from '../redis/connect.js';
import { usageError } from '../errors.js';
import { scrubValue } from '../scrub.js';
import { stepSummary } from './step-summary.js';
import { slotMaps, type SlotMap } from './slot-maps.js';

/**
 * Everything a run report shows, read from the state database alone (no
 * node is asked anything: a report of last night's run works with the
 * clusters gone). The HTML and Markdown renderers take this object and
 * nothing else, so a test can build one by hand.
 */
export interface ReportStep {
  id: string;
  kind: string;
  title: string;
  status: string;
  attempts: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The earliest thing the step journaled: before startedAt when earlier attempts ran. */
  firstSeenAt: number | null;
  error: string | null;
  summary: string;
  output: unknown;
}

export interface ReportMarker {
  at: number;
  stepId: string | null;
  /** OPERATOR-CONTINUE, OPERATOR-ABORT, a wait's note... */
  what: string;
  detail: string;
}

export interface ReportWrite {
  at: number;
  stepId: string | null;
  command: string;
  ok: boolean;
  error?: string;
  count?: number;
  last?: { at: number; command: string };
}

export interface ReportNodeCommands {
  node: string;
  /**
   * Writes in order. A run of the same write in the same step (a slot move's thousands of
   * CLUSTER SETSLOT, MIGRATE) is one entry: its first command, and `count` with the last.
   */
  writes: ReportWrite[];
  /** Read-only commands folded: command name -> times sent. */
  reads: Record<string, number>;
}

export interface ReportProgress {
  stepId: string;
  at: number;
  line: string;
  figures: Record<string, unknown>;
}

export interface ReportNodeLog {
  stepId: string;
  node: string;
  source: string;
  at: number | null;
  line: string;
}

export interface ReportFinding {
  stepId: string;
  key: string;
  kind: string;
  source: string;
  target: string;
}

export interface RunReportData {
  run: {
    id: string;
    runbook: string;
    status: string;
    params: Record<string, string>;
    startedAt: number;
    /** The last time the run's record changed: its end once it has finished. */
    finishedAt: number;
    error: string | null;
  };
  /** Inventory clusters the run worked on, with their nodes at the plan. */
  clusters: Array<{ name: string; nodes: number; masters: number; fingerprint: string }>;
  steps: ReportStep[];
  markers: ReportMarker[];
  commands: ReportNodeCommands[];
  progress: ReportProgress[];
  nodeLogs: ReportNodeLog[];
  findings: ReportFinding[];
  slotMaps: SlotMap[];
  generatedAt: number;
}

const commandText = (a: AuditRow) => [a.command, ...a.args].join(' ');

/** The command and its subcommand: what makes two writes "the same" for folding. */
const shape = (a: AuditRow) => (/^(CLUSTER|CONFIG|CLIENT)$/i.test(a.command) ? `${a.command} ${a.args[0]}` : a.command);
const shapeOf = (command: string) => command.split(' ', /^(CLUSTER|CONFIG|CLIENT) /i.test(command) ? 2 : 1).join(' ');

function addWrite(writes: ReportWrite[], a: AuditRow): void {
  const prev = writes[writes.length - 1];
  // Failures are never folded: each one is shown.
  if (prev && prev.ok && a.ok && prev.stepId === (a.stepId ?? null) && shapeOf(prev.command) === shape(a)) {
    prev.count = (prev.count ?? 1) + 1;
    prev.last = { at: a.at, command: commandText(a) };
    return;
  }
  writes.push({ at: a.at, stepId: a.stepId ?? null, command: commandText(a), ok: a.ok, error: a.error });
}

/** Writes per node in order, reads folded to counts per command; operator decisions are markers, not commands. */
function commandsPerNode(audit: AuditRow[]): ReportNodeCommands[] {
  const byNode = new Map<string, ReportNodeCommands>();
  for (const a of audit) {
    if (a.target === 'operator') continue;
    let n = byNode.get(a.target);
    if (!n) byNode.set(a.target, (n = { node: a.target, writes: [], reads: {} }));
    if (!a.write && isReadOnly(a.command, a.args)) {
      const name = a.command === 'CLUSTER' || a.command === 'CONFIG' ? `${a.command} ${a.args[0] ?? ''}` : a.command;
      n.reads[name] = (n.reads[name] ?? 0) + a.count;
    } else addWrite(n.writes, a);
  }
  return [...byNode.values()].sort((x, y) => x.node.localeCompare(y.node, 'en', { numeric: true }));
}

const earliest = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a == null ? (b ?? null) : b == null ? a : Math.min(a, b);

export function loadRunData(store: Store, runId: string): RunReportData {
  const run = store.getRun(runId);
  if (!run)
    throw usageError('E_RUN_UNKNOWN', `no run ${runId} in ${store.stateDir}`, 'list runs with `redis-runbook runs`');
  const plan = JSON.parse(run.planJson) as Plan;
  const audit = store.audit(runId);
  const firstSeen = new Map<string, number>();
  for (const a of audit) if (a.stepId && !firstSeen.has(a.stepId)) firstSeen.set(a.stepId, a.at);
  const steps: ReportStep[] = store.steps(runId).map((s) => ({
    id: s.stepId,
    kind: s.kind,
    title: s.title,
    status: s.status,
    attempts: s.attempts,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    firstSeenAt: earliest(firstSeen.get(s.stepId), s.startedAt),
    error: s.error,
    summary: stepSummary(s.kind, s.output, s.startedAt && s.finishedAt ? s.finishedAt - s.startedAt : undefined),
    output: s.output,
  }));
  const markers = audit
    .filter((a) => a.target === 'operator')
    .map((a) => ({ at: a.at, stepId: a.stepId ?? null, what: a.command, detail: a.args.join(' ') }));
  const data: RunReportData = {
    run: {
      id: run.id,
      runbook: run.runbook,
      status: run.status,
      params: plan.params,
      startedAt: run.createdAt,
      finishedAt: run.updatedAt,
      error: run.error,
    },
    clusters: Object.entries(plan.clusters).map(([name, c]) => ({
      name,
      nodes: c.structure.length,
      masters: c.structure.filter((n) => n.role === 'master' && n.slots.length).length,
      fingerprint: c.fingerprint,
    })),
    steps,
    markers,
    commands: commandsPerNode(audit),
    progress: readProgress(store, runId),
    nodeLogs: readNodeLogs(store, runId),
    findings: store.findings(runId),
    slotMaps: slotMaps(plan, steps),
    generatedAt: Date.now(),
  };
  // Scrubbed already when written; scrubbed again here with whatever secrets this process knows.
  return scrubValue(data);
}

function readProgress(store: Store, runId: string): ReportProgress[] {
  const rows = store.db
    .prepare('SELECT step_id, at, line, figures_json FROM progress WHERE run_id = ? ORDER BY id')
    .all(runId) as Array<{ step_id: string; at: number; line: string; figures_json: string }>;
  return rows.map((r) => ({ stepId: r.step_id, at: r.at, line: r.line, figures: parseObject(r.figures_json) }));
}

function readNodeLogs(store: Store, runId: string): ReportNodeLog[] {
  const rows = store.db
    .prepare('SELECT step_id, node, source, at, line FROM node_logs WHERE run_id = ? ORDER BY id')
    .all(runId) as Array<{ step_id: string; node: string; source: string; at: number | null; line: string }>;
  return rows.map((r) => ({ stepId: r.step_id, node: r.node, source: r.source, at: r.at, line: r.line }));
}

function parseObject(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
