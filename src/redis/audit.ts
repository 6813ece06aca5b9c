import { scrubText } from '../scrub.js';

/** One command sent to one node or host, as the state database records it. */
export interface AuditEvent {
  at: number;
  target: string;
  command: string;
  args: string[];
  durationMs: number;
  ok: boolean;
  error?: string;
  stepId?: string;
}

export interface AuditSink {
  /** A read, recorded after its reply. */
  record(event: AuditEvent): void;
  /**
   * A command that may change state is journaled *before* it is sent, then
   * completed: after a crash, a step in doubt can tell "never sent" from
   * "sent, outcome unknown" by reading the journal.
   */
  intent(event: AuditEvent): number | undefined;
  complete(id: number, outcome: Pick<AuditEvent, 'ok' | 'durationMs' | 'error'>): void;
}

// Arguments that carry a secret, by command: their values are replaced before
// anything is stored or printed (Terraform 27577 leaked values into plans).
const REDACTED = '***';

export function redactArgs(command: string, args: readonly (string | number | Buffer)[]): string[] {
  const c = command.toUpperCase();
  const out = args.map((a) => (Buffer.isBuffer(a) ? `<${a.length} bytes>` : String(a)));
  if (c === 'AUTH' || c === 'HELLO') return out.map((a, i) => (c === 'AUTH' || i > 0 ? REDACTED : a));
  if (c === 'CONFIG' && (out[0] ?? '').toUpperCase() === 'SET') {
    return out.map((a, i) => (i >= 2 && /pass|auth/i.test(out[i - 1] ?? '') ? REDACTED : a));
  }
  if (c === 'MIGRATE') {
    // MIGRATE ... AUTH password | AUTH2 username password
    const res = [...out];
    for (let i = 0; i < res.length; i++) {
      const w = res[i]!.toUpperCase();
      if (w === 'AUTH' && i + 1 < res.length) res[i + 1] = REDACTED;
      if (w === 'AUTH2' && i + 2 < res.length) res[i + 2] = REDACTED;
    }
    return res;
  }
  if (c === 'ACL' && (out[0] ?? '').toUpperCase() === 'SETUSER') {
    return out.map((a, i) => (i >= 2 && /^[>#<!]/.test(a) ? REDACTED : a));
  }
  return out;
}

/** Remove the known secrets (and these) from free text: the one scrubber, src/scrub.ts. */
export function scrub(text: string, secrets: readonly string[]): string {
  return scrubText(text, secrets);
}

/**
 * A shell command line as it may be stored and printed: values after the
 * usual password flags (`redis-cli -a X`, `--pass X`, `REDISCLI_AUTH=X`,
 * `requirepass X`) are replaced, then any known secret.
 */
export function redactCommandLine(line: string, secrets: readonly string[]): string {
  const out = line
    .replace(/(\s-a\s+)(\S+)/g, `$1${REDACTED}`)
    .replace(/(--(?:pass|password|askpass)[=\s]+)(\S+)/g, `$1${REDACTED}`)
    .replace(/(REDISCLI_AUTH=)(\S+)/g, `$1${REDACTED}`)
    .replace(/((?:requirepass|masterauth)\s+)(\S+)/gi, `$1${REDACTED}`);
  return scrub(out, secrets);
}
