import { describeServer } from './server-identity.js';
import type { Topology } from './topology.js';
import { countSlots, formatRanges, SLOT_COUNT, toRanges, type SlotRange } from './slots.js';
import { isMaster } from './cluster-nodes.js';

/** What `redis-cli --cluster check` reports, computed from a topology. Pure. */
export interface ClusterCheck {
  cluster: string;
  ok: boolean;
  masters: Array<{
    address: string;
    id: string;
    keys: number | null;
    slots: number;
    ranges: string;
    replicas: number;
    reachable: boolean;
  }>;
  agree: boolean;
  disagreements: string[];
  openSlots: number[];
  openDetails: string[];
  covered: boolean;
  uncovered: SlotRange[];
  clusterStates: Record<string, string>;
  unreachable: string[];
  failed: string[];
  /** Slots owned by a failed master that no live replica can take over (strandedSlots). */
  stranded: StrandedSlots[];
  /** Each problem in words, empty when ok. */
  problems: string[];
}

/**
 * Slots owned by a master flagged failing that no live replica can take over
 * (pure). Redis never reassigns them by itself. One way to get here: the
 * receiver of a slot move dies right after SETSLOT NODE, before its replica
 * heard the new slots from it; the replica is promoted with the slots it knew
 * of, and the others stay with the dead node (Redis 7 does not replicate
 * SETSLOT; Valkey 8 does).
 */
export interface StrandedSlots {
  owner: string;
  id: string;
  ranges: SlotRange[];
}

export function strandedSlots(t: Topology): StrandedSlots[] {
  return t.nodes
    .filter((m) => m.role === 'master' && m.slots.length > 0 && m.flags.includes('fail'))
    .filter(
      (m) => !t.nodes.some((r) => r.masterId === m.id && r.reachable && !r.flags.some((f) => f.startsWith('fail'))),
    )
    .map((m) => ({ owner: m.address, id: m.id, ranges: m.slots }));
}

/** What to do about stranded slots, in words an operator can follow. */
export function describeStranded(s: readonly StrandedSlots[]): string {
  return s
    .map(
      (x) =>
        `slots ${formatRanges(x.ranges)} are owned by ${x.owner}, which is flagged fail and has no live replica: ` +
        'start it again with its data; or, if its former replica was promoted without these slots, ' +
        'give them to that node (CLUSTER SETSLOT <slot> NODE <its id>, sent to it) ' +
        'once CLUSTER COUNTKEYSINSLOT on it shows their keys',
    )
    .join('; ');
}

/** One row per master that owns slots or has replicas (an empty, replica-less master is not reported). */
function masterRows(t: Topology): ClusterCheck['masters'] {
  return t.nodes
    .filter((n) => n.role === 'master')
    .filter((m) => m.slots.length > 0 || t.nodes.some((r) => r.masterId === m.id))
    .map((m) => ({
      address: m.address,
      id: m.id,
      keys: m.self ? m.self.keys : null,
      slots: countSlots(m.slots),
      ranges: formatRanges(m.slots),
      replicas: t.nodes.filter((r) => r.role === 'replica' && r.masterId === m.id).length,
      reachable: m.reachable,
    }));
}

/** The distinct slot-ownership views of the reachable nodes, each with the addresses that hold it. */
function slotViews(t: Topology): Map<string, string[]> {
  // Slot ownership as each reachable node sees it must be identical.
  const owner = (view: NonNullable<(typeof t.nodes)[number]['self']>['view']) => {
    const own = new Map<string, string>();
    for (const l of view)
      if (isMaster(l) && !l.flags.includes('fail')) for (const [a, b] of l.slots) own.set(`${a}-${b}`, l.id);
    return JSON.stringify([...own.entries()].sort());
  };
  const views = new Map<string, string[]>();
  for (const n of t.nodes) {
    if (!n.self) continue;
    const key = owner(n.self.view);
    views.set(key, [...(views.get(key) ?? []), n.address]);
  }
  return views;
}

/** Slots some node reports as migrating or importing, with one line per such state. */
function openSlotStates(t: Topology): { openSlots: Set<number>; openDetails: string[] } {
  const openSlots = new Set<number>();
  const openDetails: string[] = [];
  for (const n of t.nodes) {
    const me = n.self?.view.find((l) => l.flags.includes('myself'));
    if (!me) continue;
    for (const m of me.migrating) {
      openSlots.add(m.slot);
      openDetails.push(`${n.address} has slot ${m.slot} in migrating state`);
    }
    for (const i of me.importing) {
      openSlots.add(i.slot);
      openDetails.push(`${n.address} has slot ${i.slot} in importing state`);
    }
  }
  return { openSlots, openDetails };
}

/** Slots no master of the topology owns, in ascending order. */
function missingSlots(t: Topology): number[] {
  const covered = new Set<number>();
  for (const m of t.nodes.filter((n) => n.role === 'master'))
    for (const [a, b] of m.slots) for (let s = a; s <= b; s++) covered.add(s);
  const missing: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (!covered.has(s)) missing.push(s);
  return missing;
}

export function checkCluster(t: Topology): ClusterCheck {
  const problems: string[] = [];
  const rows = masterRows(t);

  const views = slotViews(t);
  const agree = views.size <= 1;
  const disagreements = agree ? [] : [...views.values()].map((addrs) => `view held by ${addrs.join(', ')}`);
  if (!agree) problems.push(`nodes don't agree about slots configuration (${views.size} different views)`);

  const { openSlots, openDetails } = openSlotStates(t);
  if (openSlots.size) problems.push(`open slots: ${[...openSlots].sort((a, b) => a - b).join(',')}`);

  const missing = missingSlots(t);
  const uncovered = toRanges(missing);
  if (missing.length)
    problems.push(`not all ${SLOT_COUNT} slots are covered (${missing.length} uncovered: ${formatRanges(uncovered)})`);

  const clusterStates: Record<string, string> = {};
  for (const n of t.nodes) if (n.self) clusterStates[n.address] = n.self.clusterState;
  const notOk = Object.entries(clusterStates)
    .filter(([, s]) => s !== 'ok')
    .map(([a, s]) => `${a}: cluster_state:${s}`);
  if (notOk.length) problems.push(`cluster_state is not ok on ${notOk.join(', ')}`);

  const unreachable = t.nodes.filter((n) => !n.reachable).map((n) => `${n.address}${n.error ? ` (${n.error})` : ''}`);
  if (unreachable.length) problems.push(`unreachable: ${unreachable.join('; ')}`);
  const failed = t.nodes.filter((n) => n.flags.includes('fail') || n.flags.includes('fail?')).map((n) => n.address);
  if (failed.length) problems.push(`flagged as failing: ${failed.join(', ')}`);
  const stranded = strandedSlots(t);
  if (stranded.length) problems.push(describeStranded(stranded));

  return {
    cluster: t.cluster,
    ok: problems.length === 0,
    masters: rows,
    agree,
    disagreements,
    openSlots: [...openSlots].sort((a, b) => a - b),
    openDetails,
    covered: missing.length === 0,
    uncovered,
    clusterStates,
    unreachable,
    failed,
    stranded,
    problems,
  };
}

/** The report in redis-cli's words, so operators recognise it. */
export function renderCheck(c: ClusterCheck, t: Topology): string {
  const lines: string[] = [`cluster ${c.cluster} (seed ${t.seed}, cluster-node-timeout ${t.nodeTimeoutMs} ms)`];
  for (const m of c.masters) {
    lines.push(
      `${m.address} (${m.id.slice(0, 8)}...) -> ${m.keys ?? '?'} keys | ${m.slots} slots | ${m.replicas} slaves.${m.reachable ? '' : ' [UNREACHABLE]'}`,
    );
  }
  const keys = c.masters.reduce((n, m) => n + (m.keys ?? 0), 0);
  lines.push(`[OK] ${keys} keys in ${c.masters.length} masters.`);
  for (const n of t.nodes) {
    const role = n.role === 'master' ? 'M' : 'S';
    const extra =
      n.role === 'master'
        ? `slots:${formatRanges(n.slots)} (${countSlots(n.slots)} slots)`
        : `replicates ${n.masterId?.slice(0, 8) ?? '?'}`;
    const server = n.self?.server ? ` (${describeServer(n.self.server)})` : '';
    const failing = n.flags.some((f) => f.startsWith('fail')) ? ` [${n.flags.join(',')}]` : '';
    lines.push(`${role}: ${n.id.slice(0, 8)} ${n.address} ${extra}${server}${failing}`);
  }
  lines.push(
    c.agree ? '[OK] All nodes agree about slots configuration.' : "[ERR] Nodes don't agree about configuration!",
  );
  for (const d of c.disagreements) lines.push(`  ${d}`);
  for (const d of c.openDetails) lines.push(`[WARNING] ${d}`);
  if (c.openSlots.length) lines.push(`[WARNING] The following slots are open: ${c.openSlots.join(',')}.`);
  lines.push(
    c.covered
      ? `[OK] All 16384 slots covered.`
      : `[ERR] Not all 16384 slots are covered by nodes (missing ${formatRanges(c.uncovered)}).`,
  );
  const states = Object.values(c.clusterStates);
  lines.push(
    states.length && states.every((s) => s === 'ok')
      ? '[OK] cluster_state:ok on every node.'
      : `[ERR] cluster_state not ok: ${
          Object.entries(c.clusterStates)
            .filter(([, s]) => s !== 'ok')
            .map(([a, s]) => `${a}=${s}`)
            .join(', ') || 'no node answered'
        }`,
  );
  for (const u of c.unreachable) lines.push(`[ERR] unreachable: ${u}`);
  if (c.stranded.length) lines.push(`[ERR] ${describeStranded(c.stranded)}`);
  lines.push(c.ok ? `cluster ${c.cluster}: OK` : `cluster ${c.cluster}: ${c.problems.length} problem(s)`);
  return lines.join('\n');
}
