import type { RunReportData } from './run-data.js';
import { el, html, htmlVisible } from './escape.js';
import { figureRows } from './figures.js';
import { gantt, lineChart, slotBar, PALETTE } from './svg.js';
import { fmtBytes, fmtMs, fmtTime, plural } from './units.js';
import { REPORT_CSS } from './run-css.js';
import { scrubText } from '../scrub.js';

/**
 * The run report as one self-contained HTML page: inline CSS and SVG, no
 * script, no font, no image, no link to anything (it is read offline,
 * attached to a ticket, printed). Every piece of text from the database is
 * escaped, with invisible characters shown (escape.ts); the page as a whole
 * passes the scrubber once more before it is written.
 */
const rel = (d: RunReportData, at: number | null) => (at ? `+${fmtMs(at - d.run.startedAt)}` : '-');
const span = (a: number | null, b: number | null) => (a && b ? fmtMs(b - a) : '-');

/**
 * A table; on a phone each row becomes a card (run-css.ts), its cells labelled by data-label,
 * and the `wide` column (the one with the long text) takes a line of its own.
 */
function table(head: string[], rows: string[][], cls = '', wide = head.length - 1): string {
  const td = (c: string, i: number) =>
    `<td data-label="${html(head[i] ?? '')}"${i === wide ? ' class="wide"' : ''}>${c}</td>`;
  return (
    `<div class="tw"><table class="cards${cls ? ` ${cls}` : ''}">` +
    `<thead><tr>${head.map((h) => `<th>${html(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map(td).join('')}</tr>`).join('')}</tbody></table></div>`
  );
}

function header(d: RunReportData): string {
  const r = d.run;
  const params = Object.entries(r.params)
    .map(([k, v]) => `<code>${htmlVisible(k)}=${htmlVisible(v)}</code>`)
    .join(' ');
  const clusters = d.clusters
    .map((c) => `${htmlVisible(c.name)}: ${plural(c.masters, 'master')}, ${plural(c.nodes, 'node')}`)
    .join('; ');
  const rows: Array<[string, string]> = [
    ['runbook', htmlVisible(r.runbook)],
    ['status', `<span class="st st-${html(r.status)}">${html(r.status)}</span>`],
    ['params', params || '-'],
    ['started', html(fmtTime(r.startedAt))],
    ['finished', html(fmtTime(r.finishedAt))],
    ['duration', html(fmtMs(r.finishedAt - r.startedAt))],
    ['clusters', clusters || '-'],
  ];
  if (r.error) rows.push(['error', `<span class="err">${htmlVisible(r.error)}</span>`]);
  return (
    `<header><h1>Run <span class="rid">${htmlVisible(r.id)}</span></h1>` +
    `<dl class="meta">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl></header>`
  );
}

function stepsTable(d: RunReportData): string {
  return table(
    ['#', 'step', 'kind', 'status', 'tries', 'started', 'took', 'what it did'],
    d.steps.map((s, i) => [
      String(i + 1),
      `<a href="#step-${html(s.id)}">${htmlVisible(s.id)}</a>`,
      html(s.kind),
      `<span class="st st-${html(s.status)}">${html(s.status)}</span>`,
      String(s.attempts),
      html(rel(d, s.startedAt)),
      html(span(s.startedAt, s.finishedAt)),
      htmlVisible(s.summary) + (s.error ? ` <span class="err">${htmlVisible(s.error)}</span>` : ''),
    ]),
    'steps',
  );
}

function timeline(d: RunReportData): string {
  const t0 = d.run.startedAt;
  const ends = d.steps.map((s) => s.finishedAt ?? 0);
  const t1 = Math.max(d.run.finishedAt, ...ends, ...d.markers.map((m) => m.at));
  const rows = d.steps.map((s) => ({
    id: s.id,
    status: s.status,
    attempts: s.attempts,
    tooltip: s.summary,
    earlier:
      s.attempts > 1 && s.firstSeenAt && s.startedAt && s.firstSeenAt < s.startedAt
        ? ([s.firstSeenAt, s.startedAt] as [number, number])
        : undefined,
    span: s.startedAt ? ([s.startedAt, s.finishedAt ?? t1] as [number, number]) : undefined,
    logTicks: d.nodeLogs.filter((l) => l.stepId === s.id && l.at).map((l) => l.at!),
  }));
  const markers = d.markers.map((m) => ({ at: m.at, rowId: m.stepId, label: `${m.what} ${m.detail}`.trim() }));
  const legend =
    '<p class="legend"><span class="k ok"></span>done <span class="k bad"></span>failed <span class="k run"></span>' +
    'unfinished <span class="k earlier"></span>earlier attempts <span class="k mk"></span>operator decision ' +
    '<span class="k lt"></span>node log line</p>';
  const decisions = d.markers.length
    ? table(
        ['at', 'step', 'decision', 'detail'],
        d.markers.map((m) => [
          html(rel(d, m.at)),
          htmlVisible(m.stepId ?? '-'),
          htmlVisible(m.what),
          htmlVisible(m.detail),
        ]),
      )
    : '<p class="none">No operator decision was recorded.</p>';
  return `<div class="sw">${gantt(rows, markers, t0, t1)}</div>${legend}<h3>Operator decisions</h3>${decisions}`;
}

const figureRow = (r: { label: string; value: string }) =>
  `<tr><th>${htmlVisible(r.label)}</th><td>${htmlVisible(r.value)}</td></tr>`;

function figures(d: RunReportData): string {
  return d.steps
    .map((s) => {
      const rows = s.output && typeof s.output === 'object' ? figureRows(s.output) : [];
      const body = rows.length
        ? `<div class="tw"><table class="fig">${rows.map(figureRow).join('')}</table></div>`
        : '<p class="none">No output recorded.</p>';
      const head = `<h3>${htmlVisible(s.id)} <small>${html(s.kind)}</small></h3>`;
      const summary = s.summary ? `<p class="summary">${htmlVisible(s.summary)}</p>` : '';
      return el('section', { class: 'step-figures', id: `step-${s.id}`, 'data-step': s.id }, head + summary + body);
    })
    .join('');
}

const LAG_SERIES: Array<[string, (v: number) => string]> = [
  ['lagBytes', fmtBytes],
  ['lagMs', fmtMs],
];

function progress(d: RunReportData): string {
  if (!d.progress.length) return '<p class="none">No progress samples were recorded for this run.</p>';
  const out: string[] = [];
  for (const s of d.steps) {
    const rows = d.progress.filter((p) => p.stepId === s.id);
    if (!rows.length) continue;
    out.push(
      `<h3>${htmlVisible(s.id)}</h3>` +
        `<p>${plural(rows.length, 'sample')}; last: <code>${htmlVisible(rows[rows.length - 1]!.line)}</code></p>`,
    );
    for (const [key, fmt] of LAG_SERIES) {
      const pts = rows
        .filter((p) => typeof p.figures[key] === 'number' && Number.isFinite(p.figures[key]))
        .map((p) => [p.at, p.figures[key] as number] as [number, number]);
      if (pts.length)
        out.push(
          `<figure class="lag"><figcaption>sync lag (${key === 'lagBytes' ? 'bytes' : 'time'})</figcaption>` +
            `${lineChart(pts, d.run.startedAt, key, fmt)}</figure>`,
        );
    }
  }
  return out.join('');
}

const swatch = (c: string) => `<span class="sw-c" style="background:${html(c)}"></span>`;
const rangeText = (m: { ranges: Array<[number, number]> }) =>
  m.ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ');
const STALE =
  ' <span class="err">A step that can change the masters ran after this was seen: ' +
  'the cluster may look different now.</span>';

function slotMaps(d: RunReportData): string {
  const masters = [...new Set(d.slotMaps.flatMap((m) => [...m.before, ...m.after].map((x) => x.master)))];
  const colour = (m: string) => PALETTE[masters.indexOf(m) % PALETTE.length]!;
  const ranges = (ms: RunReportData['slotMaps'][number]['before']) =>
    el(
      'ul',
      { class: 'ranges' },
      ms.map((m) => `<li>${swatch(colour(m.master))}${htmlVisible(m.master)}: ${rangeText(m)}</li>`).join(''),
    );
  return d.slotMaps
    .map(
      (m) =>
        `<section class="slots" data-cluster="${html(m.cluster)}"><h3>${htmlVisible(m.cluster)}</h3>` +
        `<h4>before: ${plural(m.before.length, 'master')} with slots</h4>` +
        `<div class="sw fit">${slotBar(m.before, colour, m.cluster, 'before')}</div>${ranges(m.before)}` +
        `<h4>after: ${plural(m.after.length, 'master')} with slots</h4>` +
        `<p class="src">${htmlVisible(m.afterSource)}${m.afterStale ? STALE : ''}</p>` +
        `<div class="sw fit">${slotBar(m.after, colour, m.cluster, 'after')}</div>${ranges(m.after)}</section>`,
    )
    .join('');
}

function findings(d: RunReportData): string {
  const verified = d.steps.some((s) => s.kind === 'verify-data' || s.kind === 'verify-copy');
  if (!d.findings.length)
    return verified
      ? '<p class="none">Verification found no differences.</p>'
      : '<p class="none">No step of this run compares data.</p>';
  return table(
    ['step', 'kind', 'key', 'source', 'target'],
    d.findings.map((f) => [
      htmlVisible(f.stepId),
      htmlVisible(f.kind),
      `<code>${htmlVisible(f.key)}</code>`,
      htmlVisible(f.source),
      htmlVisible(f.target),
    ]),
    'findings',
  );
}

function commands(d: RunReportData): string {
  if (!d.commands.length) return '<p class="none">No command was sent.</p>';
  return d.commands
    .map((n) => {
      const reads = Object.entries(n.reads)
        .sort((a, b) => b[1] - a[1])
        .map(([c, k]) => `${htmlVisible(c)} &times;${k}`)
        .join(', ');
      const writes = n.writes.length
        ? table(
            ['at', 'step', 'command', 'result'],
            n.writes.map((w) => [
              html(rel(d, w.at)),
              htmlVisible(w.stepId ?? '-'),
              `<code>${htmlVisible(w.command)}</code>` +
                (w.last
                  ? ` <span class="more">and ${(w.count ?? 1) - 1} more like it until ${html(rel(d, w.last.at))}, ` +
                    `the last <code>${htmlVisible(w.last.command)}</code></span>`
                  : ''),
              w.ok ? 'ok' : `<span class="err">${htmlVisible(w.error ?? 'failed')}</span>`,
            ]),
            '',
            2,
          )
        : '<p class="none">No write.</p>';
      const sent = n.writes.reduce((k, w) => k + (w.count ?? 1), 0);
      const head = `<h3>${htmlVisible(n.node)} <small>${plural(sent, 'write')}</small></h3>`;
      const folded = `<p class="reads">reads: ${reads || 'none'}</p>`;
      return el('section', { class: 'node-cmds', 'data-node': n.node }, head + writes + folded);
    })
    .join('');
}

function nodeLogs(d: RunReportData): string {
  if (!d.nodeLogs.length) return '<p class="none">No node log lines were recorded for this run.</p>';
  const out: string[] = [];
  for (const s of d.steps) {
    const lines = d.nodeLogs.filter((l) => l.stepId === s.id);
    if (!lines.length) continue;
    out.push(`<h3>${htmlVisible(s.id)}</h3>`);
    for (const node of [...new Set(lines.map((l) => l.node))]) {
      const mine = lines.filter((l) => l.node === node);
      out.push(
        `<div class="log" data-step="${html(s.id)}" data-node="${html(node)}">` +
          `<h4>${htmlVisible(node)} <small>${htmlVisible(mine[0]!.source)}</small></h4><pre>` +
          mine
            .map(
              (l) =>
                `<span class="t">${html(l.at ? rel(d, l.at).padEnd(9) : '        -')}</span> ${htmlVisible(l.line)}`,
            )
            .join('\n') +
          '</pre></div>',
      );
    }
  }
  return out.join('');
}

const section = (id: string, title: string, body: string) => `<section id="${id}"><h2>${title}</h2>${body}</section>`;

export function renderRunHtml(d: RunReportData): string {
  const body = [
    header(d),
    section('steps', 'Steps', stepsTable(d)),
    section('timeline', 'Timeline', timeline(d)),
    section('figures', 'What each step measured', figures(d)),
    section('progress', 'Progress and sync lag', progress(d)),
    section('slot-maps', 'Slot maps', slotMaps(d)),
    section('findings', 'Differences found', findings(d)),
    section('commands', 'Commands sent, per node', commands(d)),
    section('node-logs', 'Node logs', nodeLogs(d)),
    `<footer>redis-runbook report, made ${html(fmtTime(d.generatedAt))} UTC from the state database. ` +
      'Times are UTC; +N is since the run started.</footer>',
  ].join('\n');
  const page =
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>run ${html(d.run.id)} - ${html(d.run.runbook)} - ${html(d.run.status)}</title>` +
    `<style>${REPORT_CSS}</style></head><body>${body}</body></html>\n`;
  return scrubText(page);
}
