import { randomBytes } from 'node:crypto';
import type { Topology } from '../redis/topology.js';
import { usageError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { kindOf, paramProblem, type StepKind } from './step-contract.js';
import type { Condition, PlanHosts, PlannedCommand } from './step-contract.js';
import { substitute, stepIncluded, type Runbook } from './runbook.js';

/** The part of a topology a plan depends on, kept so drift can be described in words. */
export interface NodeStructure {
  id: string;
  address: string;
  role: 'master' | 'replica';
  masterId?: string;
  slots: Array<readonly [number, number]>;
}

export interface StepInstance {
  /** Stable id: resume points are keyed by it, never by position or title. */
  id: string;
  kind: string;
  title: string;
  /** The parameters the kind was handed (those it declares that were given); the rest take the kind's defaults. */
  params?: Record<string, string>;
  args: unknown;
  commands: PlannedCommand[];
  destructive?: string;
}

/** A runbook x inventory x live topology, resolved. Pure data; JSON round-trips. */
export interface Plan {
  version: 1;
  /** Random id: a saved plan is single-use, a second `run --plan` of it is refused. */
  id: string;
  /** The redis-runbook version that made it: `run --plan` refuses a plan another version made. */
  toolVersion?: string;
  runbook: string;
  runbookHash: string;
  /**
   * The runbook takes the clusters' lock and may write (false: read-only, as
   * verify-data). Carried so that a resume needs nothing but the plan;
   * absent in plans recorded by earlier versions.
   */
  lock?: boolean;
  params: Record<string, string>;
  inventoryFile: string;
  clusters: Record<string, { fingerprint: string; takenAt: string; structure: NodeStructure[] }>;
  createdAt: string;
  steps: StepInstance[];
  /** Steps of the runbook left out of this plan, and why (`when`, `ifNode`). */
  omitted?: Array<{ id: string; reason: string }>;
  /** A saved plan: SHA-256 of the inventory file it was made from (plan-seal.ts). */
  inventoryDigest?: string;
  /** A saved plan: HMAC of everything above with the state dir's plan key, and which key. */
  seal?: { keyId: string; mac: string };
}

/**
 * Build a plan (pure): every step's arguments resolved against the topologies.
 * With `hosts`, host commands are shown exactly as they will run.
 */
export function buildPlan(
  rb: Runbook,
  params: Record<string, string>,
  inventoryFile: string,
  topologies: Record<string, Topology>,
  now = new Date(),
  hosts?: PlanHosts,
): Plan {
  const topology = (name: string): Topology => {
    const t = topologies[name];
    if (!t)
      throw usageError(
        'E_PARAM',
        `cluster \`${name}\` is not in the inventory ${inventoryFile}`,
        `use one of: ${Object.keys(topologies).join(', ') || '(none loaded)'}`,
      );
    return t;
  };
  const omitted: Array<{ id: string; reason: string }> = [];
  const steps = rb.steps.flatMap((s): StepInstance[] => {
    if (!stepIncluded(s, params)) {
      omitted.push({
        id: s.id,
        reason: `only when ${s.when!.param} ${s.when!.op} ${s.when!.value} (${s.when!.param}=${params[s.when!.param] ?? ''})`,
      });
      return [];
    }
    const kind = kindOf(rb.kinds, s.kind, rb.file);
    const ifNode = s.with.ifNode === undefined ? undefined : substitute(s.with.ifNode, params);
    if (ifNode) {
      const where = {
        cluster: stepValue('cluster', s.with, params) ?? '',
        node: stepValue('node', s.with, params) ?? '',
      };
      if (!nodeMatches(ifNode, where, topology)) {
        omitted.push({
          id: s.id,
          reason: `only for a node that is a ${ifNode.replaceAll('-', ' ')}; ${where.node} is not`,
        });
        return [];
      }
    }
    const given = declaredArgs(kind, s.id, s.with, params);
    const args = kind.resolve(given, topology);
    return [
      {
        id: s.id,
        kind: s.kind,
        title: kind.title(args),
        params: { ...given },
        args,
        commands: kind.commands(args, hosts),
        destructive: kind.destructive?.(args),
      },
    ];
  });
  const clusters: Plan['clusters'] = {};
  for (const [name, t] of Object.entries(topologies)) {
    clusters[name] = {
      fingerprint: t.fingerprint,
      takenAt: t.takenAt,
      structure: t.nodes.map((n) => ({
        id: n.id,
        address: n.address,
        role: n.role,
        masterId: n.masterId,
        slots: n.slots,
      })),
    };
  }
  // Normalised through JSON: the plan in memory is exactly the plan a file would hold.
  const plan: Plan = {
    version: 1,
    id: randomBytes(6).toString('hex'),
    toolVersion: TOOL_VERSION,
    runbook: rb.name,
    runbookHash: rb.hash,
    lock: rb.lock,
    params,
    inventoryFile,
    clusters,
    createdAt: now.toISOString(),
    steps,
    omitted,
  };
  return JSON.parse(JSON.stringify(plan)) as Plan;
}

/**
 * `ifNode` in a step's `with`: the step belongs in the plan only for this
 * shape of the `node` parameter's node, as the live topology shows it
 * (e.g. demoting by failover only a master that has a replica).
 */
function nodeMatches(
  ifNode: string,
  raw: { cluster: string; node: string },
  topology: (c: string) => Topology,
): boolean {
  const t = topology(raw.cluster);
  const n = t.nodes.find((x) => x.address === raw.node || x.id === raw.node);
  if (!n) return true; // the step's own resolve reports the unknown node
  const hasReplica = t.nodes.some((r) => r.role === 'replica' && r.masterId === n.id);
  const owns = n.role === 'master' && n.slots.length > 0;
  switch (ifNode) {
    case 'master-with-replica':
      return owns && hasReplica;
    case 'master-without-replica':
      return owns && !hasReplica;
    case 'replica':
      return n.role === 'replica';
    default:
      throw usageError(
        'E_RUNBOOK_INVALID',
        `ifNode: \`${ifNode}\` is not a node shape`,
        'use master-with-replica, master-without-replica or replica',
      );
  }
}

export interface PlanReport {
  plan: Plan;
  /** Per step id: each precondition evaluated read-only against the live cluster. */
  preconditions: Record<string, Condition[]>;
}

export function planRefused(r: PlanReport): boolean {
  return Object.values(r.preconditions).some((cs) => cs.some((c) => !c.ok));
}

/**
 * What a step kind is handed: each parameter it declares, from the step's
 * `with:` (runbook parameters substituted), else the runbook parameter of
 * the same name; nothing else. Numbers and booleans are checked here, once
 * for every kind (E_PARAM naming the step and the value). Reading a name the
 * kind did not declare throws: a kind cannot depend on a parameter that
 * `list --json` and the runbook check do not know about.
 */
/** A step's value of a parameter: its `with:` (runbook parameters substituted), else the runbook parameter. */
function stepValue(name: string, w: Record<string, string>, params: Record<string, string>): string | undefined {
  return w[name] !== undefined ? substitute(w[name]!, params) : params[name];
}

export function declaredArgs(
  kind: StepKind,
  stepId: string,
  w: Record<string, string>,
  params: Record<string, string>,
): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const [name, spec] of Object.entries(kind.params)) {
    const v = stepValue(name, w, params);
    if (v === undefined) continue;
    // An empty number is not given (the kind's default); an empty boolean is false.
    if (spec.type === 'number' && v === '') continue;
    const problem = v === '' ? undefined : paramProblem(spec, v);
    if (problem) {
      const fix =
        spec.type === 'bool'
          ? `pass ${name}=true or ${name}=false`
          : `pass ${name}=${spec.default ?? spec.min ?? 0}, or another ${problem}`;
      throw usageError('E_PARAM', `${name}=${v} is not ${problem} (step ${stepId}: ${spec.help})`, fix);
    }
    // yes/no as verify-data always took them; kinds compare with 'true'.
    raw[name] = spec.type === 'bool' && v === 'yes' ? 'true' : spec.type === 'bool' && v === 'no' ? 'false' : v;
  }
  return new Proxy(raw, {
    get(target, key, receiver) {
      if (
        typeof key === 'string' &&
        !(key in kind.params) &&
        !(key in Object.prototype) &&
        key !== 'toJSON' &&
        key !== 'then'
      ) {
        throw new Error(`step kind ${kind.kind} reads \`${key}\`, which it does not declare in its params`);
      }
      return Reflect.get(target, key, receiver);
    },
  });
}
