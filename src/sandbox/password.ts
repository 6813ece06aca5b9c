import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { registerSecret, scrubText } from '../scrub.js';

/**
 * The sandbox password. It exists in the password file (mode 0600) and in
 * each node's redis.conf (also 0600) because Redis cannot read requirepass
 * from a separate file. Nothing else may contain it: not messages, not the
 * inventory, not the command line of redis-server.
 */
export function createPasswordFile(path: string): string {
  const password = randomBytes(24).toString('hex');
  writeFileSync(path, password, { mode: 0o600 });
  // writeFileSync's mode is filtered by the umask and ignored if the file exists.
  chmodSync(path, 0o600);
  registerSecret(password);
  return password;
}

export function readPasswordFile(path: string): string | undefined {
  try {
    const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    if (value === '') return undefined;
    registerSecret(value);
    return value;
  } catch {
    return undefined;
  }
}

/** For text we did not write (redis-server stderr, log tails) before it goes into a message. */
export function redact(text: string, password: string | undefined): string {
  return scrubText(text, [password]);
}
