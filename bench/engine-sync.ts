/** The built-in engine's full sync, in process: shared by bench/sync.ts and bench/peers-sync-engine.ts. */
import type { ClusterPool } from '../src/redis/connect.js';
import { SyncSession, type SyncRecord } from '../src/data/engines/session.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a SyncSession and waits until every shard has reached phase 'stream' (the full sync done). */
export async function engineFullSync(
  source: ClusterPool,
  target: ClusterPool,
  id: string,
): Promise<{ ms: number; rdbBytes: number; keys: number; session: SyncSession }> {
  let record: SyncRecord | undefined;
  const t0 = Date.now();
  const session = await SyncSession.start({
    id,
    source,
    target,
    restorePayloads: true,
    bigKeyBytes: 8 << 20,
    load: () => record,
    save: (r) => {
      record = r;
    },
    log: () => {},
  });
  while (session.status().some((s) => s.phase !== 'stream')) {
    const err = session.status().find((s) => s.lastError)?.lastError;
    if (err) throw new Error(err);
    await sleep(20);
  }
  const ms = Date.now() - t0;
  return {
    ms,
    rdbBytes: record!.shards.reduce((n, s) => n + s.state.rdbBytes, 0),
    keys: record!.shards.reduce((n, s) => n + s.state.keys, 0),
    session,
  };
}
