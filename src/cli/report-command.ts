import { writeFileSync } from 'node:fs';
import { usageError } from '../errors.js';
import { loadInventory } from '../inventory/load.js';
import { loadRunData } from '../report/run-data.js';
import { renderRunHtml } from '../report/run-html.js';
import { renderRunMd } from '../report/run-md.js';
import { Session } from './session.js';

/**
 * `report RUN --html FILE --md FILE`: the run as a page a person files
 * (src/report/). Reads the state database only; the clusters need not exist
 * any more.
 */
export function reportCommand(runId: string, o: { html?: string; md?: string; stateDir?: string }): void {
  if (!o.html && !o.md)
    throw usageError('E_USAGE', 'no report file given', `pass --html FILE and/or --md FILE, e.g. --html ${runId}.html`);
  const s = Session.from({ stateDir: o.stateDir });
  try {
    const run = s.store.getRun(runId);
    if (!run)
      throw usageError('E_RUN_UNKNOWN', `no run ${runId} in ${s.stateDir}`, 'list runs with `redis-runbook runs`');
    // What the database holds is scrubbed already; loading the run's inventory registers its
    // secrets so that the report is scrubbed once more with them. Without it (moved, its
    // secrets unset here) the stored, scrubbed text is all there is.
    try {
      loadInventory(run.inventoryFile);
    } catch {
      // Not needed to make the report.
    }
    const data = loadRunData(s.store, runId);
    for (const [file, render] of [
      [o.html, renderRunHtml],
      [o.md, renderRunMd],
    ] as const) {
      if (!file) continue;
      try {
        writeFileSync(file, render(data));
      } catch (err) {
        throw usageError(
          'E_USAGE',
          `cannot write the report to ${file} (${(err as Error).message})`,
          'pass a file in a directory that exists and you may write',
        );
      }
      console.log(`report of run ${runId} written to ${file}`);
    }
  } finally {
    void s.close();
  }
}
