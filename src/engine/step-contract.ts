import { usageError } from '../errors.js';
import type { ClusterPool } from '../redis/connect.js';
import type { Topology } from '../redis/topology.js';
import type { Inventory } from '../inventory/types.js';
import type { FileOps, HostHandle } from '../hosts/handles.js';
import type { RunResources } from './run-resources.js';

/**
 * The contract between the engine and step kinds: what a kind declares and
 * implements, and what the engine hands it. The engine knows kinds only
 * through this file and the registry it is given (StepKinds); the kinds
 * themselves live in src/steps/.
 */

/** A command a step will send, as the plan shows it. */
export interface PlannedCommand {
  target: string;
  command: string;
  /** When it is sent, if not always (e.g. "only if not yet promoted"). */
  when?: string;
}

/** A precondition or postcondition, evaluated against the live cluster. */
export interface Condition {
  name: string;
  ok: boolean;
  reason: string;
}

/** What steps reach the world through; built by the caller, audited and access-checked. */
export interface StepEnv {
  inventory: Inventory;
  pool(cluster: string): ClusterPool;
  /** A fresh read of a cluster's topology. */
  topology(cluster: string): Promise<Topology>;
  /** The inventory host a node runs on (service control, commands), or undefined when none lists it. */
  host(address: string): HostHandle | undefined;
  /** Files on the nodes' hosts: digests and verified copies. */
  files: FileOps;
  /**
   * Wait until every reachable node of a cluster reports the same structure,
   * no node is flagged failing and every node says cluster_state:ok
   * (bounded; E_NO_AGREEMENT when it does not happen). `tolerate`: nodes
   * allowed to be down or failing.
   */
  settle(
    cluster: string,
    o: { tolerate?: string[]; signal?: AbortSignal; progress?(line: string): void },
  ): Promise<{ ms: number; polls: number; nodes: number }>;
  /**
   * Wait briefly until the reachable nodes of a cluster agree with each other
   * (a change still spreading by gossip), then return whether they do. A check
   * that reads every node's view calls this first; `topology` does it itself.
   */
  consensus(cluster: string): Promise<boolean>;
}

/** A cluster a step changes, and the nodes that may be down or failing once it is done. */
export interface SettleSpec {
  cluster: string;
  tolerate?: string[];
}

/** What a plan may read to show host commands exactly: the inventory's host of a node. */
export interface PlanHosts {
  host(address: string): Pick<HostHandle, 'name' | 'config' | 'service' | 'shown'> | undefined;
}

/** What a step recorded it was about to do (`StepRunContext.intent`). */
export interface Intent {
  at: number;
  name: string;
  detail: Record<string, unknown>;
}

/**
 * What a long step has done so far, as numbers (and short strings): persisted as JSON with each
 * progress sample, read by `status` and served as metrics. Every field is optional; the runner
 * computes rate and etaMs from done/total over a window when the step gives none.
 */
export interface ProgressFigures {
  /** What done/total count. */
  unit?: 'bytes' | 'slots' | 'keys';
  done?: number;
  total?: number;
  /** units per second */
  rate?: number;
  etaMs?: number;
  /** e.g. 'full-sync', 'incremental', 'copy', 'round 2' */
  phase?: string;
  lagBytes?: number;
  lagMs?: number;
  keysPerSec?: number;
  bytesPerSec?: number;
  /** differences found so far (verify) */
  differences?: number;
  keys?: number;
  [more: string]: number | string | undefined;
}

/** State a run keeps across its steps and resumes (SQLite); never secrets. */
export interface RunState {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
}

export interface StepRunContext<A> {
  /** The run this step belongs to ('plan' while a plan is evaluated). */
  runId: string;
  state: RunState;
  /**
   * What the run keeps open in this process between its steps (a background
   * sync): owned by the run, detached by the runner when the run ends here.
   */
  resources: RunResources;
  stepId: string;
  args: A;
  env: StepEnv;
  /** Outputs of earlier steps of the same run, by step id. */
  outputs: Record<string, unknown>;
  /**
   * Set when an earlier attempt of this step may have acted: its `run` started
   * and never recorded a result (the process died), or it failed after
   * recording intents. `intents` are what all its earlier attempts recorded
   * with `intent`, oldest first. The step must
   * find out from the cluster what already happened before acting again.
   */
  inDoubt?: { startedAt: number; intents: Intent[] };
  /**
   * Record, durably and before acting, what the step is about to do that must
   * not simply be done again (a failover, a start command, a setting whose old
   * value matters): its next attempt finds it in `inDoubt.intents` by name.
   * The detail is journaled as given (secrets scrubbed): no passwords in it.
   */
  intent(name: string, detail?: Record<string, string | number | boolean>): void;
  log(line: string): void;
  /** Test hook: dies with SIGKILL here when REDIS_RUNBOOK_FAILPOINT names this point. */
  failpoint(name: string): void;
  /** Store what the step found (replacing earlier findings of this step): listed by `show`. */
  saveFindings(rows: Array<{ key: string; kind: string; source: string; target: string }>): void;
  /**
   * A transient progress line (rewritten in place on a terminal), with the figures behind it when
   * the step knows them: sampled into the journal's progress table (for `status`, metrics, the report).
   */
  progress(line: string, figures?: ProgressFigures): void;
  /** Set when the operator asked to stop (Ctrl-C); long waits should end early and safely. */
  signal: AbortSignal;
  /**
   * Call right before destroying data that only the live state shows (keys a
   * target gained since the plan): returns when the operator consented to
   * this step's destruction (--allow-destructive, or a guided confirmation
   * of the step shown as destructive), else throws E_DESTRUCTIVE and the step
   * stops before it acts.
   */
  mayDestroy(reason: string): void;
  /**
   * True when preconditions are evaluated for the whole plan before anything
   * ran (plan, and run before its first step): a step whose preconditions are
   * produced by the steps before it (a fail-back after the failover) defers them.
   */
  planning?: boolean;
}

/**
 * A parameter a step kind reads. Its value comes from the step's `with:` in
 * the runbook, else from the runbook parameter of the same name, else the
 * kind's default; a kind is handed only the parameters it declares, and a
 * runbook naming any other in `with:` is refused when it loads.
 */
export interface KindParam {
  help: string;
  /**
   * `number` and `bool` literals in `with:` are checked when the runbook
   * loads. `step` names an earlier step of the runbook whose output this one
   * reads: a name that is not one is refused at load, and an output missing
   * at run time fails the step's verification instead of dropping a check.
   */
  type?: 'string' | 'number' | 'bool' | 'step';
  /** Shown by `list --json`; what the kind uses when no value is given. */
  default?: string;
  /** `number`: the range a value must be in (min defaults to 0). */
  min?: number;
  max?: number;
}

/**
 * One step kind: one file in src/steps/. `resolve` is pure (plan time, from
 * the topology); `check`, `run` and `verify` talk to the cluster. `run` must
 * converge: look at the real state first and do only what is missing, because
 * a resume re-enters a step whose run was in flight.
 */
export interface StepKind<A = any> {
  kind: string;
  summary: string;
  /** Every parameter `resolve` reads (reading any other throws). */
  params: Readonly<Record<string, KindParam>>;
  resolve(raw: Record<string, string>, topology: (cluster: string) => Topology): A;
  title(args: A): string;
  /**
   * The commands as the plan shows them. With `hosts` (the inventory's hosts),
   * a host command is shown exactly as it will run (secrets redacted).
   */
  commands(args: A, hosts?: PlanHosts): PlannedCommand[];
  /**
   * Every name this step passes to ctx.failpoint, in the order its run reaches
   * them; a function of the args when a name carries a node's address. Crash
   * tests kill the runner at each (failpointsOf), and a name not declared here
   * throws while they run.
   */
  failpoints?: readonly string[] | ((args: A) => readonly string[]);
  /** Why this step is destructive, or undefined when it is not. */
  destructive?(args: A): string | undefined;
  /**
   * Why the step would destroy data, read from the live state right before it
   * acts (the plan's answer can be stale: a target that was empty when the
   * plan was made may hold keys by the time the step runs). When present it
   * decides, instead of `destructive`, whether the step needs consent.
   */
  liveDestructive?(ctx: StepRunContext<A>): Promise<string | undefined>;
  /**
   * The clusters whose topology this step changes (slot owners, roles,
   * members, restarted nodes). The runner ends the step only once every node
   * of each agrees on the new state (StepEnv.settle): a step that changed
   * one node's view is not done while another node still sees the old one.
   */
  settles?(args: A): SettleSpec[];
  /**
   * The nodes whose own logs tell what this step did (failure detection, the
   * election and its votes, a shutdown): the runner keeps their log lines of
   * the step's time window with the run (engine/node-logs.ts). No `nodes`:
   * every node of the cluster as the plan recorded it.
   */
  logNodes?(args: A): { cluster: string; nodes?: string[] };
  check(ctx: StepRunContext<A>): Promise<Condition[]>;
  run(ctx: StepRunContext<A>): Promise<unknown>;
  verify(ctx: StepRunContext<A>): Promise<Condition[]>;
}

/** The step kinds a runbook may name, by kind name: built by the caller (src/steps/registry.ts) and handed to the engine. */
export type StepKinds = ReadonlyMap<string, StepKind>;

/** The kind a step names, or E_RUNBOOK_INVALID listing the kinds there are. */
export function kindOf(kinds: StepKinds, kind: string, where: string): StepKind {
  const k = kinds.get(kind);
  if (!k)
    throw usageError(
      'E_RUNBOOK_INVALID',
      `${where}: unknown step kind \`${kind}\``,
      `use one of: ${[...kinds.keys()].join(', ')}`,
    );
  return k;
}

/**
 * What a non-empty value of a kind's parameter fails to be ("a number between
 * 1 and 60000", "true or false"), or undefined when it is well formed. One
 * rule for the runbook check at load and the plan's arguments.
 */
export function paramProblem(spec: KindParam, v: string): string | undefined {
  if (spec.type === 'number') {
    const n = Number(v);
    const min = spec.min ?? 0;
    const range = spec.max !== undefined ? `between ${min} and ${spec.max}` : `at least ${min}`;
    const ok = v !== '' && Number.isFinite(n) && n >= min && (spec.max === undefined || n <= spec.max);
    return ok ? undefined : `a number ${range}`;
  }
  if (spec.type === 'bool') return ['true', 'false', 'yes', 'no'].includes(v) ? undefined : 'true or false';
  return undefined;
}
