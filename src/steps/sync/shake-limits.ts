import type { Endpoint } from '../../data/endpoint.js';
import { fail, pass, type Condition } from '../kind.js';

/**
 * What engine=redis-shake (v4) does not do that the built-in engine does, said
 * in the plan so the operator chooses knowingly. Seen with RedisShake v4.2.0.
 */
export function shakeLimitsCondition(): Condition {
  return pass(
    'redis-shake limits',
    'WARNING, RedisShake does less than engine=builtin: ' +
      '(1) no partial resync: a restart or a resumed run is a new full sync (the target emptied and loaded again); ' +
      '(2) it does not follow a source failover: its link to the old master breaks, it exits, and the run stops ' +
      '(retry = a new full sync); ' +
      '(3) not exactly-once: the RDB is written as type commands and a restart replays, so only a comparison ' +
      'after cut-over proves the copy; ' +
      '(4) v4.2.0 writes sorted-set scores of the full sync with 6 decimals (checked below)',
  );
}

/** Where v4.2.0's `%f` (6 decimals) changes a score: the score is not exactly its 6-decimal rounding. */
export function loosesPrecision(score: string): boolean {
  const n = Number(score);
  if (!Number.isFinite(n) || Math.abs(n) >= 1e21) return false; // inf, and integers too big to have a fraction
  return Number(n.toFixed(6)) !== n;
}

/** How much of the source the plan reads to look for such scores. */
export const ZSET_SAMPLE = { zsets: 10_000, members: 1000 };

/**
 * Sorted sets whose scores RedisShake v4.2.0's full sync would change (it
 * writes them with 6 decimals: 981.17049131542444 arrives as 981.170491).
 * A FAIL, not a warning: nothing says so until the comparison after
 * cut-over, when clients may already use the target, and engine=builtin
 * copies them exactly. Reads at most ZSET_SAMPLE (SCAN TYPE zset, ZRANGE
 * WITHSCORES); a source with more zsets gets a warning that the rest was
 * not read.
 */
export async function zsetPrecisionCondition(
  source: Endpoint,
  summary?: (target: string, command: string, args: string[]) => void,
): Promise<Condition> {
  let read = 0;
  for (const m of source.masters) {
    // Pipelined: keys and scores stay Buffers (binary keys), and the reads are summed up in one audit event.
    let cursor = '0';
    let here = 0;
    do {
      const [[err, page]] = (await m.pipeline([['SCAN', cursor, 'COUNT', 1000, 'TYPE', 'zset']])) as [
        [Error | null, [Buffer, Buffer[]]],
      ];
      if (err) throw err;
      cursor = String(page[0]);
      const keys = page[1].slice(0, ZSET_SAMPLE.zsets - read);
      const replies = await m.pipeline(
        keys.map((k) => ['ZRANGE', k, 0, ZSET_SAMPLE.members - 1, 'WITHSCORES'] as const),
      );
      read += keys.length;
      here += keys.length;
      for (const [i, [e, flat]] of replies.entries()) {
        const lossy = e ? undefined : (flat as Buffer[]).find((v, j) => j % 2 === 1 && loosesPrecision(String(v)));
        if (lossy === undefined) continue;
        summary?.(m.address, 'SCAN+ZRANGE', [`${here} sorted sets`]);
        return fail(
          'zset score precision',
          `${m.address}: sorted set ${JSON.stringify(String(keys[i])).slice(0, 80)} has score ${lossy}, which ` +
            `RedisShake v4.2.0 writes as ${Number(String(lossy)).toFixed(6)} (6 decimals): the target would differ. ` +
            'Use engine=builtin (it copies scores exactly), or a RedisShake with the fix (upstream PR #940)',
        );
      }
    } while (cursor !== '0' && read < ZSET_SAMPLE.zsets);
    summary?.(m.address, 'SCAN+ZRANGE', [`${here} sorted sets`]);
    if (read >= ZSET_SAMPLE.zsets) break;
  }
  return pass(
    'zset score precision',
    read >= ZSET_SAMPLE.zsets
      ? `WARNING: the first ${read} sorted sets read have no score beyond 6 decimals, the rest were not read: ` +
          "RedisShake v4.2.0 would round any such score in the others (compare after cut-over; engine=builtin doesn't)"
      : `${read} sorted set(s) read: no score has more than 6 decimals, which RedisShake v4.2.0 keeps`,
  );
}
