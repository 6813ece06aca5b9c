import { strandedCondition } from '../cluster/check-cluster.js';
import { reportSlotMoves } from './move-progress.js';
import { strandedSlots } from '../../redis/check.js';
import { failedError, preconditionError } from '../../errors.js';
import { parseClusterNodes } from '../../redis/cluster-nodes.js';
import type { NodeRef } from '../../redis/failover.js';
import {
  describeRetry,
  foreignOpenSlots,
  moveSlots,
  SETSLOT_ATTEMPTS,
  SETSLOT_REPLICA_TIMEOUT_MS,
  spreadSlots,
  type SlotMove,
} from '../../redis/slot-move.js';
import { countSlots, formatRanges, rangesToSlots, toRanges } from '../../redis/slots.js';
import { masters } from '../../redis/topology.js';
import { nodeArg, NODE_PARAMS } from '../args.js';
import { cond, pass, type StepKind, type StepRunContext } from '../kind.js';

interface Args {
  cluster: string;
  node: NodeRef;
  moves: SlotMove[];
  masters: string[];
  batch: number;
  migrateTimeoutMs: number;
  concurrency: number;
}

/** Slots of the plan the node still owns, in its own view. */
async function stillOwned(ctx: StepRunContext<Args>): Promise<number[]> {
  const a = ctx.args;
  const me = parseClusterNodes(await ctx.env.pool(a.cluster).node(a.node.address).text('CLUSTER', 'NODES')).find((l) =>
    l.flags.includes('myself'),
  )!;
  const mine = new Set(rangesToSlots(me.slots));
  return a.moves.map((m) => m.slot).filter((s) => mine.has(s));
}

function groupBy(moves: SlotMove[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of moves) out.set(m.to.address, [...(out.get(m.to.address) ?? []), m.slot]);
  return out;
}

export const moveSlotsStep: StepKind<Args> = {
  kind: 'move-slots',
  summary:
    'Move every slot of a master to the other masters (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), evenly',
  params: {
    ...NODE_PARAMS,
    moveSlots: {
      help: "true: move the slots of a master without a replica (the operator's consent)",
      type: 'bool',
      default: 'false',
    },
    batch: { help: 'keys per MIGRATE', type: 'number', default: '100' },
    migrateTimeoutMs: { help: 'MIGRATE timeout (ms)', type: 'number', default: '20000' },
    concurrency: { help: 'slots moved at once', type: 'number', default: '8' },
  },
  resolve(raw, topology) {
    const { t, n } = nodeArg(raw, topology);
    if (raw.moveSlots !== 'true') {
      throw preconditionError(
        'E_NO_REPLICA',
        `master ${n.address} has no replica: taking it out means moving its ${countSlots(n.slots)} slots (${n.self?.keys ?? 'an unknown number of'} keys) to the other masters first`,
        "pass --param moveSlots=true to move them (keys stay available; clients follow ASK redirects during each slot's move), or add a replica to it first and decommission after a failover",
      );
    }
    const targets = masters(t)
      .filter((m) => m.id !== n.id)
      .map((m) => ({ node: { id: m.id, address: m.address }, slots: countSlots(m.slots) }));
    if (!targets.length)
      throw preconditionError(
        'E_NO_TARGET',
        `${n.address} is the only master: its slots have nowhere to go`,
        'add a master first',
      );
    return {
      cluster: t.cluster,
      node: { id: n.id, address: n.address },
      moves: spreadSlots(rangesToSlots(n.slots), { id: n.id, address: n.address }, targets),
      masters: masters(t).map((m) => m.address),
      batch: Number(raw.batch ?? 100),
      // Below the connection's 30 s command timeout, so a slow MIGRATE fails on the server's clock, not ours.
      migrateTimeoutMs: Number(raw.migrateTimeoutMs ?? 20_000),
      concurrency: Number(raw.concurrency ?? 8),
    };
  },
  title(a) {
    const per = new Map<string, number[]>();
    for (const m of a.moves) per.set(m.to.address, [...(per.get(m.to.address) ?? []), m.slot]);
    return `Move the ${a.moves.length} slots of ${a.node.address} away: ${[...per].map(([to, s]) => `${formatRanges(toRanges(s))} to ${to}`).join(', ')}`;
  },
  failpoints: ['moved-batch'],
  commands: (a) => [
    { target: 'each target', command: 'CLUSTER SETSLOT <slot> IMPORTING <source-id>' },
    {
      target: a.node.address,
      command:
        'CLUSTER SETSLOT <slot> MIGRATING <target-id>; CLUSTER GETKEYSINSLOT; MIGRATE ... REPLACE AUTH *** KEYS ...',
      when: `per slot, ${a.batch} keys per MIGRATE`,
    },
    { target: 'target, source, then every other master', command: 'CLUSTER SETSLOT <slot> NODE <target-id>' },
    {
      target: 'Valkey 8+ masters',
      command: `each SETSLOT above with TIMEOUT ${SETSLOT_REPLICA_TIMEOUT_MS}`,
      when: `the wait for the replicas; a refusal (NOREPLICAS) is sent again, up to ${SETSLOT_ATTEMPTS} times`,
    },
  ],
  destructive: (a) =>
    `moves ${a.moves.length} slots and their keys off ${a.node.address} while clients use them (ASK redirects during each slot's move)`,
  settles: (a) => [{ cluster: a.cluster }],
  async check(ctx) {
    const t = await ctx.env.topology(ctx.args.cluster);
    // Slots this step opened itself (an interrupted attempt) are fine; anyone else's are not.
    const foreign = foreignOpenSlots(t, ctx.args.moves);
    return [
      cond(
        'all masters reachable',
        ctx.args.masters.every((m) => t.nodes.find((n) => n.address === m)?.reachable),
        'every master answers',
        'a master does not answer: slots cannot be moved to or announced on it',
      ),
      cond(
        'no other slot open',
        foreign.length === 0,
        'no unrelated slot is migrating or importing',
        `open slots on ${foreign.join('; ')}: finish or fix them first (redis-cli --cluster fix)`,
      ),
      strandedCondition(strandedSlots(t)),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    const left = new Set(await stillOwned(ctx));
    // A slot already moved by an earlier attempt is skipped; a half-moved one is finished.
    const todo = a.moves.filter((m) => left.has(m.slot));
    const started = Date.now();
    let keysMoved = 0;
    const { keys } = await moveSlots(pool, todo, {
      batch: a.batch,
      migrateTimeoutMs: a.migrateTimeoutMs,
      masters: a.masters,
      signal: ctx.signal,
      concurrency: a.concurrency,
      // One audit entry per group of slots: the cluster itself records where each slot's move stands.
      onGroup: (group, groupKeys, done) => {
        for (const [to, slots] of groupBy(group))
          pool.recordSummary(to, 'MOVE-SLOTS', [
            `slots ${formatRanges(toRanges(slots))}`,
            `from ${a.node.address}`,
            'SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE',
          ]);
        keysMoved += groupKeys;
        reportSlotMoves(ctx, started, done, todo.length, keysMoved);
      },
      afterGroup: () => ctx.failpoint('moved-batch'),
      onRetry: (g, attempt, delayMs, reason) => ctx.log(describeRetry(g, attempt, delayMs, reason)),
    });
    const still = await stillOwned(ctx);
    if (still.length)
      throw failedError(
        'E_SLOTS_LEFT',
        `${a.node.address} still owns slots ${formatRanges(toRanges(still))}`,
        'retry the step',
      );
    return { slots: todo.length, keys, ms: Date.now() - started };
  },
  async verify(ctx) {
    const still = await stillOwned(ctx);
    const view = parseClusterNodes(
      await ctx.env.pool(ctx.args.cluster).node(ctx.args.node.address).text('CLUSTER', 'NODES'),
    ).find((l) => l.flags.includes('myself'))!;
    return [
      cond(
        'no slots left',
        still.length === 0,
        `${ctx.args.node.address} owns none of its former slots`,
        `still owns ${formatRanges(toRanges(still))}`,
      ),
      view.migrating.length + view.importing.length === 0
        ? pass('no open slots', 'nothing left migrating or importing')
        : cond(
            'no open slots',
            false,
            '',
            `${view.migrating.length + view.importing.length} slots still open on ${ctx.args.node.address}`,
          ),
    ];
  },
};
