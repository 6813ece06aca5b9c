import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { usageError } from '../errors.js';
import { kindOf, paramProblem, type StepKind, type StepKinds } from './step-contract.js';

export interface ParamSpec {
  help: string;
  default?: string;
  required: boolean;
  choices?: string[];
  /** `cluster`: the value names an inventory cluster the run acts on (and locks). */
  type: 'string' | 'cluster' | 'endpoint';
}

export interface RunbookStep {
  id: string;
  kind: string;
  with: Record<string, string>;
  /** `param == value` or `param != value`: the step is in the plan only when it holds. */
  when?: { param: string; op: '==' | '!='; value: string };
}

export interface Runbook {
  name: string;
  summary: string;
  description: string;
  params: Record<string, ParamSpec>;
  steps: RunbookStep[];
  /** false for read-only runbooks (verify-data): they do not take the one-run-per-cluster lock. */
  lock: boolean;
  file: string;
  /** Hash of the definition, stored with each run: a resume refuses when it changed underneath. */
  hash: string;
  /** The step kinds it was checked against, which plans of it use. */
  kinds: StepKinds;
}

/** The shipped runbooks live in runbooks/ at the package root (two levels above dist/src/engine). */
export function runbooksDir(): string {
  if (process.env.REDIS_RUNBOOK_RUNBOOKS) return process.env.REDIS_RUNBOOK_RUNBOOKS;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'runbooks')) && existsSync(join(dir, 'package.json'))) return join(dir, 'runbooks');
    dir = dirname(dir);
  }
  throw new Error('cannot find the runbooks/ directory');
}

export function listRunbooks(kinds: StepKinds): Runbook[] {
  const dir = runbooksDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => loadRunbookFile(join(dir, f), kinds));
}

export function loadRunbook(name: string, kinds: StepKinds): Runbook {
  const file = join(runbooksDir(), `${name}.yaml`);
  if (!/^[a-z0-9-]+$/.test(name) || !existsSync(file)) {
    const known = listRunbooks(kinds).map((r) => r.name);
    throw usageError(
      'E_RUNBOOK_UNKNOWN',
      `no runbook named \`${name}\``,
      `use one of: ${known.join(', ')} (see \`redis-runbook list\`)`,
    );
  }
  return loadRunbookFile(file, kinds);
}

export function loadRunbookFile(file: string, kinds: StepKinds): Runbook {
  const text = readFileSync(file, 'utf8');
  const bad = (path: string, problem: string): never => {
    throw usageError('E_RUNBOOK_INVALID', `${file}: ${path}: ${problem}`, 'fix the runbook definition');
  };
  const doc = parseYaml(text) as Record<string, any>;
  if (!doc || typeof doc !== 'object') bad('(top level)', 'expected a mapping');
  const name = basename(file, '.yaml');
  if (doc.name !== name) bad('name', `expected \`${name}\` (the file name), got \`${String(doc.name)}\``);
  const params: Record<string, ParamSpec> = {};
  for (const [k, v] of Object.entries((doc.params ?? {}) as Record<string, any>)) {
    if (!v || typeof v !== 'object') bad(`params.${k}`, 'expected a mapping');
    params[k] = {
      help: String(v.help ?? ''),
      default: v.default === undefined ? undefined : String(v.default),
      required: v.required === true,
      choices: Array.isArray(v.choices) ? v.choices.map(String) : undefined,
      type: v.type === 'cluster' || v.type === 'endpoint' ? v.type : 'string',
    };
  }
  if (!Array.isArray(doc.steps) || doc.steps.length === 0) bad('steps', 'expected a non-empty list');
  const ids = new Set<string>();
  const steps: RunbookStep[] = (doc.steps as any[]).map((s, i) => {
    if (!s || typeof s.id !== 'string' || !/^[a-z0-9-]+$/.test(s.id))
      bad(`steps[${i}].id`, 'expected a lowercase id (letters, digits, -)');
    if (ids.has(s.id)) bad(`steps[${i}].id`, `duplicate id \`${s.id}\``);
    ids.add(s.id);
    const kind = kindOf(kinds, String(s.kind), `${file}: steps[${i}].kind`);
    const w: Record<string, string> = {};
    for (const [k, v] of Object.entries((s.with ?? {}) as Record<string, unknown>)) w[k] = String(v);
    checkWith(
      kind,
      w,
      `steps[${i}] (${s.id})`,
      [...ids].filter((x) => x !== s.id),
      bad,
    );
    let when: RunbookStep['when'];
    if (s.when !== undefined) {
      const m = /^\s*([a-zA-Z0-9_-]+)\s*(==|!=)\s*(\S+)\s*$/.exec(String(s.when));
      if (!m) bad(`steps[${i}].when`, `\`${String(s.when)}\` is not \`param == value\` or \`param != value\``);
      if (!(m![1]! in ((doc.params ?? {}) as object)))
        bad(`steps[${i}].when`, `\`${m![1]}\` is not a parameter of this runbook`);
      when = { param: m![1]!, op: m![2] as '==' | '!=', value: m![3]! };
    }
    return { id: s.id, kind: String(s.kind), with: w, when };
  });
  return {
    name,
    summary: String(doc.summary ?? ''),
    description: String(doc.description ?? ''),
    params,
    steps,
    lock: doc.lock !== false,
    file,
    hash: createHash('sha256').update(text).digest('hex').slice(0, 16),
    kinds,
  };
}

/** Keys `with:` may hold besides the kind's own parameters (read by the engine, not the kind). */
const ENGINE_KEYS: Record<string, string> = {
  ifNode: "the step is in the plan only for this shape of the node parameter's node",
};

/**
 * A step's `with:` against its kind's declared parameters: no unknown key
 * (a misspelt `baselineStep` would otherwise drop a verification), literal
 * numbers and booleans well formed, and every step reference (its value or
 * the kind's default) naming a step that comes earlier in the runbook.
 */
function checkWith(
  kind: StepKind,
  w: Record<string, string>,
  where: string,
  earlier: string[],
  bad: (path: string, problem: string) => never,
): void {
  for (const [k, v] of Object.entries(w)) {
    if (k in ENGINE_KEYS) continue;
    const spec = kind.params[k];
    if (!spec)
      bad(
        `${where}.with.${k}`,
        `\`${k}\` is not a parameter of step kind \`${kind.kind}\` (it takes: ${[...Object.keys(kind.params), ...Object.keys(ENGINE_KEYS)].join(', ')})`,
      );
    if (v.includes('{{')) continue; // a runbook parameter: checked when the plan is made
    const problem = paramProblem(spec!, v);
    if (problem) bad(`${where}.with.${k}`, `\`${v}\` is not ${problem} (${spec!.help})`);
  }
  for (const [k, spec] of Object.entries(kind.params)) {
    if (spec.type !== 'step') continue;
    const ref = w[k] ?? spec.default;
    if (ref === undefined) continue;
    if (!earlier.includes(ref))
      bad(
        `${where}.with.${k}`,
        `\`${ref}\`${w[k] === undefined ? ' (the default)' : ''} is not a step before this one (${spec.help}); earlier steps: ${earlier.join(', ') || '(none)'}`,
      );
  }
}

/**
 * Parse `k=v` strings against the runbook's parameters: unknown names,
 * missing required ones and values outside the choices are usage errors.
 */
export function resolveParams(rb: Runbook, given: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const g of given) {
    const i = g.indexOf('=');
    if (i <= 0) throw usageError('E_PARAM', `--param \`${g}\` is not k=v`, 'write --param name=value');
    const k = g.slice(0, i);
    if (!rb.params[k])
      throw usageError(
        'E_PARAM',
        `runbook ${rb.name} has no parameter \`${k}\``,
        `its parameters are: ${Object.keys(rb.params).join(', ')}`,
      );
    out[k] = g.slice(i + 1);
  }
  for (const [k, spec] of Object.entries(rb.params)) {
    if (out[k] === undefined && spec.default !== undefined) out[k] = spec.default;
    if (out[k] === undefined && spec.required)
      throw usageError('E_PARAM', `runbook ${rb.name} needs --param ${k}=...`, spec.help);
    if (out[k] !== undefined && spec.choices && !spec.choices.includes(out[k]!)) {
      throw usageError('E_PARAM', `${k}=${out[k]} is not allowed`, `use one of: ${spec.choices.join(', ')}`);
    }
  }
  return out;
}

/**
 * The inventory clusters a run acts on: `cluster` params (their topology is
 * discovered for the plan) and, with `endpoints`, also `endpoint` params
 * (a cluster or a standalone server, read only through its own step).
 */
export function clustersOf(rb: Runbook, params: Record<string, string>, endpoints = false): string[] {
  return Object.entries(rb.params)
    .filter(([, s]) => s.type === 'cluster' || (endpoints && s.type === 'endpoint'))
    .map(([k]) => params[k]!)
    .filter(Boolean);
}

/** Substitute `{{name}}` with parameter values. */
export function substitute(template: string, params: Record<string, string>): string {
  return template.replace(/\{\{\s*([a-z0-9_-]+)\s*\}\}/gi, (_, k: string) => params[k] ?? '');
}

/** Is a step with this `when` part of a run with these parameters? */
export function stepIncluded(step: RunbookStep, params: Record<string, string>): boolean {
  if (!step.when) return true;
  const equal = (params[step.when.param] ?? '') === step.when.value;
  return step.when.op === '==' ? equal : !equal;
}

/** One knob of a step as `list --json` shows it: where its value comes from. */
export interface StepKnob {
  help: string;
  type: string;
  value?: string;
  from: 'with' | 'runbook parameter' | 'default' | 'unset';
  default?: string;
}

/** Every parameter of every step of a runbook, with what sets it (the runbook's `with:`, a runbook parameter of the same name, or the kind's default). */
export function stepKnobs(
  rb: Runbook,
): Array<{ id: string; kind: string; when?: string; knobs: Record<string, StepKnob> }> {
  return rb.steps.map((s) => {
    const kind = kindOf(rb.kinds, s.kind, rb.file);
    const knobs: Record<string, StepKnob> = {};
    for (const [name, spec] of Object.entries(kind.params)) {
      const base = { help: spec.help, type: spec.type ?? 'string', default: spec.default };
      if (s.with[name] !== undefined) knobs[name] = { ...base, value: s.with[name], from: 'with' };
      else if (name in rb.params) knobs[name] = { ...base, value: rb.params[name]!.default, from: 'runbook parameter' };
      else knobs[name] = { ...base, value: spec.default, from: spec.default !== undefined ? 'default' : 'unset' };
    }
    return { id: s.id, kind: s.kind, when: s.when ? `${s.when.param} ${s.when.op} ${s.when.value}` : undefined, knobs };
  });
}
