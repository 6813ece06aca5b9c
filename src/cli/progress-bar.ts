import type { ProgressFigures } from '../engine/step-contract.js';

/**
 * How a step's progress figures read to an operator: a bar with percentage, rate and ETA
 * when done/total are known, and the sync's and verify's own figures. Shared by the live
 * progress line of `run` and by `status`.
 */

const MB = 1048576;

/** An amount in the figures' unit: bytes in KB/MB/GB, keys and slots as counts. */
export function amount(n: number, unit: ProgressFigures['unit']): string {
  if (unit !== 'bytes') return `${Math.round(n)}${unit ? ` ${unit}` : ''}`;
  if (n >= 1024 * MB) return `${(n / (1024 * MB)).toFixed(1)} GB`;
  if (n >= MB) return `${(n / MB).toFixed(1)} MB`;
  return `${(n / 1024).toFixed(0)} kB`;
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * `[#######.......]  45%  12.0 MB/26.7 MB  3.1 MB/s  ETA 5s`, or undefined without done/total.
 * width 0: the same without the bar itself (for a log).
 */
export function barOf(f: ProgressFigures, width = 24): string | undefined {
  if (typeof f.done !== 'number' || typeof f.total !== 'number' || f.total <= 0) return undefined;
  const ratio = Math.min(1, Math.max(0, f.done / f.total));
  const filled = Math.round(ratio * width);
  const parts = [
    ...(width > 0 ? [`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`] : []),
    `${Math.floor(ratio * 100)}%`.padStart(width > 0 ? 4 : 0),
    `${amount(f.done, f.unit)}/${amount(f.total, f.unit)}`,
  ];
  if (typeof f.rate === 'number' && f.rate > 0) parts.push(`${amount(f.rate, f.unit)}/s`);
  if (typeof f.etaMs === 'number') parts.push(`ETA ${duration(f.etaMs)}`);
  return parts.join('  ');
}

/** The figures that are not the bar: phase, lag, throughput, differences. Empty when there are none. */
export function otherFigures(f: ProgressFigures): string {
  const parts: string[] = [];
  if (f.phase) parts.push(`phase ${f.phase}`);
  if (typeof f.lagBytes === 'number' || typeof f.lagMs === 'number')
    parts.push(`lag ${f.lagBytes ?? '?'} bytes${typeof f.lagMs === 'number' ? ` (${f.lagMs} ms)` : ''}`);
  if (typeof f.keys === 'number') parts.push(`${f.keys} keys`);
  if (typeof f.keysPerSec === 'number') parts.push(`${f.keysPerSec} keys/s`);
  if (typeof f.bytesPerSec === 'number') parts.push(`${amount(f.bytesPerSec, 'bytes')}/s`);
  if (typeof f.differences === 'number') parts.push(`${f.differences} differ`);
  return parts.join(', ');
}

/**
 * A line for a stream that is not a terminal: no carriage return, no escape sequence, no
 * run of padding (a log file keeps every byte; what clears a terminal line is garbage there).
 */
export function plainLine(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/[\r\x00-\x08\x0b-\x1f\x7f]/g, ' ')
    .replace(/ {2,}/g, ' ');
}
