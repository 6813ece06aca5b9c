import type { Plan } from '../engine/plan.js';
import { fmtTime } from './units.js';

/**
 * The slot map of each cluster before and after a run, from what the run
 * recorded (no node is asked: the report reads the state database only).
 *
 * Before: the topology the plan was built on (plan_json's clusters).
 * After: no extra record is kept. The run's own steps already observed it:
 * check-cluster, verify-cluster and verify-copy record the slots and master
 * of every shard they saw, and the slot movers' plans (move-slot-plan,
 * move-slots) list every slot they moved and where. So the map is replayed
 * in step order: each observation replaces it, each finished slot move is
 * applied to it. This needs no change to the runner (which records nothing
 * at a run's end) and shows where the picture came from. When a step that
 * can change who is master (a failover, a stop) ran after the last
 * observation, the map is marked as possibly out of date instead of
 * being passed off as the end state.
 */
export interface MasterSlots {
  master: string;
  ranges: Array<[number, number]>;
}

export interface SlotMap {
  cluster: string;
  before: MasterSlots[];
  after: MasterSlots[];
  /** Where `after` comes from, in words. */
  afterSource: string;
  /** A step that may have changed the masters ran after the last observation. */
  afterStale: boolean;
}

interface StepLike {
  id: string;
  kind: string;
  status: string;
  finishedAt: number | null;
  output: unknown;
}

const SLOTS = 16384;
const OBSERVERS = new Set(['check-cluster', 'verify-cluster', 'verify-copy']);
const MOVERS = new Set(['move-slot-plan', 'move-slots']);
/** Kinds that can hand a master's slots to another node. */
const ROLE_CHANGERS = new Set([
  'drill-fail-master',
  'cluster-failover',
  'restart-as-replica',
  'shutdown-node',
  'forget-node',
  'stop-nodes',
  'start-nodes',
  'cut-over',
]);

/** "0-5460,7000" -> [[0,5460],[7000,7000]]; anything unreadable is left out. */
export function parseRanges(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const part of text.split(/[\s,]+/)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a <= b && b < SLOTS) out.push([a, b]);
  }
  return out;
}

/** Owner per slot -> masters with their ranges, ordered by first slot. */
function toMasters(owner: Array<string | undefined>): MasterSlots[] {
  const by = new Map<string, Array<[number, number]>>();
  for (let s = 0; s < SLOTS; s++) {
    const m = owner[s];
    if (!m) continue;
    const rs = by.get(m) ?? [];
    const last = rs[rs.length - 1];
    if (last && last[1] === s - 1) last[1] = s;
    else rs.push([s, s]);
    by.set(m, rs);
  }
  return [...by.entries()]
    .map(([master, ranges]) => ({ master, ranges }))
    .sort((x, y) => x.ranges[0]![0] - y.ranges[0]![0]);
}

function fill(owner: Array<string | undefined>, masters: MasterSlots[]): void {
  owner.fill(undefined);
  for (const m of masters) for (const [a, b] of m.ranges) for (let s = a; s <= b; s++) owner[s] = m.master;
}

/** The shards a step's output observed, if they are this cluster's (told by their masters' addresses). */
function observed(output: unknown, addresses: Set<string>): MasterSlots[] | undefined {
  const shards = (output as { shards?: unknown } | null)?.shards;
  if (!Array.isArray(shards) || !shards.length) return undefined;
  const out: MasterSlots[] = [];
  for (const s of shards as Array<{ master?: unknown; ranges?: unknown }>) {
    if (typeof s.master !== 'string' || typeof s.ranges !== 'string' || !addresses.has(s.master)) return undefined;
    out.push({ master: s.master, ranges: parseRanges(s.ranges) });
  }
  return out;
}

type Moves = Array<{ slot: number; to: { address: string } }>;

function movesOf(step: Plan['steps'][number] | undefined, cluster: string): Moves {
  const a = step?.args as { cluster?: string; moves?: Moves } | undefined;
  return a?.cluster === cluster && Array.isArray(a.moves) ? a.moves : [];
}

function mentions(step: Plan['steps'][number] | undefined, cluster: string, addresses: Set<string>): boolean {
  const a = step?.args as { cluster?: string } | undefined;
  if (a?.cluster !== undefined) return a.cluster === cluster;
  const text = JSON.stringify(step?.args ?? '');
  return [...addresses].some((x) => text.includes(`"${x}"`));
}

export function slotMaps(plan: Plan, steps: StepLike[]): SlotMap[] {
  const planSteps = new Map(plan.steps.map((s) => [s.id, s]));
  return Object.entries(plan.clusters).map(([cluster, c]) => {
    const before = c.structure
      .filter((n) => n.role === 'master' && n.slots.length)
      .map((n) => ({ master: n.address, ranges: n.slots.map(([a, b]) => [a, b] as [number, number]) }))
      .sort((x, y) => x.ranges[0]![0] - y.ranges[0]![0]);
    const addresses = new Set(c.structure.map((n) => n.address));
    const owner = new Array<string | undefined>(SLOTS);
    fill(owner, before);
    let source = `the plan's topology (${c.takenAt.replace('T', ' ').slice(0, 19)})`;
    const applied: string[] = [];
    let stale = false;
    for (const s of steps) {
      if (s.status !== 'done') continue;
      const seen = OBSERVERS.has(s.kind) ? observed(s.output, addresses) : undefined;
      if (seen) {
        fill(owner, seen);
        source = `seen by step ${s.id} (${s.kind}) at ${fmtTime(s.finishedAt)}`;
        applied.length = 0;
        stale = false;
      } else if (MOVERS.has(s.kind)) {
        const moves = movesOf(planSteps.get(s.id), cluster);
        for (const m of moves) if (m.slot >= 0 && m.slot < SLOTS) owner[m.slot] = m.to.address;
        if (moves.length) applied.push(s.id);
      } else if (ROLE_CHANGERS.has(s.kind) && mentions(planSteps.get(s.id), cluster, addresses)) stale = true;
    }
    if (applied.length) source += `, then the slot moves of ${applied.map((a) => `step ${a}`).join(', ')}`;
    return { cluster, before, after: toMasters(owner), afterSource: source, afterStale: stale };
  });
}
