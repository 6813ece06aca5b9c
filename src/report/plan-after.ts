import type { Plan, StepInstance } from '../engine/plan.js';
import { rangesToSlots, toRanges, type SlotRange } from '../redis/slots.js';
import type { ClusterBefore, NodeBefore } from './plan-before.js';

/**
 * What the clusters will look like once a plan has run, predicted from the
 * plan alone (no I/O): each step's effect applied in order, by step kind, to
 * a model of every cluster (slot owners, roles, keys and bytes per slot).
 * Keys and bytes per slot are an estimate: a master's keys spread evenly over
 * its slots. A kind that changes a cluster in a way not modelled here makes
 * that cluster "cannot be predicted" rather than a guess.
 */

interface SimNode {
  id: string;
  address: string;
  role: 'master' | 'replica';
  masterId?: string;
  state: 'up' | 'stopped' | 'forgotten';
}

interface SimCluster {
  nodes: Map<string, SimNode>;
  /** Node id owning each slot, or '' when none. */
  owner: string[];
  keys: Float64Array;
  bytes: Float64Array;
  /** False when the plan had no key counts (keys per slot unknown). */
  sized: boolean;
  unpredictable?: string;
}

/** What one step does to the data, for the estimate: slots it moves, keys and bytes it moves or copies. */
export interface StepEffect {
  slots?: number;
  keys?: number;
  bytes?: number;
  /** What the bytes are: a file size read from the node, or used_memory standing in for it. */
  bytesBasis?: string;
  note?: string;
}

export interface MasterAfter {
  id: string;
  address: string;
  ranges: SlotRange[];
  slots: number;
  /** Estimated (evenly spread keys), undefined when the plan had no key counts. */
  keys?: number;
  replicas: string[];
  /** How this master differs from before, in words ('' when it does not). */
  change: string;
}

export interface ClusterAfter {
  cluster: string;
  predicted: boolean;
  /** Why it cannot be predicted (when predicted is false). */
  reason?: string;
  masters: MasterAfter[];
  /** Nodes out of service after the run (stopped, forgotten), in words. */
  gone: string[];
  notes: string[];
}

export interface Prediction {
  clusters: ClusterAfter[];
  effects: Record<string, StepEffect>;
}

/** The plan's clusters with the details `before` adds (keys, memory); the plan's structure alone otherwise. */
export function beforeClusters(plan: Plan, before: Record<string, ClusterBefore> = {}): Record<string, ClusterBefore> {
  const out: Record<string, ClusterBefore> = {};
  for (const [name, c] of Object.entries(plan.clusters)) {
    out[name] = before[name] ?? {
      cluster: name,
      takenAt: c.takenAt,
      fingerprint: c.fingerprint,
      nodes: c.structure.map((n) => ({ ...n, reachable: true })),
    };
  }
  return out;
}

function simulate(c: ClusterBefore): SimCluster {
  const owner = new Array<string>(16384).fill('');
  const keys = new Float64Array(16384);
  const bytes = new Float64Array(16384);
  let sized = true;
  for (const n of c.nodes) {
    if (n.role !== 'master' || !n.slots.length) continue;
    const slots = rangesToSlots(n.slots);
    if (n.keys === undefined) sized = false;
    const size = n.aofBytes ?? n.usedMemory ?? 0;
    for (const s of slots) {
      owner[s] = n.id;
      keys[s] = (n.keys ?? 0) / slots.length;
      bytes[s] = size / slots.length;
    }
  }
  const nodes = new Map(
    c.nodes.map((n): [string, SimNode] => [
      n.id,
      { id: n.id, address: n.address, role: n.role, masterId: n.masterId, state: 'up' },
    ]),
  );
  return { nodes, owner, keys, bytes, sized };
}

type Ref = { id: string; address: string };
type Args = Record<string, unknown>;
const sum = (a: Float64Array, slots: number[]) => slots.reduce((s, x) => s + a[x]!, 0);

/** The candidate takes the master's slots; the master and its other replicas follow the candidate. */
function promote(c: SimCluster, candidate: Ref, master: Ref): void {
  const cand = c.nodes.get(candidate.id);
  const old = c.nodes.get(master.id);
  if (!cand || !old) throw new Error(`${candidate.address} or ${master.address} is not in the plan's topology`);
  for (let s = 0; s < 16384; s++) if (c.owner[s] === old.id) c.owner[s] = cand.id;
  for (const n of c.nodes.values()) if (n.masterId === old.id && n.id !== cand.id) n.masterId = cand.id;
  cand.role = 'master';
  cand.masterId = undefined;
  old.role = 'replica';
  old.masterId = cand.id;
}

/** Apply one step to the model; returns what it moves or copies. Throws when the step's args do not fit the model. */
function apply(sims: Record<string, SimCluster>, s: StepInstance, basis: (c: string) => string): StepEffect {
  const a = (s.args ?? {}) as Args;
  const sim = (name: unknown) => {
    const c = sims[String(name)];
    if (!c) throw new Error(`cluster ${String(name)} is not in the plan`);
    return c;
  };
  switch (s.kind) {
    case 'cluster-failover':
      promote(sim(a.cluster), a.candidate as Ref, a.master as Ref);
      return {};
    case 'drill-fail-master': {
      const c = sim(a.cluster);
      promote(c, a.candidate as Ref, a.master as Ref);
      c.nodes.get((a.master as Ref).id)!.state = 'stopped';
      return {
        note:
          `the cluster elects the replica that takes over; shown: ${(a.candidate as Ref).address}, the ` +
          `best candidate when the plan was made`,
      };
    }
    case 'restart-as-replica': {
      const c = sim(a.cluster);
      const n = c.nodes.get((a.node as Ref).id)!;
      const first = (a.ranges as SlotRange[])[0];
      const owner = first ? c.owner[first[0]] : undefined;
      n.state = 'up';
      n.role = 'replica';
      n.masterId = owner || n.masterId;
      return {};
    }
    case 'move-slot-plan':
    case 'move-slots': {
      const c = sim(a.cluster);
      const moves = a.moves as Array<{ slot: number; to: Ref }>;
      const slots = moves.map((m) => m.slot);
      const effect = { slots: slots.length, keys: sum(c.keys, slots), bytes: sum(c.bytes, slots) };
      for (const m of moves) c.owner[m.slot] = m.to.id;
      return { ...effect, bytesBasis: basis(String(a.cluster)) };
    }
    case 'forget-node': {
      const n = sim(a.cluster).nodes.get((a.node as Ref).id);
      if (n) n.state = 'forgotten';
      return {};
    }
    case 'shutdown-node': {
      const n = sim(a.cluster).nodes.get(String(a.id));
      if (n && n.state === 'up') n.state = 'stopped';
      return {};
    }
    case 'copy-shard-files':
    case 'start-sync':
      return copyData(sims, s, String(a.source), String(a.target), basis);
    default:
      return {};
  }
}

/** The target's data becomes the source's, slot by slot (a file copy, or a sync's full copy). */
function copyData(
  sims: Record<string, SimCluster>,
  s: StepInstance,
  source: string,
  target: string,
  basis: (c: string) => string,
): StepEffect {
  const from = sims[source];
  const to = sims[target];
  if (!to) throw new Error(`cluster ${target} is not in the plan`);
  if (!from) {
    // A standalone source (a sync from one server) is not a cluster of the plan: its size is unknown here.
    to.sized = false;
    return { note: `the size of ${source} is not in the plan` };
  }
  to.keys.set(from.keys);
  to.bytes.set(from.bytes);
  to.sized = from.sized;
  const all = [...Array(16384).keys()];
  return {
    keys: sum(from.keys, all),
    bytes: sum(from.bytes, all),
    bytesBasis: basis(source),
    note: s.kind === 'start-sync' ? 'the whole dataset is copied by the full sync' : undefined,
  };
}

/** Kinds that change no slot owner, role or membership (checks, waits, saves, copies of files, verification). */
const NO_STRUCTURE = new Set([
  'check-cluster',
  'verify-cluster',
  'wait-for-agreement',
  'verify-data',
  'verify-failover',
  'wait-replica-sync',
  'match-shards',
  'persist-masters',
  'stop-nodes',
  'start-nodes',
  'backup-node-files',
  'verify-copy',
  'delete-node-files',
  'check-sync',
  'wait-full-sync',
  'wait-sync-lag',
  'cut-over',
  'sync-report',
]);
const MODELLED = new Set([
  'cluster-failover',
  'drill-fail-master',
  'restart-as-replica',
  'move-slot-plan',
  'move-slots',
  'forget-node',
  'shutdown-node',
  'copy-shard-files',
  'start-sync',
]);

/** Which clusters a step names (its cluster, source, target), as far as its args say. */
function clustersOfStep(s: StepInstance): string[] {
  const a = (s.args ?? {}) as Args;
  return ['cluster', 'source', 'target'].map((k) => a[k]).filter((v): v is string => typeof v === 'string');
}

export function predictAfter(plan: Plan, before: Record<string, ClusterBefore> = {}): Prediction {
  const start = beforeClusters(plan, before);
  const sims: Record<string, SimCluster> = {};
  for (const [name, c] of Object.entries(start)) sims[name] = simulate(c);
  const basis = (name: string) =>
    start[name]?.nodes.some((n) => n.aofBytes !== undefined)
      ? 'AOF size (aof_current_size)'
      : 'used_memory, a stand-in for the file size';
  const effects: Record<string, StepEffect> = {};
  for (const s of plan.steps) {
    if (NO_STRUCTURE.has(s.kind)) continue;
    const names = clustersOfStep(s);
    if (!MODELLED.has(s.kind)) {
      for (const n of names.length ? names : Object.keys(sims))
        if (sims[n]) sims[n]!.unpredictable ??= `step ${s.id} (kind ${s.kind}) is not modelled by the report`;
      continue;
    }
    try {
      effects[s.id] = apply(sims, s, basis);
    } catch (err) {
      for (const n of names) if (sims[n]) sims[n]!.unpredictable ??= `step ${s.id}: ${(err as Error).message}`;
    }
  }
  return {
    clusters: Object.entries(sims).map(([name, c]) => describe(name, c, start[name]!, plan, effects)),
    effects,
  };
}

function describe(
  name: string,
  c: SimCluster,
  before: ClusterBefore,
  plan: Plan,
  effects: Record<string, StepEffect>,
): ClusterAfter {
  if (c.unpredictable)
    return { cluster: name, predicted: false, reason: c.unpredictable, masters: [], gone: [], notes: [] };
  const was = new Map<string, NodeBefore>(before.nodes.map((n) => [n.id, n]));
  const addressOf = (id: string | undefined) => was.get(id ?? '')?.address ?? 'its master';
  const slotsOf = new Map<string, number[]>();
  c.owner.forEach((id, s) => {
    if (id) slotsOf.set(id, [...(slotsOf.get(id) ?? []), s]);
  });
  const live = [...c.nodes.values()].filter((n) => n.state !== 'forgotten');
  // Masters left with no slot (a consolidation that is not put back) are listed too, with none.
  for (const n of live) if (n.role === 'master' && !slotsOf.has(n.id)) slotsOf.set(n.id, []);
  const masters = [...slotsOf]
    .map(([id, slots]): MasterAfter => {
      const n = c.nodes.get(id)!;
      const ranges = toRanges(slots);
      const old = was.get(id);
      const sameSlots = old && JSON.stringify(old.slots) === JSON.stringify(ranges);
      const change = !old
        ? 'new'
        : old.role !== 'master'
          ? `was a replica; takes the slots of ${addressOf(old.masterId)}`
          : sameSlots
            ? ''
            : `was ${old.slots.length ? rangesText(old.slots) : 'no slots'}`;
      return {
        id,
        address: n.address,
        ranges,
        slots: slots.length,
        keys: c.sized ? Math.round(sum(c.keys, slots)) : undefined,
        replicas: live.filter((r) => r.role === 'replica' && r.masterId === id).map((r) => r.address),
        change: [
          change,
          keysChange(old?.keys, c.sized ? sum(c.keys, slots) : undefined),
          n.state === 'stopped' ? 'stopped' : '',
        ]
          .filter(Boolean)
          .join('; '),
      };
    })
    .sort((a, b) => (a.ranges[0]?.[0] ?? 16384) - (b.ranges[0]?.[0] ?? 16384) || a.address.localeCompare(b.address));
  const gone = [...c.nodes.values()]
    .filter((n) => n.state !== 'up')
    .map(
      (n) => `${n.address} (${n.id.slice(0, 8)}): ${n.state === 'forgotten' ? 'forgotten by the cluster' : 'stopped'}`,
    );
  const notes = plan.steps
    .filter((s) => effects[s.id]?.note && clustersOfStep(s).includes(name))
    .map((s) => `${s.id}: ${effects[s.id]!.note}`);
  for (const n of c.nodes.values()) {
    const old = was.get(n.id);
    if (old?.role === 'master' && n.role === 'replica' && n.state === 'up')
      notes.push(`${n.address} becomes a replica of ${c.nodes.get(n.masterId ?? '')?.address ?? 'the new master'}`);
  }
  return { cluster: name, predicted: true, masters, gone, notes };
}

/** A change in a master's keys worth a reviewer's eye (the data a copy brings, or moves take away). */
function keysChange(was: number | undefined, now: number | undefined): string {
  if (was === undefined || now === undefined || Math.abs(now - was) < Math.max(1, was * 0.01)) return '';
  return `keys ${was.toLocaleString('en-US')} -> ~${Math.round(now).toLocaleString('en-US')}`;
}

export const rangesText = (r: readonly SlotRange[]): string =>
  r.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ');
