/** Numbers as an operator reads them: durations, sizes, counts. Shared by the summaries and the report. */

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(ms)} ms`;
  if (a < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (a < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** An absolute time (ms since epoch) as UTC, to the millisecond. */
export function fmtTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 23) : '-';
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** A camelCase field name as words: promotionMs -> promotion ms -> "promotion". */
export function words(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/_/g, ' ')
    .toLowerCase();
}

/** A numeric field by its name's convention: *Ms a duration, *At a time, bytes/*Bytes a size. */
export function fmtField(key: string, v: number): string {
  if (/Ms$|^ms$/.test(key)) return fmtMs(v);
  if (/(At|Before)$/.test(key) && v > 1e12) return fmtTime(v);
  if (/bytes$/i.test(key)) return fmtBytes(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** The field's label without its unit suffix: promotionMs -> "promotion (ms)" reads worse than "promotion". */
export function label(key: string): string {
  return words(key.replace(/(?<=.)Ms$/, '').replace(/(?<=.)At$/, ' at'));
}
