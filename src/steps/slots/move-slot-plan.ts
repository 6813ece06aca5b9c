import { strandedCondition } from '../cluster/check-cluster.js';
import { reportSlotMoves } from './move-progress.js';
import { strandedSlots } from '../../redis/check.js';
import { failedError, usageError } from '../../errors.js';
import { parseClusterNodes } from '../../redis/cluster-nodes.js';
import {
  chooseCollector,
  consolidationMoves,
  rebalanceMoves,
  restoreMoves,
  spreadMoves,
} from '../../redis/consolidate.js';
import {
  closeOpenSlots,
  describeRetry,
  findOpenSlots,
  foreignOpenSlots,
  isOwnOpenSlot,
  moveSlots,
  ownsSlot,
  type SlotMove,
} from '../../redis/slot-move.js';
import { formatRanges, rangesToSlots, toRanges } from '../../redis/slots.js';
import { masters, type Topology } from '../../redis/topology.js';
import { clusterArg, CLUSTER_PARAM } from '../args.js';
import { cond, pass, type Condition, type StepKind, type StepRunContext } from '../kind.js';

type Mode = 'consolidate' | 'spread' | 'restore' | 'settle' | 'rebalance';
interface Args {
  cluster: string;
  mode: Mode;
  consolidateStep: string;
  pivot: { id: string; address: string };
  moves: SlotMove[];
  masters: string[];
  nodes: string[];
  usedMemory: number;
  keys: number;
  concurrency: number;
}

/**
 * The plan's moves and masters as the cluster is now. A planned master that a failover
 * turned into a replica (killed in the middle of a move, its replica promoted) is replaced
 * by the master it now follows, which holds the same shard: a resumed move would otherwise
 * ask a replica to take slots, and slots the promoted node inherited would be owned by
 * "neither side" of the plan.
 */
async function current(ctx: StepRunContext<Args>): Promise<{ moves: SlotMove[]; masters: string[] }> {
  return followFailovers(await ctx.env.topology(ctx.args.cluster), ctx.args);
}

export function followFailovers(
  t: Topology,
  args: Pick<Args, 'moves' | 'masters'>,
): { moves: SlotMove[]; masters: string[] } {
  const byId = new Map(t.nodes.map((n) => [n.id, n]));
  const now = (ref: { id: string; address: string }) => {
    const n = byId.get(ref.id);
    const m = n && n.role === 'replica' && n.masterId ? byId.get(n.masterId) : undefined;
    return m ? { id: m.id, address: m.address } : ref;
  };
  const moves = args.moves.map((m) => ({ ...m, from: now(m.from), to: now(m.to) }));
  const masters = [
    ...new Set(args.masters.map((a) => now(t.nodes.find((n) => n.address === a) ?? { id: '', address: a }).address)),
  ];
  return { moves, masters };
}

/** The moves whose slot the target does not own yet, in the target's own view. */
async function remaining(ctx: StepRunContext<Args>, moves: readonly SlotMove[] = ctx.args.moves): Promise<SlotMove[]> {
  const pool = ctx.env.pool(ctx.args.cluster);
  const owned = new Map<string, Set<number>>();
  for (const to of new Set(moves.map((m) => m.to.address))) {
    const me = parseClusterNodes(await pool.node(to).text('CLUSTER', 'NODES')).find((l) => l.flags.includes('myself'))!;
    owned.set(to, new Set(rangesToSlots(me.slots)));
  }
  return moves.filter((m) => !owned.get(m.to.address)!.has(m.slot));
}

/**
 * Where each master sees some slots the moves left behind, with the config epochs it
 * knows: a slot whose owner flips back after SETSLOT NODE (a config-epoch collision after
 * a failover) shows here, a gossip delay too. For the log of a failed run; reads only.
 */
async function logViews(ctx: StepRunContext<Args>, left: SlotMove[], viewers: string[]): Promise<void> {
  const pool = ctx.env.pool(ctx.args.cluster);
  for (const viewer of viewers) {
    try {
      const lines = parseClusterNodes(await pool.node(viewer).text('CLUSTER', 'NODES'));
      const me = lines.find((l) => l.flags.includes('myself'));
      const seen = left.map((m) => {
        const owner = lines.find((l) => ownsSlot(l, m.slot));
        const open = me?.migrating.some((x) => x.slot === m.slot)
          ? ' (migrating here)'
          : me?.importing.some((x) => x.slot === m.slot)
            ? ' (importing here)'
            : '';
        const at = owner ? `${owner.address} epoch ${owner.configEpoch}` : 'no owner';
        return `slot ${m.slot} (to ${m.to.address}): ${at}${open}`;
      });
      ctx.log(`${viewer} (epoch ${me?.configEpoch ?? '?'}) sees ${seen.join('; ')}`);
    } catch (err) {
      ctx.log(`${viewer}: CLUSTER NODES failed: ${(err as Error).message}`);
    }
  }
}

/** MemAvailable of a node's host, from /proc/meminfo there (a read). */
async function hostMemory(ctx: StepRunContext<Args>, address: string): Promise<number | undefined> {
  const h = ctx.env.host(address);
  if (!h) return undefined;
  const r = await h.read("awk '/^MemAvailable:/ {print $2}' /proc/meminfo");
  const kb = Number(r.stdout.trim());
  return r.exitCode === 0 && kb > 0 ? kb * 1024 : undefined;
}

/**
 * Consolidate: set cluster-allow-replica-migration no on every node, and
 * return what each had before (to be put back by the spread/restore/settle step).
 */
async function turnOffReplicaMigration(ctx: StepRunContext<Args>): Promise<Record<string, string>> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  const before: Record<string, string> = {};
  // Every node, replicas too: each applies its own setting (a replica of an emptied master
  // would otherwise follow the collector). The value found is recorded; a retry finds `no`
  // where an earlier attempt set it, and that attempt's intent says what it was before.
  const foundEarlier = new Map(
    (ctx.inDoubt?.intents ?? [])
      .filter((i) => i.name === 'replica-migration-off')
      .map((i) => [String(i.detail.node), String(i.detail.was)]),
  );
  for (const n of a.nodes) {
    const v = ((await pool.node(n).call('CONFIG', 'GET', 'cluster-allow-replica-migration')) as string[])[1] ?? 'yes';
    before[n] = foundEarlier.get(n) ?? v;
    if (v !== 'no') {
      ctx.intent('replica-migration-off', { node: n, was: v });
      await pool.node(n).call('CONFIG', 'SET', 'cluster-allow-replica-migration', 'no');
    }
  }
  return before;
}

/** Spread, restore, settle: the cluster-allow-replica-migration settings the consolidate step found. */
function consolidatedReplicaMigration(ctx: StepRunContext<Args>): Record<string, string> {
  const a = ctx.args;
  // The settings the consolidation found are put back at the end: without its record they
  // would silently stay `no`, so a missing record stops the step (fails closed).
  const consolidated = ctx.outputs[a.consolidateStep] as { replicaMigration?: Record<string, string> } | undefined;
  if (!consolidated)
    throw failedError(
      'E_STEP_OUTPUT_MISSING',
      `step ${a.consolidateStep} recorded no output (the cluster-allow-replica-migration settings it found)`,
      `check the runbook: consolidateStep must name the consolidate step of ${a.cluster}, which must have run`,
    );
  return consolidated.replicaMigration ?? {};
}

/** Finish the slots an interrupted attempt of this step left open; refuse if anyone else's are open. */
async function closeOwnOpenSlots(
  ctx: StepRunContext<Args>,
  now: { moves: SlotMove[]; masters: string[] },
): Promise<number[]> {
  const a = ctx.args;
  const pool = ctx.env.pool(a.cluster);
  // Open slots left by an interrupted attempt of this step are closed before anything else;
  // anyone else's are refused (checked again here: a prompt may have stayed open a while).
  // A slot this step opened towards a node that has since failed over is still its own.
  const own = [...a.moves, ...now.moves];
  const open = await findOpenSlots(pool, a.nodes);
  const foreign = open.filter((x) => !isOwnOpenSlot(own, x.slot, x.node.id, x.state, x.peer));
  if (foreign.length) {
    throw failedError(
      'E_OPEN_SLOT',
      `slots ${formatRanges(toRanges([...new Set(foreign.map((x) => x.slot))].sort((x, y) => x - y)))} are open (MIGRATING/IMPORTING) and not part of this step's moves`,
      'another reshard is in flight or was cut off: finish or fix it first (redis-cli --cluster fix), then retry the step',
    );
  }
  const closed = await closeOpenSlots(pool, a.nodes, now.masters, {
    batch: 100,
    migrateTimeoutMs: 20_000,
    signal: ctx.signal,
  });
  if (closed.length) ctx.log(`closed open slots ${formatRanges(toRanges(closed))} first`);
  return closed;
}

export const moveSlotPlanStep: StepKind<Args> = {
  kind: 'move-slot-plan',
  summary:
    'Move slots by a plan made from the topology: every slot onto one master (consolidate), from one master evenly over all (spread), or back to the original owners (restore)',
  params: {
    ...CLUSTER_PARAM,
    mode: { help: 'consolidate, spread, restore, settle or rebalance' },
    pivot: { help: 'the master that collects every slot (default: the one using the most memory)' },
    thresholdPct: {
      help: 'rebalance: slots are moved only when a master is off its share by more than this percentage',
      type: 'number',
      default: '2',
    },
    consolidateStep: {
      help: 'spread/restore/settle: the consolidate step whose recorded settings are put back',
      type: 'step',
    },
    concurrency: { help: 'slots moved at once', type: 'number' },
  },
  resolve(raw, topology) {
    const t = clusterArg(raw, topology);
    const mode = raw.mode as Mode;
    if (!['consolidate', 'spread', 'restore', 'settle', 'rebalance'].includes(mode))
      throw usageError(
        'E_RUNBOOK_INVALID',
        `move-slot-plan: mode \`${raw.mode}\``,
        'use consolidate, spread, restore, settle or rebalance',
      );
    if ((mode === 'spread' || mode === 'restore' || mode === 'settle') && !raw.consolidateStep)
      throw usageError(
        'E_RUNBOOK_INVALID',
        `move-slot-plan: mode ${mode} needs consolidateStep (the consolidate step whose settings it puts back)`,
        "add consolidateStep: <id of the consolidate step> to the step's with:",
      );
    const pivot = chooseCollector(t, raw.pivot || undefined);
    const moves =
      mode === 'consolidate'
        ? consolidationMoves(t, pivot)
        : mode === 'spread'
          ? spreadMoves(t, pivot)
          : mode === 'restore'
            ? restoreMoves(t, pivot)
            : mode === 'rebalance'
              ? rebalanceMoves(t, Number(raw.thresholdPct ?? 2))
              : [];
    return {
      cluster: t.cluster,
      mode,
      consolidateStep: raw.consolidateStep ?? '',
      pivot: { id: pivot.id, address: pivot.address },
      moves,
      masters: t.nodes.filter((n) => n.role === 'master').map((n) => n.address),
      nodes: t.nodes.map((n) => n.address),
      usedMemory: masters(t).reduce((s, m) => s + (m.self?.usedMemory ?? 0), 0),
      keys: masters(t).reduce((s, m) => s + (m.self?.keys ?? 0), 0),
      concurrency: Number(raw.concurrency ?? 8),
    };
  },
  settles: (a) => [{ cluster: a.cluster }],
  title(a) {
    const per = new Map<string, number[]>();
    for (const m of a.moves) {
      const k = a.mode === 'consolidate' ? m.from.address : m.to.address;
      per.set(k, [...(per.get(k) ?? []), m.slot]);
    }
    const dir = a.mode === 'consolidate' ? 'from' : 'to';
    const list = [...per].map(([n, s]) => `${formatRanges(toRanges(s))} ${dir} ${n}`).join(', ');
    if (a.mode === 'consolidate')
      return `Move every slot of ${a.cluster} onto ${a.pivot.address} (${a.moves.length} slots: ${list || 'none'})`;
    if (a.mode === 'rebalance')
      return a.moves.length
        ? `Rebalance ${a.cluster}: ${a.masters.length} masters, contiguous even ranges (${a.moves.length} slots move: ${list})`
        : `${a.cluster} is balanced (every master within 2% of its share): nothing moves`;
    if (a.mode === 'settle')
      return `Set cluster-allow-replica-migration on the nodes of ${a.cluster} back to what it was (its slots stay collected on ${a.pivot.address})`;
    if (a.mode === 'spread')
      return `Spread the slots of ${a.cluster} from ${a.pivot.address} evenly over all ${a.masters.length} masters (${list})`;
    return `Put the slots of ${a.cluster} back where they were (${list}); then cluster-allow-replica-migration as it was`;
  },
  failpoints: ['moved-group'],
  commands: (a) => [
    ...(a.mode === 'consolidate'
      ? [
          {
            target: 'every node',
            command: 'CONFIG SET cluster-allow-replica-migration no',
            when: 'where it is yes: a master that gives away its last slot must stay a master, and its replicas with it',
          },
        ]
      : []),
    ...(a.moves.length
      ? [
          {
            target: 'source and target of each slot, then every master',
            command:
              'SETSLOT IMPORTING/MIGRATING; GETKEYSINSLOT + MIGRATE ... REPLACE; SETSLOT NODE (groups of 64 slots pipelined)',
          },
        ]
      : []),
    ...(a.mode !== 'consolidate' && a.mode !== 'rebalance'
      ? [
          {
            target: 'every node',
            command: 'CONFIG SET cluster-allow-replica-migration <as before>',
            when: 'at the end',
          },
        ]
      : []),
  ],
  destructive: (a) =>
    a.mode === 'consolidate' && a.moves.length > 0
      ? `moves ${a.moves.length} slots of the live cluster ${a.cluster} (${a.keys} keys) onto ${a.pivot.address}; clients follow ASK/MOVED redirects`
      : undefined,
  async check(ctx) {
    const a = ctx.args;
    if (ctx.planning && a.mode !== 'consolidate' && a.mode !== 'rebalance')
      return [
        pass('checked when the step runs', `${a.pivot.address} owns all the slots after the steps before this one`),
      ];
    const out: Condition[] = [];
    const t = await ctx.env.topology(a.cluster);
    const down = a.masters.filter((m) => !t.nodes.find((n) => n.address === m)?.reachable);
    out.push(
      cond(
        'masters answer',
        down.length === 0,
        `all ${a.masters.length} masters answer`,
        `${down.join(', ')} do not answer`,
      ),
    );
    // Slots this step opened itself (an interrupted attempt) are finished by it; anyone else's
    // are a reshard in flight that is not ours to close.
    const foreign = foreignOpenSlots(t, [...a.moves, ...followFailovers(t, a).moves]);
    out.push(
      cond(
        'no other slot open',
        foreign.length === 0,
        'no unrelated slot is migrating or importing',
        `open slots on ${foreign.join('; ')}: another reshard is in flight or was cut off; finish or fix it first (redis-cli --cluster fix), then retry`,
      ),
    );
    // A slot stranded on a dead master (see strandedSlots) cannot be moved or announced.
    out.push(strandedCondition(strandedSlots(t)));
    if (a.mode === 'consolidate') {
      const p = t.nodes.find((n) => n.id === a.pivot.id)?.self;
      const need = masters(t).reduce((s, m) => s + (m.self?.usedMemory ?? 0), 0);
      if (p && p.maxmemory > 0)
        out.push(
          cond(
            'maxmemory of the collector',
            need < p.maxmemory * 0.9,
            `${Math.round(need / 1e6)} MB of data fits ${a.pivot.address}'s maxmemory ${Math.round(p.maxmemory / 1e6)} MB`,
            `${a.pivot.address} has maxmemory ${Math.round(p.maxmemory / 1e6)} MB; the whole dataset uses ${Math.round(need / 1e6)} MB (keep 10% spare): raise it, or pass via= another master`,
          ),
        );
      const avail = await hostMemory(ctx, a.pivot.address);
      const extra = need - (p?.usedMemory ?? 0);
      if (avail !== undefined)
        out.push(
          cond(
            'host memory of the collector',
            extra < avail * 0.8,
            `${Math.round(extra / 1e6)} MB more fits the ${Math.round(avail / 1e6)} MB available on its host`,
            `${a.pivot.address}'s host has ${Math.round(avail / 1e6)} MB available; collecting needs ${Math.round(extra / 1e6)} MB more (and a fork for the save)`,
          ),
        );
      else
        out.push(
          cond(
            'host memory of the collector',
            false,
            '',
            `could not read MemAvailable on the host of ${a.pivot.address} (no inventory host, or the command failed): check it by hand, then add the host`,
          ),
        );
    }
    return out;
  },
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    // A master that gives away its last slot turns itself into a replica of the taker (Redis 7,
    // cluster-allow-replica-migration yes): the emptied masters could then never take slots
    // back. Turned off for the run, and put back by the spread/restore/settle step.
    let before: Record<string, string> = {};
    if (a.mode === 'consolidate') before = await turnOffReplicaMigration(ctx);
    else if (a.mode !== 'rebalance') before = consolidatedReplicaMigration(ctx);
    const now = await current(ctx);
    const closed = await closeOwnOpenSlots(ctx, now);
    const todo = await remaining(ctx, now.moves);
    const started = Date.now();
    let keysMoved = 0;
    const { keys } = await moveSlots(pool, todo, {
      batch: 100,
      migrateTimeoutMs: 20_000,
      masters: now.masters,
      concurrency: a.concurrency,
      signal: ctx.signal,
      onGroup: (g, groupKeys, done) => {
        pool.recordSummary(g[0]!.to.address, 'MOVE-SLOTS', [
          `slots ${formatRanges(toRanges(g.map((m) => m.slot)))}`,
          `from ${g[0]!.from.address}`,
        ]);
        keysMoved += groupKeys;
        reportSlotMoves(ctx, started, done, todo.length, keysMoved);
      },
      afterGroup: () => ctx.failpoint('moved-group'),
      onRetry: (g, attempt, delayMs, reason) => ctx.log(describeRetry(g, attempt, delayMs, reason)),
    });
    const left = await remaining(ctx, now.moves);
    if (left.length) {
      await logViews(ctx, left.slice(0, 3), now.masters);
      throw failedError('E_SLOTS_LEFT', `${left.length} slots are not where the plan puts them yet`, 'retry the step');
    }
    if (a.mode !== 'consolidate' && a.mode !== 'rebalance') {
      for (const [m, v] of Object.entries(before))
        if (v !== 'no')
          await pool
            .node(m)
            .call('CONFIG', 'SET', 'cluster-allow-replica-migration', v)
            .catch(() => undefined);
    }
    return {
      slots: todo.length,
      keys,
      ms: Date.now() - started,
      closedFirst: formatRanges(toRanges(closed)),
      ...(a.mode === 'consolidate' ? { replicaMigration: before } : {}),
    };
  },
  async verify(ctx) {
    const left = await remaining(ctx, (await current(ctx)).moves);
    return [
      cond(
        'slots in place',
        left.length === 0,
        `all ${ctx.args.moves.length} planned slots are with their new owners`,
        `${left.length} are not (e.g. slot ${left[0]?.slot} still not on ${left[0]?.to.address})`,
      ),
    ];
  },
};
