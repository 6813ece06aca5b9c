/**
 * Errors are values with a code, the fact, and the remedy. The CLI maps the
 * kind to an exit code; nothing prints a stack trace unless --debug.
 */
export type ErrorKind =
  /** bad usage or input: exit 2 */
  | 'usage'
  /** a precondition refused (cluster state, lock, drift, auth): exit 3 */
  | 'precondition'
  /** a runbook step failed or the run stopped: exit 1 */
  | 'failed';

export class RunbookError extends Error {
  constructor(
    readonly code: string,
    readonly kind: ErrorKind,
    message: string,
    readonly remedy?: string,
  ) {
    super(message);
    this.name = 'RunbookError';
  }

  /** One line for a terminal: `E_CODE: fact; remedy`. */
  describe(): string {
    return `${this.code}: ${this.message}${this.remedy ? `\n  fix: ${this.remedy}` : ''}`;
  }
}

export const usageError = (code: string, message: string, remedy?: string) =>
  new RunbookError(code, 'usage', message, remedy);
export const preconditionError = (code: string, message: string, remedy?: string) =>
  new RunbookError(code, 'precondition', message, remedy);
export const failedError = (code: string, message: string, remedy?: string) =>
  new RunbookError(code, 'failed', message, remedy);

export const EXIT = { ok: 0, failed: 1, usage: 2, precondition: 3 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof RunbookError) return EXIT[err.kind];
  return EXIT.failed;
}

/** Message of any thrown value, without a stack. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
