import { appendFileSync } from 'node:fs';

/**
 * The reliability table's raw figures. A chaos or soak case wrapped in
 * `recorded` appends one JSON line per run to the file named by
 * RR_RELIABILITY_LOG (nothing is written when it is unset), whether the case
 * passed or threw; `scripts/reliability-table.mjs` turns the lines into the
 * published table. The figures are what the case measured, never constants.
 */
export interface CaseFigures {
  /** Acknowledged writes the case found missing afterwards (undefined: the case ran no writer). */
  ackedLost?: number;
  /** Differences the comparison found after the resume (verify engine and per-slot key counts). */
  differences: number;
}

export async function recorded(name: string, fn: () => Promise<CaseFigures>): Promise<void> {
  const started = Date.now();
  let figures: CaseFigures | undefined;
  let error: unknown;
  try {
    figures = await fn();
  } catch (err) {
    error = err;
  }
  const file = process.env.RR_RELIABILITY_LOG;
  if (file) {
    appendFileSync(file, `${JSON.stringify({
      case: name, passed: error === undefined, ms: Date.now() - started,
      ackedLost: figures?.ackedLost ?? null, differences: figures?.differences ?? null,
      at: new Date().toISOString(),
    })}\n`);
  }
  if (error !== undefined) throw error;
}
