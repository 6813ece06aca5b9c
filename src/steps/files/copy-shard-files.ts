import { SOURCE_TARGET_PARAMS, COLLECTOR_PARAMS } from '../args.js';
import { Cleanup } from '../../engine/cleanup.js';
import { failedError, preconditionError } from '../../errors.js';
import { copyCommandLines, sameDigest, shellQuote } from '../../hosts/copy.js';
import { hostOf } from '../../hosts/host.js';
import { pairShards } from '../../redis/pairing.js';
import { snapshotPaths } from './persist-masters.js';
import { chooseCollector } from '../../redis/consolidate.js';
import { refusesConnections } from '../../redis/node-state.js';
import { parseFormat, sourceAndTarget, type CopyFormat } from './match-shards.js';
import { aofCopy } from './aof-copy.js';
import { cond, pass, throwIfStopped, type Condition, type StepKind, type StepRunContext } from '../kind.js';
import { inParallel } from '../in-parallel.js';

interface FileCopy {
  ranges: string;
  from: { address: string; path: string };
  to: { address: string; path: string };
  kind: 'file' | 'dir';
  /** On the target's host, a path that must not exist at the copy (a single-file AOF into Redis 7+: aofCopy). */
  mustBeAbsent?: string;
  /** Why this pair cannot be copied (a Redis 7 AOF to Redis 6); match-shards refuses the plan for it. */
  refused?: string;
}
interface Args {
  source: string;
  target: string;
  format: CopyFormat;
  copies: FileCopy[];
}

const join = (dir: string, f: string) => (f.startsWith('/') ? f : `${dir.replace(/\/+$/, '')}/${f}`);

/**
 * The copies whose target would not load them, in words: a pair that cannot be copied at all, or
 * a path that must be gone (a Redis 7+ target's AOF directory, which would win over the copied
 * single file at start and leave the node empty) and is there, or cannot be looked at.
 */
async function unloadable(ctx: StepRunContext<Args>): Promise<string[]> {
  const out: string[] = [];
  for (const c of ctx.args.copies) {
    if (c.refused) out.push(`${c.from.address} -> ${c.to.address}: ${c.refused}`);
    if (!c.mustBeAbsent) continue;
    const host = ctx.env.host(c.to.address);
    const r = await host?.read(`if [ -e ${shellQuote(c.mustBeAbsent)} ]; then echo present; else echo absent; fi`);
    if (r?.exitCode !== 0 || r.stdout.trim() !== 'absent')
      out.push(
        r?.stdout.trim() === 'present'
          ? `${c.to.address}: ${c.mustBeAbsent} exists and would be loaded instead of the copied ${c.to.path}`
          : `${c.to.address}: whether ${c.mustBeAbsent} exists could not be read on its host`,
      );
  }
  return out;
}

async function compare(ctx: StepRunContext<Args>, c: FileCopy, signal = ctx.signal) {
  const [src, dst] = await Promise.all([
    ctx.env.files.digest(c.from.address, c.from.path, c.kind, signal),
    ctx.env.files.digest(c.to.address, c.to.path, c.kind, signal),
  ]);
  const bytes = src ? [...src.values()].reduce((s, v) => s + v.size, 0) : 0;
  return { src, dst, same: sameDigest(src, dst), bytes };
}

export const copyShardFilesStep: StepKind<Args> = {
  kind: 'copy-shard-files',
  summary:
    "Copy each source master's RDB (or AOF: Redis 7's directory, Redis 6's single file) to its target master, " +
    'verified by size and SHA-256 on both ends',
  params: { ...SOURCE_TARGET_PARAMS, ...COLLECTOR_PARAMS, format: { help: 'rdb or aof', default: 'rdb' } },
  resolve(raw, topology) {
    const { source, target } = sourceAndTarget(raw, topology);
    const format = parseFormat(raw.format ?? 'rdb');
    if (raw.consolidated === 'true') {
      // One file: the source master that collected every slot, to the target's collecting master.
      const v = chooseCollector(source, raw.via || undefined);
      const c = chooseCollector(target, raw.collector || undefined);
      const t = c.self!.persistence;
      return {
        source: source.cluster,
        target: target.cluster,
        format,
        copies: [
          {
            ranges: '0-16383',
            from: { address: v.address, path: snapshotPaths(source, v, 'rdb').snapshot },
            to: { address: c.address, path: join(t.dir, t.dbfilename) },
            kind: 'file',
          },
        ],
      };
    }
    const down = [...source.nodes, ...target.nodes]
      .filter((n) => n.role === 'master' && n.slots.length > 0 && !n.self)
      .map((n) => n.address);
    if (down.length)
      throw preconditionError(
        'E_NODE_UNREACHABLE',
        `${down.join(', ')} do not answer, so where their files live is unknown`,
        'start them, then make the plan again',
      );
    const copies = pairShards(source, target).map((p): FileCopy => {
      // From the copy frozen right after the save (see persist-masters), to the target's own file name.
      const sn = source.nodes.find((n) => n.id === p.source.id)!;
      const from = { address: p.source.address, path: snapshotPaths(source, sn, format).snapshot };
      const t = target.nodes.find((n) => n.id === p.target.id)!.self!.persistence;
      if (format === 'rdb')
        return {
          ranges: p.ranges,
          from,
          to: { address: p.target.address, path: join(t.dir, t.dbfilename) },
          kind: 'file',
        };
      // An AOF as each side keeps it (Redis 6: one file; 7+: a directory). A pair that cannot be
      // copied stays in the plan, marked: match-shards refuses the plan and names both servers.
      const a = aofCopy(sn.self!.persistence, t);
      return a.ok
        ? {
            ranges: p.ranges,
            from,
            to: { address: p.target.address, path: join(t.dir, a.name) },
            kind: a.kind,
            ...(a.mustBeAbsent ? { mustBeAbsent: a.mustBeAbsent } : {}),
          }
        : {
            ranges: p.ranges,
            from,
            to: { address: p.target.address, path: join(t.dir, t.appendfilename) },
            kind: 'file',
            refused: `the source writes ${a.writes}, the target reads ${a.reads}`,
          };
    });
    return { source: source.cluster, target: target.cluster, format, copies };
  },
  title: (a) => {
    const what =
      a.format === 'rdb' ? 'RDB files' : a.copies.every((c) => c.kind === 'dir') ? 'AOF directories' : 'AOF files';
    const adopt = a.copies.some((c) => c.mustBeAbsent)
      ? ' (single-file AOFs: each Redis 7+ target moves its file into a new AOF directory when it starts)'
      : '';
    return `Copy ${a.copies.length} ${what} to the target masters, each verified by size and SHA-256${adopt}`;
  },
  // `staged`: a copy between two remote hosts went through the runner and is between its two hops (hosts/copy.ts).
  failpoints: ['staged', 'copied'],
  commands: (a, hosts) =>
    a.copies.flatMap((c) => {
      const src = hosts?.host(c.from.address);
      const dst = hosts?.host(c.to.address);
      if (!src || !dst)
        return [
          {
            target: `host of ${c.to.address}`,
            command: `rsync ${c.from.path} (host of ${c.from.address}) -> ${c.to.path}; sha256sum on both ends`,
            when: 'unless it already matches',
          },
        ];
      // Exactly the rsync command lines the copy runs (and journals), from this machine.
      const lines = copyCommandLines(
        { host: src.config, target: hostOf(c.from.address), path: c.from.path },
        { host: dst.config, target: hostOf(c.to.address), path: c.to.path },
        c.kind,
      );
      return lines.map((l) => ({
        target: 'this machine',
        command: l,
        when: 'unless the SHA-256 of both ends already match',
      }));
    }),
  async check(ctx) {
    if (ctx.planning)
      return [pass('checked when the step runs', 'the steps before save the source and stop the target')];
    const pool = ctx.env.pool(ctx.args.target);
    const running: string[] = [];
    for (const c of ctx.args.copies) if (!(await refusesConnections(pool, c.to.address))) running.push(c.to.address);
    const bad = await unloadable(ctx);
    return [
      cond(
        'target masters stopped',
        running.length === 0,
        'no target master is running',
        `${running.join(', ')} still accept connections (running, loading, or unknown): their files are not replaced under them`,
      ),
      cond('targets load the copies', bad.length === 0, 'each target loads the file copied to it', bad.join('; ')),
    ];
  },
  async run(ctx) {
    // Before any copy (not after some): a target that would not load its copy stops the step here.
    const bad = await unloadable(ctx);
    if (bad.length)
      throw failedError(
        'E_AOF_LAYOUT',
        `the copies would not load on the target: ${bad.join('; ')}`,
        'move the AOF directory named aside (the backup step does) and retry the step; ' +
          'a Redis 7 AOF does not load on Redis 6: upgrade the target to Redis 7 or later first',
      );
    // Figures by whole files (sizes known from the digests): a shard's bytes count when its copy is verified.
    const bytes = { done: 0, total: 0, started: Date.now() };
    const figures = () => {
      const secs = (Date.now() - bytes.started) / 1000;
      const bytesPerSec = secs > 0 ? Math.round(bytes.done / secs) : undefined;
      return { unit: 'bytes' as const, done: bytes.done, total: bytes.total, bytesPerSec, phase: 'copy' };
    };
    // The shards are copied in parallel: each pair is its own pair of hosts in production.
    const out = await inParallel(ctx.args.copies, ctx.signal, async (c, signal) => {
      throwIfStopped(signal);
      let cmp = await compare(ctx, c, signal);
      if (!cmp.src)
        throw failedError(
          'E_SOURCE_FILE_MISSING',
          `${c.from.path} does not exist on the host of ${c.from.address}`,
          'the save did not write it where CONFIG GET dir says: retry the persist step, or look at the source node',
        );
      // A resumed copy that already matches is not copied again.
      bytes.total += cmp.bytes;
      if (cmp.same) {
        bytes.done += cmp.bytes;
        return { ranges: c.ranges, bytes: cmp.bytes, copied: false };
      }
      // However long ago the check ran: never replace the files of a node that accepts connections.
      if (!(await refusesConnections(ctx.env.pool(ctx.args.target), c.to.address)))
        throw failedError(
          'E_NODE_RUNNING',
          `${c.to.address} accepts connections (or does not answer, asked 3 times): its files are not replaced under it`,
          'stop it (the stop step) and retry; if it is stopped, check the network between this machine and its host',
        );
      ctx.progress(
        `copying ${c.from.path} -> ${c.to.address}:${c.to.path} (${Math.round(cmp.bytes / 1e6)} MB)`,
        figures(),
      );
      await ctx.env.files.copy(c.from, c.to, c.kind, signal, {
        cleanup: new Cleanup(ctx.state),
        failpoint: ctx.failpoint,
      });
      ctx.failpoint('copied');
      cmp = await compare(ctx, c, signal);
      if (!cmp.same) {
        throw failedError(
          'E_CHECKSUM',
          `the copy of ${c.from.path} to ${c.to.address}:${c.to.path} does not match the source (size or SHA-256)`,
          'the target was not started; retry the step (it copies again from the frozen copy of the save). A mismatch that repeats means a disk or network problem between the hosts',
        );
      }
      bytes.done += cmp.bytes;
      ctx.progress(`${c.ranges}: copied and verified`, figures());
      ctx.log(`${c.ranges}: ${Math.round(cmp.bytes / 1e3)} kB copied and verified`);
      return { ranges: c.ranges, bytes: cmp.bytes, copied: true };
    });
    return { copies: out };
  },
  async verify(ctx) {
    const bad: string[] = [];
    for (const c of ctx.args.copies) if (!(await compare(ctx, c)).same) bad.push(`${c.to.address}:${c.to.path}`);
    const out: Condition[] = [
      cond(
        'copies match',
        bad.length === 0,
        `all ${ctx.args.copies.length} copies match their source (size and SHA-256)`,
        `differ: ${bad.join(', ')}`,
      ),
    ];
    return out;
  },
};
