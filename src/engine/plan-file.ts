import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { usageError } from '../errors.js';
import type { Plan } from './plan.js';

/**
 * A plan saved for review (`plan --out`) and executed later (`run --plan`):
 * written with mode 0600, read back with a first check of its shape. Whether
 * it may run (its seal, version, inventory, drift) is lifecycle.ts's
 * acceptSavedPlan.
 */

export function readPlanFile(path: string): Plan {
  let plan: Plan;
  try {
    plan = JSON.parse(readFileSync(resolve(path), 'utf8')) as Plan;
  } catch (err) {
    throw usageError(
      'E_PLAN_UNREADABLE',
      `cannot read plan ${path}: ${(err as Error).message}`,
      'pass a file written by `redis-runbook plan ... --out FILE`',
    );
  }
  if (plan.version !== 1 || !Array.isArray(plan.steps) || !plan.id)
    throw usageError('E_PLAN_INVALID', `${path} is not a redis-runbook plan`, 'pass a file written by `plan --out`');
  return plan;
}

export function writePlanFile(path: string, plan: Plan): void {
  try {
    writeFileSync(resolve(path), JSON.stringify(plan, null, 2) + '\n', { mode: 0o600 });
  } catch (err) {
    throw usageError(
      'E_PLAN_WRITE',
      `cannot write the plan to ${resolve(path)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      'pass --out a file in a directory that exists and that you can write',
    );
  }
}
