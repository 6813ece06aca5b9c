import type { RunReportData } from './run-data.js';
import { mdCell } from './escape.js';
import { figureRows } from './figures.js';
import { fmtBytes, fmtMs, fmtTime, plural } from './units.js';
import { scrubText } from '../scrub.js';

/**
 * The run report as Markdown, for a ticket or a chat: the same content as
 * the HTML page, with tables for the drawings (the timeline as start and
 * duration per step, the slot maps as ranges per master, the lag as its
 * samples' range). Every cell is escaped (mdCell): a key cannot become markup.
 */
const rel = (d: RunReportData, at: number | null) => (at ? `+${fmtMs(at - d.run.startedAt)}` : '-');

function table(head: string[], rows: string[][]): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ];
}

function header(d: RunReportData): string[] {
  const r = d.run;
  return [
    `# Run ${mdCell(r.id)}`,
    '',
    ...table(
      ['', ''],
      [
        ['runbook', mdCell(r.runbook)],
        ['status', `**${mdCell(r.status)}**`],
        [
          'params',
          Object.entries(r.params)
            .map(([k, v]) => mdCell(`${k}=${v}`))
            .join(' ') || '-',
        ],
        ['started', `${fmtTime(r.startedAt)} UTC`],
        ['finished', `${fmtTime(r.finishedAt)} UTC`],
        ['duration', fmtMs(r.finishedAt - r.startedAt)],
        [
          'clusters',
          d.clusters
            .map((c) => `${mdCell(c.name)}: ${plural(c.masters, 'master')}, ${plural(c.nodes, 'node')}`)
            .join('; ') || '-',
        ],
        ...(r.error ? [['error', mdCell(r.error)]] : []),
      ],
    ),
  ];
}

function steps(d: RunReportData): string[] {
  const out = ['## Steps and timeline', ''];
  out.push(
    ...table(
      ['#', 'step', 'kind', 'status', 'tries', 'started', 'took', 'what it did'],
      d.steps.map((s, i) => [
        String(i + 1),
        mdCell(s.id),
        mdCell(s.kind),
        mdCell(s.status),
        String(s.attempts),
        rel(d, s.startedAt),
        s.startedAt && s.finishedAt ? fmtMs(s.finishedAt - s.startedAt) : '-',
        mdCell(s.summary) + (s.error ? ` **error:** ${mdCell(s.error)}` : ''),
      ]),
    ),
  );
  out.push('### Operator decisions', '');
  if (!d.markers.length) out.push('No operator decision was recorded.', '');
  else
    out.push(
      ...table(
        ['at', 'step', 'decision', 'detail'],
        d.markers.map((m) => [rel(d, m.at), mdCell(m.stepId ?? '-'), mdCell(m.what), mdCell(m.detail)]),
      ),
    );
  return out;
}

function figures(d: RunReportData): string[] {
  const out = ['## What each step measured', ''];
  for (const s of d.steps) {
    const rows = s.output && typeof s.output === 'object' ? figureRows(s.output) : [];
    out.push(`### ${mdCell(s.id)} (${mdCell(s.kind)})`, '');
    if (s.summary) out.push(mdCell(s.summary), '');
    if (rows.length)
      out.push(
        ...table(
          ['figure', 'value'],
          rows.map((r) => [mdCell(r.label), mdCell(r.value)]),
        ),
      );
    else out.push('No output recorded.', '');
  }
  return out;
}

function progress(d: RunReportData): string[] {
  const out = ['## Progress and sync lag', ''];
  if (!d.progress.length) return [...out, 'No progress samples were recorded for this run.', ''];
  for (const s of d.steps) {
    const rows = d.progress.filter((p) => p.stepId === s.id);
    if (!rows.length) continue;
    out.push(
      `### ${mdCell(s.id)}`,
      '',
      `${plural(rows.length, 'sample')}; last: ${mdCell(rows[rows.length - 1]!.line)}`,
      '',
    );
    for (const [key, fmt] of [
      ['lagBytes', fmtBytes],
      ['lagMs', fmtMs],
    ] as const) {
      const v = rows.map((p) => p.figures[key]).filter((x): x is number => typeof x === 'number');
      if (v.length)
        out.push(`- ${key}: ${v.length} samples, max ${fmt(Math.max(...v))}, last ${fmt(v[v.length - 1]!)}`);
    }
    out.push('');
  }
  return out;
}

function slotMaps(d: RunReportData): string[] {
  const out = ['## Slot maps', ''];
  const rows = (ms: RunReportData['slotMaps'][number]['before']) =>
    table(
      ['master', 'slots', 'ranges'],
      ms.map((m) => [
        mdCell(m.master),
        String(m.ranges.reduce((n, [a, b]) => n + b - a + 1, 0)),
        m.ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', '),
      ]),
    );
  for (const m of d.slotMaps) {
    out.push(
      `### ${mdCell(m.cluster)}`,
      '',
      `Before: ${plural(m.before.length, 'master')} with slots`,
      '',
      ...rows(m.before),
    );
    out.push(`After: ${plural(m.after.length, 'master')} with slots (${mdCell(m.afterSource)})`, '');
    if (m.afterStale)
      out.push(
        '**A step that can change the masters ran after this was seen: the cluster may look different now.**',
        '',
      );
    out.push(...rows(m.after));
  }
  return out;
}

function findingsAndCommands(d: RunReportData): string[] {
  const out = ['## Differences found', ''];
  if (!d.findings.length) out.push('None recorded.', '');
  else
    out.push(
      ...table(
        ['step', 'kind', 'key', 'source', 'target'],
        d.findings.map((f) => [mdCell(f.stepId), mdCell(f.kind), mdCell(f.key), mdCell(f.source), mdCell(f.target)]),
      ),
    );
  out.push('## Commands sent, per node', '');
  for (const n of d.commands) {
    out.push(
      `### ${mdCell(n.node)} (${plural(
        n.writes.reduce((k, w) => k + (w.count ?? 1), 0),
        'write',
      )})`,
      '',
    );
    if (n.writes.length)
      out.push(
        ...table(
          ['at', 'step', 'command', 'result'],
          n.writes.map((w) => [
            rel(d, w.at),
            mdCell(w.stepId ?? '-'),
            mdCell(w.command) +
              (w.last
                ? ` and ${(w.count ?? 1) - 1} more until ${rel(d, w.last.at)}, the last ${mdCell(w.last.command)}`
                : ''),
            w.ok ? 'ok' : mdCell(w.error ?? 'failed'),
          ]),
        ),
      );
    const reads = Object.entries(n.reads)
      .sort((a, b) => b[1] - a[1])
      .map(([c, k]) => `${mdCell(c)} x${k}`);
    out.push(`reads: ${reads.join(', ') || 'none'}`, '');
  }
  return out;
}

function nodeLogs(d: RunReportData): string[] {
  const out = ['## Node logs', ''];
  if (!d.nodeLogs.length) return [...out, 'No node log lines were recorded for this run.', ''];
  for (const s of d.steps) {
    const lines = d.nodeLogs.filter((l) => l.stepId === s.id);
    for (const node of [...new Set(lines.map((l) => l.node))]) {
      const mine = lines.filter((l) => l.node === node);
      out.push(`### ${mdCell(s.id)}: ${mdCell(node)} (${mdCell(mine[0]!.source)})`, '');
      out.push(
        ...table(
          ['at', 'line'],
          mine.map((l) => [l.at ? rel(d, l.at) : '-', mdCell(l.line)]),
        ),
      );
    }
  }
  return out;
}

export function renderRunMd(d: RunReportData): string {
  const out = [
    ...header(d),
    ...steps(d),
    ...figures(d),
    ...progress(d),
    ...slotMaps(d),
    ...findingsAndCommands(d),
    ...nodeLogs(d),
    `_redis-runbook report, made ${fmtTime(d.generatedAt)} UTC from the state database; +N is since the run started._`,
    '',
  ];
  return scrubText(out.join('\n'));
}
