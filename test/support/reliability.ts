import { appendFileSync } from 'node:fs';
import { test as nodeTest, type TestContext, type TestOptions } from 'node:test';

/**
 * The reliability table's raw figures. A chaos case is declared with this
 * module's `test` (same shape as node:test's); each run of it appends one
 * JSON line to the file named by RR_RELIABILITY_LOG (nothing is written when
 * it is unset), passed or not, with the figures the case measured through
 * `figures`. `scripts/reliability-table.mjs` turns the lines into the
 * published table. Figures are what a case measured, never constants.
 */
export interface CaseFigures {
  /** Acknowledged writes found missing afterwards (absent: the case ran no recording writer). */
  ackedLost?: number;
  /** Differences the final comparison found (verify engine and per-slot key counts). */
  differences?: number;
}

let current: { label?: string; figures: CaseFigures } | undefined;

/** Name the running case for the table and add what it measured (call before asserting on it). */
export function figures(label: string, f: CaseFigures): void {
  if (!current) return;
  current.label = label;
  Object.assign(current.figures, f);
}

type Body = (t: TestContext) => unknown;

/** node:test's `test`, recorded: the row is the label given to `figures`, else the title up to its first ':' or ';'. */
export function test(title: string, a: Body | TestOptions, b?: Body): void {
  const [options, body]: [TestOptions, Body] = typeof a === 'function' ? [{}, a] : [a, b!];
  nodeTest(title, options, async (t) => {
    current = { figures: {} };
    // node:test fails the running case on an unhandled rejection, and its
    // report of one looks like any other failure: say which it was, and that
    // it was this test process (its writers and checkers), not the CLI's.
    const unhandled = (reason: unknown) =>
      console.log(
        `# unhandled rejection in the test process during "${title}": ${(reason as Error)?.stack ?? String(reason)}`,
      );
    process.on('unhandledRejection', unhandled);
    const started = Date.now();
    let passed = false;
    try {
      await body(t);
      passed = true;
    } finally {
      process.off('unhandledRejection', unhandled);
      const file = process.env.RR_RELIABILITY_LOG;
      const c = current;
      current = undefined;
      if (file) {
        appendFileSync(
          file,
          `${JSON.stringify({
            case: c.label ?? title.split(/[:;]/)[0]!.trim(),
            passed,
            ms: Date.now() - started,
            ackedLost: c.figures.ackedLost ?? null,
            differences: c.figures.differences ?? null,
            at: new Date().toISOString(),
          })}\n`,
        );
      }
    }
  });
}
