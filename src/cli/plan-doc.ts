import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { usageError } from '../errors.js';
import type { StepEnv } from '../engine/step-contract.js';
import type { Topology } from '../redis/topology.js';
import { aofSizes, beforeOf, type ClusterBefore } from '../report/plan-before.js';

/**
 * The `plan` command's output formats and the Markdown file written beside a
 * saved plan (plan.json -> plan.md), for a change ticket or a pull request.
 */
export type PlanFormat = 'text' | 'json' | 'markdown';

/** The `plan` command's options, as commander hands them. */
export interface PlanOptions {
  inventory: string;
  param: string[];
  out?: string;
  json?: boolean;
  format?: string;
}

export function planFormat(o: { format?: string; json?: boolean }): PlanFormat {
  if (o.json && o.format && o.format !== 'json')
    throw usageError('E_USAGE', `--json and --format ${o.format} ask for two formats`, 'pass one of them');
  const f = o.json ? 'json' : (o.format ?? 'text');
  if (f !== 'text' && f !== 'json' && f !== 'markdown')
    throw usageError('E_USAGE', `--format ${f} is not a plan format`, 'use --format text, json or markdown');
  return f;
}

/** plan.json -> plan.md; any other name gets .md added. */
export function markdownPath(out: string): string {
  return out.endsWith('.json') ? `${out.slice(0, -'.json'.length)}.md` : `${out}.md`;
}

/** The clusters as the plan read them, with the AOF sizes (INFO persistence) of masters that have one. */
export async function clustersBefore(
  env: StepEnv,
  seen: Map<string, Topology>,
): Promise<Record<string, ClusterBefore>> {
  const out: Record<string, ClusterBefore> = {};
  for (const [name, t] of seen) out[name] = beforeOf(t, await aofSizes(env, t));
  return out;
}

export function writePlanMarkdown(path: string, text: string): void {
  try {
    writeFileSync(resolve(path), text, { mode: 0o600 });
  } catch (err) {
    throw usageError(
      'E_PLAN_WRITE',
      `cannot write the plan document to ${resolve(path)} ` +
        `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      'pass --out a file in a directory that exists and that you can write',
    );
  }
}
