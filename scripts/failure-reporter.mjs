// A node:test reporter that writes each failure, and each diagnostic that reports an error, as one
// JSON line to the file named by RR_FAILURES_FILE. run-tests.mjs reads it back to name the failing
// tests at the end of its summary, where a CI log shows only its tail.
//
// Why not the built-in TAP reporter to a file: with --test-force-exit the runner exits before a
// file stream has flushed, and the lines lost are the last ones: the failure of a file whose
// process exited non-zero after its tests passed (a promise rejected after its test ended, say).
// appendFileSync is on disk before the next event is read.
import { appendFileSync } from 'node:fs';

export default async function* failureReporter(source) {
  const out = process.env.RR_FAILURES_FILE;
  for await (const event of source) {
    if (!out) continue;
    const { type, data } = event;
    if (type === 'test:fail') {
      const error = data.details?.error;
      appendFileSync(
        out,
        JSON.stringify({
          kind: 'fail',
          name: data.name,
          file: data.file,
          line: data.line,
          todo: data.todo !== undefined && data.todo !== false,
          failureType: error?.failureType,
          // A test's own assertion is the cause; "test failed" alone says only that the file's process failed.
          message: String(error?.cause?.message ?? error?.cause ?? error?.message ?? ''),
          exitCode: error?.exitCode,
          signal: error?.signal,
        }) + '\n',
      );
    } else if (type === 'test:diagnostic' && /^(Error|Warning)\b/.test(data.message)) {
      appendFileSync(out, JSON.stringify({ kind: 'diagnostic', message: data.message }) + '\n');
    }
  }
}
