import { readFileSync } from 'node:fs';
import { usageError } from '../errors.js';
import type { SecretRef } from './types.js';

/** Resolve a secret reference at the moment of use. The value is never stored or printed. */
export function resolveSecret(ref: SecretRef, where: string): string {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === '') {
      throw usageError('E_SECRET_MISSING', `${where}: environment variable ${ref.env} is not set`, `export ${ref.env}=... before running, or use { file: PATH }`);
    }
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw usageError('E_SECRET_MISSING', `${where}: cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'create the file (mode 600) or fix the path');
  }
}

/** How a secret is shown anywhere: its reference, never its value. */
export function describeSecret(ref: SecretRef | undefined): string {
  if (!ref) return 'none';
  return 'env' in ref ? `env:${ref.env}` : `file:${ref.file}`;
}
