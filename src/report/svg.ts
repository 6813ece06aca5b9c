import { el, html, visible } from './escape.js';
import { fmtMs } from './units.js';
import type { MasterSlots } from './slot-maps.js';

/**
 * The report's pictures as inline SVG strings: no script, no font, no
 * external reference, so the page renders offline and prints. Each drawing
 * has a fixed coordinate width and scales to its container; on a narrow
 * screen the container scrolls sideways rather than shrinking text to dust.
 */

export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];
const W = 960;
const LABEL = 170;

const text = (x: number, y: number, s: string, attrs = '') =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${html(visible(s))}</text>`;
const title = (s: string) => `<title>${html(visible(s))}</title>`;

/** Tick step for a span: 1, 2, 5 x 10^n ms, about 6 ticks. */
function tickStep(span: number): number {
  const raw = Math.max(span / 6, 1);
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
}

function timeAxis(x: (t: number) => number, t0: number, t1: number, y: number, h: number): string {
  const step = tickStep(t1 - t0);
  const out: string[] = [`<line x1="${x(t0)}" y1="${y}" x2="${x(t1)}" y2="${y}" class="axis"/>`];
  for (let t = 0; t0 + t <= t1 + 1e-6; t += step) {
    const px = x(t0 + t);
    out.push(`<line x1="${px}" y1="${y - h}" x2="${px}" y2="${y}" class="grid"/>`);
    out.push(text(px, y + 14, `+${fmtMs(t)}`, 'class="tick" text-anchor="middle"'));
  }
  return out.join('');
}

export interface GanttRow {
  id: string;
  status: string;
  /** Earlier attempts: from the first thing the step journaled to the start of its last attempt. */
  earlier?: [number, number];
  span?: [number, number];
  attempts: number;
  tooltip: string;
  /** Node log lines of the step: small ticks on its row. */
  logTicks: number[];
}

export interface GanttMarker {
  at: number;
  label: string;
  rowId: string | null;
}

const STATUS_CLASS: Record<string, string> = { done: 'ok', skipped: 'skip', failed: 'bad' };

export function gantt(rows: GanttRow[], markers: GanttMarker[], t0: number, t1: number): string {
  // A row: the step's bar, and under it a strip for its node log ticks.
  const rowH = 28;
  const top = 22;
  const height = top + rows.length * rowH + 30;
  const end = Math.max(t1, t0 + 1);
  const x = (t: number) => LABEL + ((Math.min(Math.max(t, t0), end) - t0) / (end - t0)) * (W - LABEL - 20);
  // The axis and its grid first: the bars are drawn over them.
  const out: string[] = [timeAxis(x, t0, end, top + rows.length * rowH + 4, rows.length * rowH + 4)];
  out.push(text(4, 14, 'operator', 'class="lbl"'));
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    out.push(`<g class="gantt-row" data-step="${html(r.id)}">`);
    out.push(text(4, y + 15, r.id, 'class="lbl"'));
    if (r.earlier) {
      const [a, b] = r.earlier;
      out.push(
        el(
          'rect',
          { class: 'attempt earlier', x: x(a), y: y + 5, width: Math.max(x(b) - x(a), 1.5), height: rowH - 15 },
          title(`${r.id}: earlier attempt(s), ${fmtMs(b - a)}`),
        ),
      );
    }
    if (r.span) {
      const [a, b] = r.span;
      out.push(
        el(
          'rect',
          {
            class: `attempt ${STATUS_CLASS[r.status] ?? 'run'}`,
            ...{ x: x(a), y: y + 3, width: Math.max(x(b) - x(a), 2), height: rowH - 11, rx: 2 },
          },
          title(
            `${r.id} (${r.status}${r.attempts > 1 ? `, attempt ${r.attempts}` : ''}), ${fmtMs(b - a)}: ${r.tooltip}`,
          ),
        ),
      );
    }
    for (const t of r.logTicks)
      out.push(`<line class="log-tick" x1="${x(t)}" y1="${y + rowH - 7}" x2="${x(t)}" y2="${y + rowH - 1}"/>`);
    out.push('</g>');
  });
  for (const m of markers) {
    const i = rows.findIndex((r) => r.id === m.rowId);
    const px = x(m.at);
    out.push(
      `<g class="marker${/ABORT|REFUSED/.test(m.label) ? ' bad' : ''}">` +
        `<path d="M${px - 4},4 L${px + 4},4 L${px},12 Z"/>` +
        (i >= 0 ? `<line x1="${px}" y1="12" x2="${px}" y2="${top + i * rowH + rowH}" class="marker-line"/>` : '') +
        title(`${m.label}`) +
        `</g>`,
    );
  }
  const size = { viewBox: `0 0 ${W} ${height}`, width: W, height };
  return el('svg', { class: 'gantt', ...size, role: 'img', 'aria-label': 'timeline of the steps' }, out.join(''));
}

/** A small line chart of one figure over time (e.g. sync lag). */
export function lineChart(
  points: Array<[number, number]>,
  t0: number,
  what: string,
  fmt: (v: number) => string,
): string {
  const w = 480;
  const h = 160;
  const pad = { l: 70, r: 12, t: 12, b: 28 };
  const ts = points.map((p) => p[0]);
  const a = Math.min(...ts);
  const b = Math.max(...ts, a + 1);
  const vmax = Math.max(...points.map((p) => p[1]), 1);
  const x = (t: number) => pad.l + ((t - a) / (b - a)) * (w - pad.l - pad.r);
  const y = (v: number) => h - pad.b - (v / vmax) * (h - pad.t - pad.b);
  const line = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    `<svg class="chart" data-series="${html(what)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img"` +
    ` aria-label="${html(what)} over time">` +
    `<line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" class="axis"/>` +
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${h - pad.b}" class="axis"/>` +
    text(pad.l - 4, y(vmax) + 4, fmt(vmax), 'class="tick" text-anchor="end"') +
    text(pad.l - 4, h - pad.b, fmt(0), 'class="tick" text-anchor="end"') +
    text(pad.l, h - 8, `+${fmtMs(a - t0)}`, 'class="tick"') +
    text(w - pad.r, h - 8, `+${fmtMs(b - t0)}`, 'class="tick" text-anchor="end"') +
    (points.length === 1
      ? `<circle cx="${x(points[0]![0])}" cy="${y(points[0]![1])}" r="3" class="series"/>`
      : `<polyline points="${line}" class="series" fill="none"/>`) +
    points
      .map(([t, v]) => el('circle', { cx: x(t), cy: y(v), r: 1.5, class: 'pt' }, title(`+${fmtMs(t - t0)}: ${fmt(v)}`)))
      .join('') +
    `</svg>`
  );
}

/** One row per master: its ranges of the 16384 slots, coloured by master (the same colour before and after). */
export function slotBar(
  masters: MasterSlots[],
  colour: (master: string) => string,
  cluster: string,
  when: string,
): string {
  // Narrower than the timeline: on a phone it is scaled to the screen's width rather than scrolled.
  const w = 640;
  const rowH = 22;
  const h = masters.length * rowH + 24;
  const x = (s: number) => 150 + (s / 16384) * (w - 150 - 20);
  const out: string[] = [];
  masters.forEach((m, i) => {
    const y = i * rowH;
    const count = m.ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
    out.push(`<g class="slot-row" data-master="${html(m.master)}">`);
    out.push(text(4, y + 15, m.master, 'class="lbl"'));
    out.push(`<rect x="${x(0)}" y="${y + 3}" width="${x(16384) - x(0)}" height="${rowH - 6}" class="slot-bg"/>`);
    for (const [a, b] of m.ranges)
      out.push(
        el(
          'rect',
          { x: x(a), y: y + 3, width: Math.max(x(b + 1) - x(a), 1), height: rowH - 6, fill: colour(m.master) },
          title(`${m.master}: ${a}-${b}`),
        ),
      );
    out.push(`${title(`${m.master}: ${count} slots`)}</g>`);
  });
  const axisY = masters.length * rowH + 4;
  for (const s of [0, 4096, 8192, 12288, 16383])
    out.push(text(x(s), axisY + 12, String(s), 'class="tick" text-anchor="middle"'));
  const attrs = {
    class: 'slot-map',
    'data-cluster': cluster,
    'data-when': when,
    viewBox: `0 0 ${w} ${h}`,
    width: w,
    height: h,
  };
  return el('svg', { ...attrs, role: 'img', 'aria-label': `slot map of ${cluster} ${when}` }, out.join(''));
}
