import type { Plan, StepInstance } from '../engine/plan.js';
import { rangesText } from './plan-after.js';
import { toRanges } from '../redis/slots.js';

/**
 * How to undo each step, by step kind: operator-grade advice for the plan
 * document, in one place rather than in every step file. A text says plainly
 * when a step cannot be undone.
 */

type Ref = { id: string; address: string };
type Args = Record<string, unknown>;
type Advice = (a: Args, s: StepInstance, plan: Plan) => string;

const READ_ONLY = 'Nothing to undo: the step only reads.';
const WAIT = 'Nothing to undo: the step only waits for the cluster and changes nothing.';
const ref = (v: unknown) => (v as Ref | undefined)?.address ?? '?';
const cl = (a: Args, k = 'cluster') => String(a[k] ?? '?');

const ROLLBACK: Record<string, Advice> = {
  'check-cluster': () => READ_ONLY,
  'verify-cluster': () => READ_ONLY,
  'verify-failover': () => READ_ONLY,
  'verify-data': () => READ_ONLY,
  'verify-copy': () => READ_ONLY,
  'match-shards': () => READ_ONLY,
  'check-sync': () => READ_ONLY,
  'sync-report': () => READ_ONLY,
  'wait-for-agreement': () => WAIT,
  'wait-replica-sync': () => WAIT,
  'wait-full-sync': () =>
    'Nothing to undo by itself. To abandon the migration here, stop the run: the sync stops with ' +
    'it, and the target keeps what it copied so far (empty it before another attempt).',
  'wait-sync-lag': () => WAIT,
  'cluster-failover': (a, _s, plan) =>
    `Fail back with a second planned failover: \`redis-runbook run manual-failover --param cluster=${cl(a)} ` +
    `--param node=${ref(a.master)} --inventory ${plan.inventoryFile}\` ` +
    `(${ref(a.master)} is then a replica of ${ref(a.candidate)}, ` +
    `and is promoted again).` +
    (a.mode && a.mode !== 'default'
      ? ` A ${String(a.mode).toUpperCase()} failover cannot be undone for writes the old master took ` +
        `and the replica had not received: they are lost.`
      : ''),
  'drill-fail-master': (a, _s, plan) =>
    `The stop cannot be taken back: ${ref(a.master)} is started again (restore=true, or its host's ` +
    `service start) and rejoins as a replica; then \`redis-runbook run manual-failover --param ` +
    `cluster=${cl(a)} --param node=${ref(a.master)} --inventory ${plan.inventoryFile}\` ` +
    'makes it master again. Writes lost at the ' +
    `stop are not recovered.`,
  'restart-as-replica': (a, _s, plan) =>
    `${ref(a.node)} is a replica again; to make it master: \`redis-runbook run manual-failover ` +
    `--param cluster=${cl(a)} --param node=${ref(a.node)} --inventory ${plan.inventoryFile}\`.`,
  'move-slot-plan': (a) => slotMoveAdvice(a),
  'move-slots': (a) =>
    `Move the slots back onto ${ref(a.node)} with \`redis-cli --cluster reshard\` (from the masters ` +
    `that took them, to ${ref(a.node)}); keys move with their slots and stay available. A move ` +
    `cut off in the middle leaves open slots: \`redis-cli --cluster fix\` closes them.`,
  'forget-node': (a) =>
    `Cannot be undone as such: to bring ${ref(a.node)} back, empty it (FLUSHALL, CLUSTER RESET ` +
    `HARD) and add it again with \`redis-cli --cluster add-node\`; it joins as a new node, with ` +
    `no slots.`,
  'shutdown-node': (a) =>
    `Start ${String(a.address ?? '?')} again through its host's service (its files are still there); ` +
    `if it was forgotten, it must be reset and added again (see the forget step).`,
  'delete-node-files': (a) =>
    `Cannot be undone: the RDB, AOF and nodes.conf of ${String(a.address ?? '?')} are deleted for ` +
    `good. Keep a copy first if there is any doubt.`,
  'persist-masters': (a) =>
    `Nothing to undo on the data: it saves (BGSAVE/BGREWRITEAOF) and keeps each master's file as ` +
    `a snapshot beside it${a.format ? ` (${String(a.format)})` : ''}; ` +
    'the snapshot files can be deleted once the migration is verified.',
  'stop-nodes': (a) =>
    `Start the stopped nodes of ${cl(a, 'cluster') === '?' ? cl(a, 'target') : cl(a)} again through ` +
    `their host's service: their data files are untouched until the backup step.`,
  'backup-node-files': (a) =>
    `Put the files back: on each node's host, move them from \`${String(a.backup ?? 'redis-runbook-backup-*')}\` ` +
    `(beside the node's data directory) back into that directory, with the node stopped, then start ` +
    `it. nodes.conf was not moved.`,
  'copy-shard-files': (a) =>
    `The copy replaced ${cl(a, 'target')}'s data files. To go back: stop its nodes, delete the ` +
    `copied files, move the originals back from the backup directory the backup step made ` +
    `(\`redis-runbook-backup-...\` ` +
    `beside each data directory), start the nodes. The source is not touched.`,
  'start-nodes': (a) =>
    `Stop the nodes again through their host's service to go back to the copied files' previous ` +
    `state (see the backup step for the files of ${cl(a, 'target') === '?' ? cl(a) : cl(a, 'target')}).`,
  'start-sync': (a) =>
    `Stopping the run stops the sync; ${cl(a, 'target')} keeps the keys copied so far and nothing ` +
    `on ${cl(a, 'source')} changed (a PSYNC reads like a replica). Empty the target before another ` +
    `attempt.`,
  'cut-over': (a) =>
    `Cannot be undone as such: after cut-over clients write to ${cl(a, 'target')}, and writes made ` +
    `there are not on ${cl(a, 'source')}. To go back, point clients at ${cl(a, 'source')} again ` +
    `and migrate the newer writes back with another migrate-sync the other way. A write pause on ` +
    `the source ends by itself.`,
};

function slotMoveAdvice(a: Args): string {
  const moves = (a.moves ?? []) as Array<{ slot: number; from: Ref }>;
  if (!moves.length)
    return a.mode === 'settle'
      ? 'Sets cluster-allow-replica-migration back to what it was; nothing else to undo.'
      : 'Nothing moves: nothing to undo.';
  const from = [...new Set(moves.map((m) => m.from.address))];
  const back = from
    .map((f) => `${rangesText(toRanges(moves.filter((m) => m.from.address === f).map((m) => m.slot)))} to ${f}`)
    .join('; ');
  return (
    `Move the slots back with \`redis-cli --cluster reshard\` (or \`redis-runbook run rebalance\`): ` +
    `${back}. Keys move with their slots and stay available. A move cut off in the middle leaves ` +
    `open slots: resume the run, or \`redis-cli --cluster fix\`.` +
    (a.mode === 'consolidate'
      ? ' The step also set cluster-allow-replica-migration no on every node: set it back (CONFIG SET) ' +
        'if the run does not reach its restore or settle step.'
      : '')
  );
}

/** The advice for one step: by its kind, or a plain statement that the report has none. */
export function rollbackAdvice(s: StepInstance, plan: Plan): string {
  const advice = ROLLBACK[s.kind];
  if (!advice) return `No rollback advice for kind ${s.kind}: read the step's commands above before confirming it.`;
  return advice((s.args ?? {}) as Args, s, plan);
}

/** Kinds with advice: a test checks that every shipped kind has some. */
export const ROLLBACK_KINDS: readonly string[] = Object.keys(ROLLBACK);
