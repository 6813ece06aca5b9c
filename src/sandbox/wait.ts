import { failedError, messageOf } from '../errors.js';

export interface WaitOptions {
  /** What is awaited, for the timeout message, e.g. `source: all nodes see each other`. */
  what: string;
  code: string;
  timeoutMs: number;
  intervalMs?: number;
  remedy?: string;
}

/**
 * Poll until the probe reports nothing missing. The probe returns undefined
 * when done, or a short description of what is still missing, which the
 * timeout error repeats so the user sees *why* it never converged.
 * A probe that throws counts as "not yet" (nodes refuse connections while starting).
 */
export async function waitUntil(o: WaitOptions, probe: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const interval = o.intervalMs ?? 100;
  let missing = 'not checked yet';
  for (;;) {
    try {
      const r = await probe();
      if (r === undefined) return;
      missing = r;
    } catch (err) {
      missing = messageOf(err);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw failedError(
        o.code,
        `${o.what}: not reached within ${(o.timeoutMs / 1000).toFixed(0)} s (last seen: ${missing})`,
        o.remedy,
      );
    }
    await sleep(Math.min(interval, left));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
