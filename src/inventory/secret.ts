import { readFileSync } from 'node:fs';
import { usageError } from '../errors.js';
import { MIN_SECRET_LENGTH, registerSecret } from '../scrub.js';
import type { SecretRef } from './types.js';

/**
 * Resolve a secret reference at the moment of use. The value is never stored
 * or printed: it is registered with the scrubber, which takes it out of
 * everything the state database keeps and the terminal shows.
 */
export function resolveSecret(ref: SecretRef, where: string): string {
  let value: string;
  if ('env' in ref) {
    const v = process.env[ref.env];
    if (v === undefined || v === '') {
      throw usageError(
        'E_SECRET_MISSING',
        `${where}: env ${ref.env} is not set`,
        `export ${ref.env}=... before running, or use { file: PATH }`,
      );
    }
    value = v;
  } else {
    try {
      value = readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw usageError(
        'E_SECRET_MISSING',
        `${where}: cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        'create the file (mode 600) or fix the path',
      );
    }
    if (value === '')
      throw usageError(
        'E_SECRET_MISSING',
        `${where}: secret file ${ref.file} is empty`,
        'write the password into the file (mode 600)',
      );
  }
  // A one- or two-character secret cannot be scrubbed from output without
  // scrubbing every such letter or digit (and a password that short is guessed at once).
  if (value.length < MIN_SECRET_LENGTH) {
    throw usageError(
      'E_SECRET_TOO_SHORT',
      `${where} (${describeSecret(ref)}): the secret has ${value.length} character(s); at least ${MIN_SECRET_LENGTH} are needed to keep it out of messages and the state database`,
      'give the cluster a longer password (Redis accepts any length; use a long random one)',
    );
  }
  registerSecret(value);
  return value;
}

/**
 * Resolve and register every secret the inventory references, so that the
 * sinks can scrub them even from output that comes before the cluster is
 * first contacted. One that cannot be resolved now is skipped: it is reported,
 * naming its reference, where it is used.
 */
export function registerSecrets(clusters: Record<string, { name: string; auth?: { password?: SecretRef } }>): void {
  for (const c of Object.values(clusters)) {
    if (!c.auth?.password) continue;
    try {
      resolveSecret(c.auth.password, `clusters.${c.name}.auth.password`);
    } catch {
      // reported at use
    }
  }
}

/** How a secret is shown anywhere: its reference, never its value. */
export function describeSecret(ref: SecretRef | undefined): string {
  if (!ref) return 'none';
  return 'env' in ref ? `env:${ref.env}` : `file:${ref.file}`;
}
