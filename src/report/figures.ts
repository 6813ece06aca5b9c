import { fmtField, label } from './units.js';

/**
 * A step's output as rows a person reads: "promotion: 3.8 s", "writes lost:
 * 0", one row per figure, nested objects flattened with their path, a list
 * of records (shards, copies) as one row each. The report shows these in
 * place of the JSON; the JSON stays in `show --json`.
 */
export interface FigureRow {
  label: string;
  value: string;
}

const MAX_ROWS = 60;
const MAX_LIST = 20;

function scalar(key: string, v: unknown): string | undefined {
  if (typeof v === 'number') return fmtField(key, v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  if (v === null) return '-';
  return undefined;
}

/** A record in a list (a shard, a copy) as "ranges 0-5460, master 127.0.0.1:7000, keys 961". */
function record(o: Record<string, unknown>): string {
  return Object.entries(o)
    .map(([k, v]) => {
      const s = scalar(k, v);
      if (s !== undefined) return `${label(k)} ${s}`;
      if (v && typeof v === 'object' && 'address' in v)
        return `${label(k)} ${String((v as { address: unknown }).address)}`;
      if (Array.isArray(v)) return `${label(k)} ${v.length} item(s)`;
      return `${label(k)} ${record(v as Record<string, unknown>)}`;
    })
    .join(', ');
}

export function figureRows(output: unknown): FigureRow[] {
  const rows: FigureRow[] = [];
  const walk = (v: unknown, path: string[], key: string) => {
    if (rows.length >= MAX_ROWS) return;
    const name = path.map(label).join(' / ');
    const s = scalar(key, v);
    if (s !== undefined) return void rows.push({ label: name, value: s });
    if (Array.isArray(v)) {
      if (v.length === 0) return void rows.push({ label: name, value: 'none' });
      if (v.every((x) => scalar('', x) !== undefined))
        return void rows.push({ label: name, value: v.map((x) => scalar(key, x)).join(', ') });
      v.slice(0, MAX_LIST).forEach((x, i) =>
        rows.push({
          label: `${name} ${i + 1}`,
          value: x && typeof x === 'object' ? record(x as Record<string, unknown>) : String(x),
        }),
      );
      if (v.length > MAX_LIST) rows.push({ label: name, value: `... ${v.length - MAX_LIST} more (show --json)` });
      return;
    }
    if (v && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0 && path.length) return void rows.push({ label: name, value: 'none' });
      for (const [k, x] of entries) walk(x, [...path, k], k);
    }
  };
  walk(output, [], '');
  return rows;
}
