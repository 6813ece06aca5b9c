/**
 * A Redis (or Valkey) log file's lines, as the node-log collector keeps them:
 * read the timestamp of each line, keep those of a time window, bound how
 * many are kept. Pure: no file, no clock (see node-logs.ts for the reading).
 *
 * The line format (server.c, serverLogRaw) is `PID:ROLE DD Mon YYYY HH:MM:SS.mmm L message`, ROLE one of
 * M S C X, L one of `. - * #`; Redis 6.2, 7.x and Valkey 8.0 write it alike. Valkey 8.1's
 * log-timestamp-format iso8601 and milliseconds are read too. The timestamp is the node's host's
 * local time, without a zone: the caller says which offset that host has.
 */

/** A kept line: `at` in ms since the epoch, or null when the line has no timestamp of its own. */
export interface LogRow {
  at: number | null;
  line: string;
}

/** The host's local time: an offset in minutes east of UTC, or 'local' for this process's own zone. */
export type HostZone = number | 'local';

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

const LEGACY = /^\d+:[MSCX] (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) [.\-*#] /;
const ISO = /^\d+:[MSCX] (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})) [.\-*#] /;
const EPOCH_MS = /^\d+:[MSCX] (\d{13}) [.\-*#] /;

/** The time a log line was written (ms), or null for a line without one (a crash report's body, the logo). */
export function lineTime(line: string, zone: HostZone): number | null {
  const m = LEGACY.exec(line);
  if (m) {
    const month = MONTHS[m[2]!];
    if (month === undefined) return null;
    const [d, y, h, mi, s, ms] = [m[1], m[3], m[4], m[5], m[6], m[7]].map(Number) as number[];
    if (zone === 'local') return new Date(y!, month, d, h, mi, s, ms).getTime();
    return Date.UTC(y!, month, d, h, mi, s, ms) - zone * 60_000;
  }
  const iso = ISO.exec(line);
  if (iso) {
    const t = Date.parse(iso[1]!);
    return Number.isNaN(t) ? null : t;
  }
  const e = EPOCH_MS.exec(line);
  return e ? Number(e[1]) : null;
}

/** `date +%z` output (`+0100`, `-0530`) as minutes east of UTC; undefined when it is not one. */
export function parseZoneOffset(text: string): number | undefined {
  const m = /^([+-])(\d{2})(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/**
 * The lines of `text` (the tail of a log file) written within [from, to].
 * A line without a timestamp belongs to the line before it (a crash report,
 * a multi-line message): kept when that one is. `partialFirst`: the text
 * starts somewhere inside the file, so its first line may be cut and is dropped.
 */
export function linesInWindow(text: string, zone: HostZone, from: number, to: number, partialFirst: boolean): LogRow[] {
  const lines = text.split('\n');
  if (partialFirst) lines.shift();
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const out: LogRow[] = [];
  let inside = false;
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    const at = lineTime(line, zone);
    if (at !== null) inside = at >= from && at <= to;
    if (inside && line !== '') out.push({ at, line });
  }
  return out;
}

/** Longest line kept (characters): a line longer than this is cut, and says so. */
export const MAX_LINE_CHARS = 2048;

/**
 * At most `maxLines` rows and about `maxBytes` of text: the first and the
 * last lines are kept (how it started, how it ended), half the budget each,
 * and one row in between says how many were left out.
 */
export function boundRows(rows: LogRow[], maxLines: number, maxBytes: number): LogRow[] {
  const cut = rows.map((r) =>
    r.line.length > MAX_LINE_CHARS
      ? { ...r, line: `${r.line.slice(0, MAX_LINE_CHARS)} [... ${r.line.length - MAX_LINE_CHARS} characters cut]` }
      : r,
  );
  const size = (r: LogRow) => Buffer.byteLength(r.line) + 1;
  const total = cut.reduce((n, r) => n + size(r), 0);
  if (cut.length <= maxLines && total <= maxBytes) return cut;
  const lineBudget = Math.max(2, maxLines - 1);
  const take = (list: LogRow[]): LogRow[] => {
    const kept: LogRow[] = [];
    let bytes = 0;
    for (const r of list) {
      if (kept.length >= Math.floor(lineBudget / 2) || bytes + size(r) > maxBytes / 2) break;
      kept.push(r);
      bytes += size(r);
    }
    return kept;
  };
  const head = take(cut);
  const tail = take(cut.slice(head.length).reverse()).reverse();
  const left = cut.slice(head.length, cut.length - tail.length);
  const leftBytes = left.reduce((n, r) => n + size(r), 0);
  return [...head, { at: null, line: note(`${left.length} lines (${leftBytes} bytes) left out here`) }, ...tail];
}

/** A line the collector writes itself (not the node's): marked so nobody takes it for the server's words. */
export const note = (text: string): string => `[redis-runbook] ${text}`;
