import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** --state-dir, else $REDIS_RUNBOOK_HOME, else ~/.local/state/redis-runbook. */
export function stateDirFrom(flag: string | undefined): string {
  if (flag) return resolve(flag);
  if (process.env.REDIS_RUNBOOK_HOME) return resolve(process.env.REDIS_RUNBOOK_HOME);
  return join(homedir(), '.local', 'state', 'redis-runbook');
}
