import { syncArgs, syncRecord, type SyncArgs, SYNC_PARAMS } from './sync-args.js';
import { cond, onlyReads, type StepKind } from '../kind.js';

/** The migration's account: per shard, how it was synced; then what the comparison found. */
export const syncReportStep: StepKind<SyncArgs & { verifyStep: string }> = {
  kind: 'sync-report',
  summary: 'Report what the sync did and what the comparison found',
  params: {
    ...SYNC_PARAMS,
    verifyStep: { help: 'the verify-data step whose comparison is reported', type: 'step', default: 'verify' },
  },
  resolve: (raw, topology) => ({ ...syncArgs(raw, topology), verifyStep: raw.verifyStep ?? 'verify' }),
  title: (a) => `Report the sync of ${a.source} into ${a.target}`,
  commands: () => [],
  check: onlyReads,
  async run(ctx) {
    const r = syncRecord(ctx);
    const cut = ctx.state.get<{ at: string; paused: boolean }>('cutover');
    const v = ctx.outputs[ctx.args.verifyStep] as { compared?: number; differ?: number } | undefined;
    const shards = (r?.shards ?? []).map((sh, i) => ({
      shard: i,
      ranges: sh.ranges,
      keys: sh.state.keys,
      rdbBytes: sh.state.rdbBytes,
      fullSyncMs: sh.state.fullSyncMs ?? null,
      fullSyncs: sh.state.fullSyncs,
      partialSyncs: sh.state.partialSyncs,
      finalOffset: r?.stopped?.applied[i] ?? null,
    }));
    const scan = ctx.args.mode === 'scan';
    for (const s of shards) {
      ctx.log(
        scan
          ? `shard ${s.shard} (${s.ranges}): ${s.keys} keys (${s.rdbBytes} bytes of payloads) copied in ${s.fullSyncMs ?? '?'} ms; ${s.fullSyncs} copy(ies)`
          : `shard ${s.shard} (${s.ranges}): ${s.keys} keys, ${s.rdbBytes} RDB bytes loaded in ${s.fullSyncMs ?? '?'} ms; ${s.fullSyncs} full sync(s), ${s.partialSyncs} continuation(s); stopped at offset ${s.finalOffset ?? '?'}`,
      );
    }
    if (cut) ctx.log(`cut over at ${cut.at}${cut.paused ? ' with source writes paused' : ''}`);
    if (v) ctx.log(`comparison: ${v.compared ?? '?'} keys compared, ${v.differ ?? '?'} differ`);
    return { engine: ctx.args.engine, mode: ctx.args.mode, shards, cutOver: cut ?? null, verify: v ?? null };
  },
  async verify(ctx) {
    const v = ctx.outputs[ctx.args.verifyStep] as { differ?: number } | undefined;
    return [
      cond(
        'no differences',
        !!v && v.differ === 0,
        'the comparison found the target equal to the source',
        v ? `${v.differ} key(s) differ (see \`show\`)` : 'no comparison ran',
      ),
    ];
  },
};
