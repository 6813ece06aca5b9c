// A node:test reporter that writes each failure, and each diagnostic that reports an error, as one
// JSON line to the file named by RR_FAILURES_FILE. run-tests.mjs reads it back to name the failing
// tests at the end of its summary, where a CI log shows only its tail.
//
// Why not the built-in TAP reporter to a file: with --test-force-exit the runner exits before a
// file stream has flushed, and the lines lost are the last ones: the failure of a file whose
// process exited non-zero after its tests passed (a promise rejected after its test ended, say).
// appendFileSync is on disk before the next event is read.
import { appendFileSync } from 'node:fs';

// The last lines each test file wrote to stderr, kept for a file that fails as a whole (its process
// crashed or exited non-zero): what it printed last is usually why.
const STDERR_LINES = 12;

export default async function* failureReporter(source) {
  const out = process.env.RR_FAILURES_FILE;
  const stderr = new Map();
  for await (const event of source) {
    if (!out) continue;
    const { type, data } = event;
    if (type === 'test:stderr') {
      const lines = stderr.get(data.file) ?? [];
      lines.push(
        ...String(data.message)
          .split('\n')
          .filter((l) => l.trim()),
      );
      stderr.set(data.file, lines.slice(-STDERR_LINES));
    } else if (type === 'test:fail') {
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
          // A file's own entry (nesting 0, named by its path): its process's last words.
          stderr: data.nesting === 0 && data.name === data.file ? stderr.get(data.file) : undefined,
        }) + '\n',
      );
    } else if (type === 'test:diagnostic' && /^(Error|Warning)\b/.test(data.message)) {
      appendFileSync(out, JSON.stringify({ kind: 'diagnostic', message: data.message }) + '\n');
    }
  }
}
