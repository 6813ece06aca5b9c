import type { AuditRow, StepRow } from '../engine/store.js';
import type { NodeLogRow } from '../engine/node-log-store.js';
import { bold, dim, yellow } from './style.js';

/**
 * `show`'s section on the nodes' own logs: per step, per node, the lines the
 * node wrote during the step, interleaved by time with what the tool did to
 * it (the commands it sent, from the audit journal) and the step's start and
 * end, so that "the tool sent CLUSTER FAILOVER at t; the replica said `Manual
 * failover user request accepted` 2 ms later" reads straight down.
 */
export function renderNodeLogs(rows: NodeLogRow[], steps: StepRow[], audit: AuditRow[]): string[] {
  if (!rows.length) return [];
  const out: string[] = ['', bold(`node logs: ${rows.length} lines`) + dim(" (each node's own log during the step)")];
  const byStep = groupBy(rows, (r) => r.stepId);
  for (const step of steps) {
    const stepRows = byStep.get(step.stepId);
    if (!stepRows) continue;
    for (const [node, nodeRows] of groupBy(stepRows, (r) => r.node)) {
      out.push(`  ${bold(`[${step.stepId}]`)} ${node} ${dim(sourcesOf(nodeRows))}`);
      for (const line of timeline(nodeRows, step, toolEvents(audit, step.stepId, node))) out.push(`    ${line}`);
    }
  }
  return out;
}

function groupBy<T>(list: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of list) {
    const k = key(x);
    m.set(k, [...(m.get(k) ?? []), x]);
  }
  return m;
}

const sourcesOf = (rows: NodeLogRow[]) => [...new Set(rows.map((r) => r.source))].join(', ');

/** What the tool did to this node in the step: its writes to it, and the step's writes to no node (a host command). */
function toolEvents(audit: AuditRow[], stepId: string, node: string): AuditRow[] {
  return audit.filter((a) => a.stepId === stepId && a.write && (a.target === node || !/:\d+$/.test(a.target)));
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);
const BLANK = ' '.repeat(12);

/** The node's line without its pid and timestamp (shown in the first column): role, level, message. */
function message(line: string): string {
  const m = /^\d+:([MSCX]) (?:\d{2} [A-Z][a-z]{2} \d{4} [\d:.]{12}|\S+) ([.\-*#] .*)$/.exec(line);
  return m ? `${m[1]} ${m[2]}` : line;
}

type Item = { at: number; order: number; text: (lastTool: number | undefined) => string; tool?: boolean };

/** The node's lines and the tool's events in time order; a line without a time stays after the line it followed. */
function timeline(rows: NodeLogRow[], step: StepRow, events: AuditRow[]): string[] {
  const items: Item[] = [];
  let last = -Infinity;
  rows.forEach((r, i) => {
    const at = r.at ?? last;
    last = at;
    items.push({
      at,
      order: i,
      text: (tool) =>
        r.at === null
          ? `${BLANK}  ${r.line.startsWith('[redis-runbook]') ? yellow(r.line) : r.line}`
          : `${clock(r.at)}  ${dim((tool === undefined ? '' : `+${r.at - tool}ms`).padStart(9))} ${message(r.line)}`,
    });
  });
  for (const e of events)
    items.push({
      at: e.at,
      order: -1,
      tool: true,
      text: () => `${clock(e.at)}  ${bold('tool ->')} ${e.target}: ${e.command} ${e.args.join(' ')}`,
    });
  if (step.startedAt)
    items.push({ at: step.startedAt, order: -2, text: () => dim(`${clock(step.startedAt!)}  -- step started`) });
  if (step.finishedAt)
    items.push({
      at: step.finishedAt,
      order: -2,
      text: () => dim(`${clock(step.finishedAt!)}  -- step ${step.status}`),
    });
  // Stable: equal times keep markers, then the tool's command, then the node's answer.
  items.sort((a, b) => a.at - b.at || a.order - b.order);
  let lastTool: number | undefined;
  return items.map((it) => {
    if (it.tool) lastTool = it.at;
    return it.text(lastTool);
  });
}
