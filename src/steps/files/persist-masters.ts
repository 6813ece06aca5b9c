import { failedError } from '../../errors.js';
import { parseInfo } from '../../redis/cluster-nodes.js';
import type { ClusterPool } from '../../redis/connect.js';
import { masters } from '../../redis/topology.js';
import { formatRanges } from '../../redis/slots.js';
import { clusterArg, CLUSTER_PARAM, COLLECTOR_PARAMS } from '../args.js';
import { shellQuote } from '../../hosts/copy.js';
import { aofName } from '../../hosts/node-files.js';
import { savedRdbKeys } from './saved-keys.js';
import { planStamp, type Topology, type TopologyNode } from '../../redis/topology.js';
import { chooseCollector } from '../../redis/consolidate.js';
import { parseFormat, type CopyFormat } from './match-shards.js';
import { cond, pass, waitFor, type StepKind } from '../kind.js';

interface Args {
  cluster: string;
  masters: Array<{ address: string; ranges: string; file: string; snapshot: string }>;
  format: CopyFormat;
  pauseWrites: boolean;
  pauseMs: number;
  timeoutMs: number;
}

/**
 * Where the saved file of a master is frozen right after its save, so that
 * what is copied is what was saved: an automatic save or a disk-based full
 * sync to a replica may rewrite dump.rdb at any time. One name per plan.
 * An AOF is the node's own layout: the directory from Redis 7, the single
 * appendonly file before (see aofLayout).
 */
export function snapshotPaths(t: Topology, n: TopologyNode, format: CopyFormat): { file: string; snapshot: string } {
  const p = n.self!.persistence;
  const dir = p.dir.replace(/\/+$/, '');
  const file = `${dir}/${format === 'rdb' ? p.dbfilename : aofName(p).name}`;
  return { file, snapshot: `${file}.redis-runbook-${planStamp(t)}` };
}

export interface PersistedShard {
  master: string;
  ranges: string;
  keys: number;
  savedAt: number;
}

const persistence = async (pool: ClusterPool, a: string) => parseInfo(await pool.node(a).text('INFO', 'persistence'));

/**
 * BGSAVE (or BGREWRITEAOF) on one master and wait until it finished well:
 * LASTSAVE after the start for an RDB (1 s resolution: the start waits for
 * the next second), the rewrite counters and status for an AOF.
 */
export async function persistOne(
  pool: ClusterPool,
  address: string,
  format: CopyFormat,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<number> {
  const node = pool.node(address);
  // "already in progress" is an answer to expect: let that one finish first.
  await waitFor(
    async () => {
      const p = await persistence(pool, address);
      return p.rdb_bgsave_in_progress === '0' && p.aof_rewrite_in_progress === '0' && p.aof_rewrite_scheduled !== '1'
        ? true
        : undefined;
    },
    { timeoutMs, intervalMs: 100, signal },
  );
  if (format === 'rdb') {
    const before = Number(await node.call('LASTSAVE'));
    while (Math.floor(Date.now() / 1000) <= before) await new Promise((r) => setTimeout(r, 50));
    await node.call('BGSAVE');
    const done = await waitFor(
      async () => {
        const p = await persistence(pool, address);
        return p.rdb_bgsave_in_progress === '0' && Number(p.rdb_last_save_time) > before ? p : undefined;
      },
      { timeoutMs, intervalMs: 100, signal },
    );
    const p = done ?? (await persistence(pool, address));
    if (p.rdb_last_bgsave_status !== 'ok')
      throw failedError(
        'E_SAVE_FAILED',
        `BGSAVE on ${address} failed (rdb_last_bgsave_status:${p.rdb_last_bgsave_status})`,
        'read the node log (disk full? permissions on dir?), fix it and retry the step',
      );
    if (!done)
      throw failedError(
        'E_SAVE_TIMEOUT',
        `BGSAVE on ${address} did not finish in ${timeoutMs} ms`,
        'retry the step; a big dataset needs a longer saveTimeoutMs',
      );
    return Number(p.rdb_last_save_time) * 1000;
  }
  // aof_rewrites (a count of rewrites done) exists from Redis 7.0; Redis 6.2 has no such field.
  // There the state alone tells: nothing was in progress before (waited above), and
  // BGREWRITEAOF sets aof_rewrite_in_progress (forked) or aof_rewrite_scheduled (behind a
  // BGSAVE) before it replies; both are 0 again only once this rewrite is done and the
  // new file renamed in place, with aof_last_bgrewrite_status saying how it went.
  const before = await persistence(pool, address);
  const count = Number(before.aof_rewrites ?? -1);
  await node.call('BGREWRITEAOF');
  const started = Date.now();
  const done = await waitFor(
    async () => {
      const p = await persistence(pool, address);
      const finished = p.aof_rewrite_in_progress === '0' && p.aof_rewrite_scheduled === '0';
      return finished && (count < 0 || Number(p.aof_rewrites) > count) ? p : undefined;
    },
    { timeoutMs, intervalMs: 100, signal },
  );
  const p = done ?? (await persistence(pool, address));
  if (p.aof_last_bgrewrite_status !== 'ok')
    throw failedError(
      'E_SAVE_FAILED',
      `BGREWRITEAOF on ${address} failed (aof_last_bgrewrite_status:${p.aof_last_bgrewrite_status})`,
      'read the node log, fix it and retry the step',
    );
  if (!done)
    throw failedError(
      'E_SAVE_TIMEOUT',
      `BGREWRITEAOF on ${address} did not finish in ${timeoutMs} ms`,
      'retry the step',
    );
  return started;
}

export const persistMastersStep: StepKind<Args> = {
  kind: 'persist-masters',
  summary:
    'BGSAVE or BGREWRITEAOF on every master and wait until each finished well; record keys per shard at that moment',
  params: {
    ...CLUSTER_PARAM,
    source: { help: 'the cluster, when the runbook names it source (takes precedence over cluster)' },
    format: { help: 'rdb (BGSAVE) or aof (BGREWRITEAOF)', default: 'rdb' },
    onlyCollector: { help: 'true: only the master that collected every slot (via)', type: 'bool', default: 'false' },
    via: COLLECTOR_PARAMS.via,
    pauseWrites: {
      help: 'true: pause client writes (CLIENT PAUSE WRITE) across the save',
      type: 'bool',
      default: 'false',
    },
    pauseMs: { help: 'longest pause (ms); it ends by itself', type: 'number', default: '60000' },
    saveTimeoutMs: { help: 'how long a save may take (ms)', type: 'number', default: '600000' },
  },
  resolve(raw, topology) {
    const t = clusterArg({ ...raw, cluster: raw.source ?? raw.cluster ?? '' }, topology);
    return {
      // onlyCollector: the master that will hold every slot by then (its ranges are all slots).
      cluster: t.cluster,
      masters: (raw.onlyCollector === 'true' ? [chooseCollector(t, raw.via || undefined)] : masters(t)).map((m) => ({
        address: m.address,
        ranges: raw.onlyCollector === 'true' ? '0-16383' : formatRanges(m.slots),
        ...snapshotPaths(t, m, parseFormat(raw.format ?? 'rdb')),
      })),
      format: parseFormat(raw.format ?? 'rdb'),
      pauseWrites: raw.pauseWrites === 'true',
      pauseMs: Number(raw.pauseMs ?? 60_000),
      timeoutMs: Number(raw.saveTimeoutMs ?? 600_000),
    };
  },
  // The masters' own account of the save (background saving started, DB saved on disk).
  logNodes: (a) => ({ cluster: a.cluster, nodes: a.masters.map((m) => m.address) }),
  title: (a) =>
    `${a.format === 'rdb' ? 'BGSAVE' : 'BGREWRITEAOF'} on ${a.masters.map((m) => m.address).join(', ')} of ${a.cluster}, then freeze the saved file (${a.format === 'rdb' ? 'hard link' : 'copy'} <file>.redis-runbook-<time>)${a.pauseWrites ? ', writes paused meanwhile (CLIENT PAUSE WRITE)' : '; writes after the save are NOT in the copy'}`,
  commands: (a) =>
    a.masters.flatMap((m) => [
      ...(a.pauseWrites
        ? [{ target: m.address, command: `CLIENT PAUSE ${a.pauseMs} WRITE`, when: 'before the save' }]
        : []),
      {
        target: m.address,
        command: `DBSIZE; ${a.format === 'rdb' ? 'BGSAVE' : 'BGREWRITEAOF'}; INFO persistence`,
        when: 'until done',
      },
      ...(a.pauseWrites ? [{ target: m.address, command: 'CLIENT UNPAUSE', when: 'after the save' }] : []),
    ]),
  async check(ctx) {
    const pool = ctx.env.pool(ctx.args.cluster);
    const down: string[] = [];
    for (const m of ctx.args.masters)
      await pool
        .node(m.address)
        .call('PING')
        .catch(() => down.push(m.address));
    return [
      cond(
        'masters answer',
        down.length === 0,
        `all ${ctx.args.masters.length} masters answer`,
        `${down.join(', ')} do not answer`,
      ),
      pass(
        'writes after the save',
        ctx.args.pauseWrites
          ? `writes are paused up to ${ctx.args.pauseMs} ms during the save, so each shard's copy is exact as of the save`
          : 'writes that reach the source after its save are not in the copy (pauseWrites=true pauses them during the save)',
      ),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    const shards: PersistedShard[] = await Promise.all(
      a.masters
        .map(async (m) => {
          if (a.pauseWrites) await pool.node(m.address).call('CLIENT', 'PAUSE', a.pauseMs, 'WRITE');
          try {
            const keys = Number(await pool.node(m.address).call('DBSIZE'));
            const savedAt = await persistOne(pool, m.address, a.format, a.timeoutMs, ctx.signal);
            // Freeze it before anything can rewrite it: a hard link for an RDB (Redis replaces
            // dump.rdb by rename, the link keeps the saved inode), a real copy of an AOF (a Redis 7
            // incr file, like Redis 6's single file, is appended in place), taken while writes
            // are still paused. `cp -a` copies a directory or a single file alike.
            const host = ctx.env.host(m.address);
            if (!host)
              throw failedError(
                'E_NO_HOST',
                `no inventory host for ${m.address}: its saved file cannot be frozen for the copy`,
                'add its host under hosts:',
              );
            const [f, snap] = [shellQuote(m.file), shellQuote(m.snapshot)];
            const r = await host.run(
              a.format === 'rdb' ? `ln -f -- ${f} ${snap}` : `rm -rf -- ${snap} && cp -a -- ${f} ${snap}`,
              { timeoutMs: a.timeoutMs, signal: ctx.signal },
            );
            if (r.exitCode !== 0)
              throw failedError(
                'E_SNAPSHOT',
                `freezing ${m.file} on host ${host.name} failed: ${r.stderr.trim()}`,
                'check the data directory (space, permissions) and retry the step',
              );
            return { master: m.address, ranges: m.ranges, keys, savedAt, snapshot: m.snapshot };
          } finally {
            if (a.pauseWrites)
              await pool
                .node(m.address)
                .call('CLIENT', 'UNPAUSE')
                .catch(() => undefined);
          }
        })
        .map(async (shard) => {
          // Writes that are not paused go on between the DBSIZE and the fork: the frozen file's own
          // count (read once writes flow again) is the exact one the copy must hold.
          const s = await shard;
          const saved = a.format === 'rdb' ? await savedRdbKeys(ctx.env.host(s.master)!, s.snapshot) : undefined;
          return { ...s, keys: saved ?? s.keys };
        }),
    );
    ctx.log(`persisted ${shards.map((s) => `${s.master} (${s.keys} keys)`).join(', ')}`);
    return { shards, format: a.format };
  },
  async verify(ctx) {
    const pool = ctx.env.pool(ctx.args.cluster);
    const bad: string[] = [];
    for (const m of ctx.args.masters) {
      const p = await persistence(pool, m.address);
      const ok = ctx.args.format === 'rdb' ? p.rdb_last_bgsave_status === 'ok' : p.aof_last_bgrewrite_status === 'ok';
      if (!ok) bad.push(m.address);
    }
    return [
      cond('saved', bad.length === 0, 'every master reports its last save ok', `last save not ok on ${bad.join(', ')}`),
    ];
  },
};
