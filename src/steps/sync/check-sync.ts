import { describeServer, holdsFieldTtls, serverIdentity, type ServerIdentity } from '../../redis/server-identity.js';
import { openEndpoint, type Endpoint } from '../../data/endpoint.js';
import { parseInfo, keysFromInfo, fieldTtlKeysFromInfo } from '../../redis/cluster-nodes.js';
import { checkShakeBinary } from '../../data/engines/redis-shake.js';
import { RunbookError } from '../../errors.js';
import { syncArgs, type SyncArgs, SYNC_PARAMS } from './sync-args.js';
import { cond, fail, pass, onlyReads, type Condition, type StepKind } from '../kind.js';
import { shakeLimitsCondition, zsetPrecisionCondition } from './shake-limits.js';

interface NodeFacts {
  address: string;
  /** The Redis command set it speaks (Valkey 8.0: 7.2.4), which is what a sync must match. */
  version: string;
  usedMemory: number;
  maxmemory: number;
  policy: string;
  backlog: number;
  keys: number;
  fieldTtlKeys: number;
  identity: ServerIdentity;
}

async function facts(ep: Endpoint): Promise<NodeFacts[]> {
  return Promise.all(
    ep.masters.map(async (m) => {
      const info = parseInfo(await m.text('INFO', 'all'));
      return {
        address: m.address,
        version: info.redis_version ?? '0',
        usedMemory: Number(info.used_memory ?? 0),
        maxmemory: Number(info.maxmemory ?? 0),
        policy: info.maxmemory_policy ?? 'noeviction',
        backlog: Number(info.repl_backlog_size ?? 0),
        keys: keysFromInfo(info),
        // Redis 7.4: keys with at least one hash field that has its own TTL (HEXPIRE).
        fieldTtlKeys: fieldTtlKeysFromInfo(info),
        // What it really is (Valkey by its own version), for messages and for what it can hold.
        identity: serverIdentity(info),
      };
    }),
  );
}

const major = (v: string) => v.split('.').slice(0, 2).map(Number) as [number, number];
const older = (a: string, b: string) => {
  const [x, y] = [major(a), major(b)];
  return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]);
};
const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/**
 * The target must run what the source replicates: a version no older, and
 * Redis 7+ for the built-in psync engine's exactly-once apply.
 */
function versionConditions(a: SyncArgs, s: NodeFacts[], t: NodeFacts[]): Condition[] {
  const out: Condition[] = [];
  const newest = [...s].sort((x, y) => (older(x.version, y.version) ? 1 : -1))[0]!;
  const oldest = [...t].sort((x, y) => (older(x.version, y.version) ? -1 : 1))[0]!;
  const [newestSource, oldestTarget] = [newest.version, oldest.version];
  // Valkey speaks an older Redis's commands than its own version number says: show both.
  const shown = (f: NodeFacts) =>
    f.identity.flavor === 'redis'
      ? describeServer(f.identity)
      : `${describeServer(f.identity)} (Redis ${f.version} commands)`;
  out.push(
    cond(
      'target version',
      !older(oldestTarget, newestSource),
      `target ${shown(oldest)} >= source ${shown(newest)}`,
      `the target runs ${shown(oldest)}, older than the source's ${shown(newest)}: commands the source replicates may not exist there; upgrade the target first`,
    ),
  );
  if (a.engine === 'builtin' && a.mode === 'psync') {
    out.push(
      cond(
        'target runs Redis 7+',
        major(oldestTarget)[0] >= 7,
        'each batch and its checkpoint are applied by one script (exactly once across a resume)',
        `the target runs ${oldestTarget}: the exactly-once apply needs Redis 7's allow-cross-slot-keys scripts; upgrade the target or use mode=scan`,
      ),
    );
  }
  return out;
}

/**
 * Hash fields with their own TTL (Redis 7.4 HEXPIRE) exist only on Redis 7.4+:
 * a target without them cannot hold those keys as they are (Valkey 8.0 and
 * Redis 7.2 refuse the RDB 12 payloads and the HPEXPIREAT the source
 * replicates). The built-in engine carries them in both modes: scan by DUMP
 * and RESTORE, psync by RESTORE of the full sync's payloads (or HSET then
 * HPEXPIREAT when it rebuilds a key) and by applying the HPEXPIREAT, HPERSIST
 * and HDEL the source replicates. RedisShake is not known to carry them.
 * Refused here, before anything is copied, with the count.
 */
function fieldTtlConditions(a: SyncArgs, s: NodeFacts[], t: NodeFacts[]): Condition[] {
  const keys = s.reduce((n, x) => n + x.fieldTtlKeys, 0);
  if (!keys) return [pass('hash-field TTLs', 'no source key has hash fields with their own TTL')];
  const without = t.filter((x) => !holdsFieldTtls(x.identity));
  if (without.length)
    return [
      fail(
        'hash-field TTLs',
        `${keys} source key(s) have hash fields with their own TTL (Redis 7.4 HEXPIRE); ` +
          `${without.map((x) => `${x.address} (${describeServer(x.identity)})`).join(', ')} cannot hold them: ` +
          'upgrade the target to Redis 7.4+, or remove the field TTLs (HPERSIST) first',
      ),
    ];
  if (a.engine !== 'builtin')
    return [
      fail(
        'hash-field TTLs',
        `${keys} source key(s) have hash fields with their own TTL: only the built-in engine carries them ` +
          '(engine=builtin, mode=psync or mode=scan)',
      ),
    ];
  return [
    pass(
      'hash-field TTLs',
      a.mode === 'scan'
        ? `${keys} key(s) with hash-field TTLs, carried by DUMP and RESTORE`
        : `${keys} key(s) with hash-field TTLs, carried by the full sync and the replicated HPEXPIREAT/HPERSIST/HDEL`,
    ),
  ];
}

/** The target must have room for the source's data and never evict what was synced. */
function memoryConditions(s: NodeFacts[], t: NodeFacts[]): Condition[] {
  const used = s.reduce((n, x) => n + x.usedMemory, 0);
  const limited = t.every((x) => x.maxmemory > 0);
  const room = t.reduce((n, x) => n + x.maxmemory - x.usedMemory, 0);
  const evicting = t.filter((x) => x.maxmemory > 0 && x.policy !== 'noeviction');
  return [
    cond(
      'target memory',
      !limited || room >= used * 1.1,
      limited
        ? `${mb(room)} free under maxmemory for the source's ${mb(used)}`
        : `no maxmemory on the target; the source uses ${mb(used)}`,
      `the target has ${mb(room)} free under maxmemory, the source uses ${mb(used)} (+10%): raise maxmemory or add masters first`,
    ),
    cond(
      'target never evicts',
      !evicting.length,
      'maxmemory-policy noeviction (or no maxmemory) on every target master',
      `${evicting.map((x) => `${x.address}: ${x.policy}`).join(', ')}: the target could evict synced keys (and the sync's checkpoints) under memory pressure; set maxmemory-policy noeviction for the migration`,
    ),
  ];
}

/** The RedisShake engine runs a local binary: it must be there and executable. */
function shakeBinaryCondition(a: SyncArgs): Condition {
  try {
    checkShakeBinary(a.shakeBinary);
    return pass('redis-shake binary', `${a.shakeBinary} is executable`);
  } catch (err) {
    return fail(
      'redis-shake binary',
      err instanceof RunbookError ? `${err.message} (${err.remedy})` : (err as Error).message,
    );
  }
}

/**
 * The preconditions of a live sync, read-only: both sides reachable, the
 * target a cluster that can take the source's commands (its version, the
 * Redis 7 script the exactly-once apply needs), room for the data, what the
 * target holds now, and how much replication backlog a resume can count on.
 */
export const checkSyncStep: StepKind<SyncArgs> = {
  kind: 'check-sync',
  summary: 'Check that a live sync from the source into the target can run',
  params: SYNC_PARAMS,
  resolve: syncArgs,
  title: (a) =>
    `Check that ${a.source} can be synced into ${a.target} (${a.engine === 'builtin' ? `built-in engine, ${a.mode} mode` : `RedisShake ${a.shakeFormat}`})`,
  commands: (a) => [
    {
      target: `every master of ${a.source} and ${a.target}`,
      command: 'INFO all (versions, memory, keys, replication backlog)',
    },
    ...(a.engine === 'redis-shake'
      ? [
          { target: 'this machine', command: `test -x ${a.shakeBinary ?? '(shakeBinary not given)'}` },
          ...(a.shakeFormat === 'v4'
            ? [
                {
                  target: `every master of ${a.source}`,
                  command: 'SCAN TYPE zset + ZRANGE WITHSCORES (scores beyond 6 decimals; at most 10000 sets)',
                },
              ]
            : []),
        ]
      : []),
  ],
  async check(ctx) {
    const a = ctx.args;
    const out: Condition[] = [];
    let source: Endpoint;
    let target: Endpoint;
    try {
      source = await openEndpoint(ctx.env.pool(a.source));
    } catch (err) {
      return [fail('source reachable', (err as Error).message)];
    }
    try {
      target = await openEndpoint(ctx.env.pool(a.target));
    } catch (err) {
      return [fail('target reachable', (err as Error).message)];
    }
    out.push(pass('source reachable', `${source.name}: ${source.kind}, ${source.masters.length} master(s)`));
    out.push(
      cond(
        'target is a cluster',
        target.kind === 'cluster',
        `${target.name}: ${target.masters.length} masters, every slot covered`,
        `${target.name} is a standalone server; this runbook syncs into a cluster`,
      ),
    );
    const [s, t] = await Promise.all([facts(source), facts(target)]);
    out.push(...versionConditions(a, s, t));
    out.push(...fieldTtlConditions(a, s, t));
    out.push(...memoryConditions(s, t));
    const targetKeys = t.reduce((n, x) => n + x.keys, 0);
    out.push(
      pass(
        'target keys',
        targetKeys === 0
          ? 'the target is empty'
          : `the target holds ${targetKeys} keys: those in the synced slots (all of them) are deleted before the full sync; the start step asks first`,
      ),
    );
    const backlog = Math.min(...s.map((x) => x.backlog));
    out.push(
      pass(
        'resume window',
        `a cut-off sync continues without a full sync while the source's writes since then fit its replication backlog (repl-backlog-size ${mb(backlog)} on the smallest master)`,
      ),
    );
    if (a.mode === 'scan')
      out.push(
        pass(
          'scan mode',
          'a copy as of the scan (SCAN + DUMP + RESTORE): writes made after a key was copied are not carried; stop writes on the source before the copy for an exact one',
        ),
      );
    if (a.engine === 'redis-shake') {
      out.push(shakeBinaryCondition(a), shakeLimitsCondition());
      const pool = ctx.env.pool(a.source);
      if (a.shakeFormat === 'v4')
        out.push(await zsetPrecisionCondition(source, (t, c, args) => pool.recordSummary(t, c, args)));
    }
    return out;
  },
  // The conditions are the step: the engine evaluates them before `run`, and stops on a failed one.
  run: async () => null,
  verify: onlyReads,
};
