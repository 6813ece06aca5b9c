import { failedError } from '../../errors.js';
import { describeShard } from '../../data/engines/engine.js';
import { openSync, syncArgs, syncRecord, type SyncArgs, SYNC_PARAMS } from './sync-args.js';
import { cond, pass, waitFor, type StepKind } from '../kind.js';
import { liveKeys } from '../args.js';

/**
 * Has this run's sync begun writing into the target (a shard's full sync
 * started, which clears its slots first)? Then the target's keys are the
 * sync's own. A record saved before any shard got that far proves nothing:
 * the target's keys are read again and need consent.
 */
function syncWroteTarget(ctx: Parameters<typeof syncRecord>[0]): boolean {
  return (syncRecord(ctx)?.shards ?? []).some((sh) => sh.state.fullSyncs > 0 || sh.state.loaded);
}

/**
 * Start the background sync: one replication link per source master. The
 * step ends once every link is up (a full sync under way); the sync goes on
 * while the later steps wait on it, and a resumed run starts it again from
 * its record (partial resync from the target's checkpoints).
 */
export const startSyncStep: StepKind<SyncArgs> = {
  kind: 'start-sync',
  summary: 'Start the live sync (in the background of the run) from the source into the target',
  params: SYNC_PARAMS,
  resolve: syncArgs,
  title: (a) =>
    a.mode === 'scan'
      ? `Copy every key of ${a.source} into ${a.target} (SCAN + DUMP + RESTORE)${a.notify ? ', then follow changes through keyspace notifications' : ' - a copy as of the scan, no incremental sync'}, in the background`
      : `Start syncing ${a.source} into ${a.target}: a replication link (PSYNC) per source master, in the background`,
  commands: (a) => [
    ...(a.targetKeys
      ? [
          {
            target: `every master of ${a.target}`,
            command: `CLUSTER GETKEYSINSLOT + UNLINK in each synced slot (the target holds ${a.targetKeys} keys)`,
          },
        ]
      : [
          {
            target: `every master of ${a.target}`,
            command: 'CLUSTER COUNTKEYSINSLOT per synced slot (deletes what a slot holds before its full sync)',
          },
        ]),
    ...(a.mode === 'scan'
      ? [
          ...(a.notify
            ? [
                {
                  target: `every master of ${a.source}`,
                  command:
                    'CONFIG SET notify-keyspace-events <current + KA> (the current value is recorded and set back at cut-over); PSUBSCRIBE __keyspace@0__:*',
                },
              ]
            : []),
          {
            target: `every master of ${a.source}`,
            command: `SCAN, DUMP, PTTL${a.notify ? ' (then DUMP, PTTL of every key a notification names)' : ' (read-only); writes after a key is copied are not carried (notify=true follows them)'}`,
          },
          {
            target: `the owner of each key in ${a.target}`,
            command: `RESTORE key ttl payload REPLACE${a.notify ? ' (DEL for a key gone from the source)' : ''}`,
          },
        ]
      : [
          {
            target: `every master of ${a.source}`,
            command:
              'AUTH, REPLCONF listening-port 0, REPLCONF capa eof capa psync2, PSYNC ? -1 (or PSYNC <replid> <offset> on resume), REPLCONF ACK <applied> every second',
          },
          {
            target: `the owner of each key in ${a.target}`,
            command: a.restorePayloads
              ? `RESTORE key <expiry> <payload from the RDB> REPLACE ABSTTL (values over ${a.bigKeyBytes} bytes rebuilt in chunks)`
              : 'DEL + RPUSH/SADD/ZADD/HSET/XADD... (rebuilt with type commands)',
          },
          {
            target: `every master of ${a.target}`,
            command:
              "EVALSHA <apply script> (the stream's commands for that master + its checkpoint key redis-runbook:sync:{tag}:<run>:<shard>, atomically)",
          },
        ]),
  ],
  destructive: (a) =>
    a.targetKeys > 0
      ? `the target ${a.target} holds ${a.targetKeys} keys: they are deleted (UNLINK, slot by slot) before the full sync`
      : undefined,
  // The target may have gained keys since the plan. A sync of this run that already wrote
  // into the target holds its own keys there: clearing those for a new full sync destroys nothing.
  async liveDestructive(ctx) {
    if (syncWroteTarget(ctx)) return undefined;
    const n = await liveKeys(ctx.env, ctx.args.target);
    return n > 0
      ? `the target ${ctx.args.target} holds ${n} keys now: they are deleted (UNLINK, slot by slot) before the full sync`
      : undefined;
  },
  async check(ctx) {
    const r = syncRecord(ctx);
    return [
      cond(
        'not stopped',
        !r?.stopped,
        r ? 'the sync continues from its record' : 'no sync of this run yet',
        "this run's sync was stopped at cut-over; start a new run for a new sync",
      ),
    ];
  },
  async run(ctx) {
    if (!syncWroteTarget(ctx)) {
      const n = await liveKeys(ctx.env, ctx.args.target);
      if (n > 0) ctx.mayDestroy(`the target ${ctx.args.target} holds ${n} keys, which the full sync deletes first`);
    }
    const sync = await openSync(ctx);
    // Up means past the handshake: a link that cannot even start (auth, PSYNC refused) is this step's failure.
    const up = await waitFor(async () => (sync.status().every((s) => s.phase !== 'connecting') ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 200,
      signal: ctx.signal,
    });
    for (const s of sync.status()) ctx.log(describeShard(s));
    if (!up) {
      const stuck = sync.status().filter((s) => s.phase === 'connecting');
      await sync.detach();
      throw failedError(
        'E_SYNC_START',
        `${stuck.length} link(s) did not start within 30 s: ${stuck.map((s) => `${s.master ?? s.ranges}: ${s.lastError ?? 'no answer'}`).join('; ')}`,
        'check that the source user may run PSYNC (ACL +psync +replconf), and that the source is reachable from here; then retry the step',
      );
    }
    return {
      engine: sync.engine,
      shards: sync.status().map((s) => ({ shard: s.shard, ranges: s.ranges, master: s.master })),
    };
  },
  async verify(ctx) {
    const r = syncRecord(ctx);
    return [pass('sync recorded', `${r?.shards.length ?? 0} shard(s) recorded for resume`)];
  },
};
