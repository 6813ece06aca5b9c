import { createHash } from 'node:crypto';
import type { NodeClient } from '../../redis/connect.js';
import type { Endpoint } from '../endpoint.js';

/**
 * Exactly-once application of the replication stream. Each target master
 * keeps, in a key of its own slots, how far into each source shard's stream
 * it has applied. A batch of commands and the new checkpoint are written by
 * one script, which Redis runs atomically: after a crash, the checkpoint on
 * a node says exactly which commands it holds, so a resumed sync skips those
 * and applies the rest once. The key lives in the target's data, so a target
 * failover that loses the last writes loses their checkpoint with them.
 *
 * ARGV: checkpoint key, checkpoint value, then each command as its argument
 * count followed by its arguments. `allow-cross-slot-keys` (Redis 7.0):
 * one node's batch touches keys of many of its slots.
 */
export const APPLY_SCRIPT = `#!lua flags=allow-cross-slot-keys
local i = 3
local failed = {}
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  local r = redis.pcall(unpack(ARGV, i + 1, i + argc))
  if type(r) == 'table' and r.err then failed[#failed + 1] = ARGV[i + 1] .. ': ' .. r.err end
  i = i + argc + 1
end
redis.call('SET', ARGV[1], ARGV[2])
return failed
`;
export const APPLY_SHA = createHash('sha1').update(APPLY_SCRIPT).digest('hex');

/** Lua's C stack takes about 8000 values: longer commands go outside the script. */
export const SCRIPT_MAX_ARGS = 7000;

export const CHECKPOINT_PREFIX = 'redis-runbook:sync:';

/** The checkpoint key of one source shard on one target master: a hash tag of one of its slots. */
export function checkpointKey(target: Endpoint, node: NodeClient, syncId: string, shard: number): string {
  for (let i = 0; i < 100000; i++) {
    const tag = String(i);
    if (target.route(Buffer.from(tag)) === node) return `${CHECKPOINT_PREFIX}{${tag}}:${syncId}:${shard}`;
  }
  throw new Error(`${node.address} owns no slot: it cannot hold a checkpoint`);
}

export interface Checkpoint {
  replid: string;
  offset: number;
}
export const formatCheckpoint = (c: Checkpoint) => `${c.replid}:${c.offset}`;
export function parseCheckpoint(v: unknown): Checkpoint | undefined {
  if (v === null || v === undefined) return undefined;
  const m = /^([0-9a-f]{40}):(\d+)$/.exec(String(v));
  return m ? { replid: m[1]!, offset: Number(m[2]) } : undefined;
}
