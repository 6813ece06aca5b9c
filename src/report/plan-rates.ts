import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The rates earlier runs in this state dir achieved, read from their
 * finished steps (started_at, finished_at, output_json): what an estimate
 * should trust before any default. Read-only.
 */
export interface MeasuredRates {
  /** Keys per second moved by slot-move steps (their per-slot overhead included). */
  slotKeysPerSec?: { value: number; steps: number };
  /** Bytes per second of verified file copies. */
  copyBytesPerSec?: { value: number; steps: number };
  /** Median duration of finished steps, by kind. */
  kindMs: Record<string, { ms: number; steps: number }>;
}

interface Row {
  kind: string;
  started_at: number;
  finished_at: number;
  output_json: string | null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function measuredRates(db: Database.Database | undefined): MeasuredRates {
  const out: MeasuredRates = { kindMs: {} };
  if (!db) return out;
  let rows: Row[];
  try {
    rows = db
      .prepare(
        `SELECT kind, started_at, finished_at, output_json FROM steps
         WHERE status = 'done' AND started_at IS NOT NULL AND finished_at > started_at
         ORDER BY finished_at DESC LIMIT 2000`,
      )
      .all() as Row[];
  } catch {
    return out; // no state yet: defaults
  }
  const byKind = new Map<string, number[]>();
  let keys = 0;
  let keyMs = 0;
  let keySteps = 0;
  let bytes = 0;
  let byteMs = 0;
  let byteSteps = 0;
  for (const r of rows) {
    const ms = r.finished_at - r.started_at;
    byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), ms]);
    const o = parse(r.output_json);
    if ((r.kind === 'move-slot-plan' || r.kind === 'move-slots') && Number(o?.keys) > 0 && Number(o?.ms) > 0) {
      keys += Number(o!.keys);
      keyMs += Number(o!.ms);
      keySteps++;
    }
    if (r.kind === 'copy-shard-files' && Array.isArray(o?.copies)) {
      const copied = (o!.copies as Array<{ bytes?: number; copied?: boolean }>).filter((c) => c.copied);
      const b = copied.reduce((s, c) => s + Number(c.bytes ?? 0), 0);
      if (b > 0) {
        bytes += b;
        byteMs += ms;
        byteSteps++;
      }
    }
  }
  for (const [kind, ms] of byKind) out.kindMs[kind] = { ms: median(ms), steps: ms.length };
  if (keySteps) out.slotKeysPerSec = { value: (keys * 1000) / keyMs, steps: keySteps };
  if (byteSteps) out.copyBytesPerSec = { value: (bytes * 1000) / byteMs, steps: byteSteps };
  return out;
}

function parse(s: string | null): Record<string, unknown> | undefined {
  try {
    const v = s ? (JSON.parse(s) as unknown) : undefined;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The rates measured in a state dir, opening its database read-only (none yet: no rates, nothing created). */
export function measuredRatesIn(stateDir: string): MeasuredRates {
  const file = join(stateDir, 'state.db');
  if (!existsSync(file)) return { kindMs: {} };
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    return measuredRates(db);
  } catch {
    return { kindMs: {} };
  } finally {
    db?.close();
  }
}
