import { failedError, preconditionError } from '../../errors.js';
import { portClosedGuard, shellQuote } from '../../hosts/copy.js';
import { conflicts, noOtherRedisGuard, nodeFiles } from '../../hosts/node-files.js';
import { otherInstances } from './node-files-check.js';
import { clusterArg, GROUP_PARAMS } from '../args.js';
import { collectorGroup } from '../../redis/consolidate.js';
import { planStamp } from '../../redis/topology.js';
import { cond, pass, type PlanHosts, type StepKind } from '../kind.js';
import { hostOf, portOf } from '../../address.js';

/** `files`: names inside `dir` (validated: no slash, not `.` or `..`). */
interface NodeFiles {
  address: string;
  id?: string;
  port: string;
  dir: string;
  files: string[];
}
interface Args {
  cluster: string;
  nodes: NodeFiles[];
  backup: string;
}

/** The exact command line that moves one node's files aside, as the plan shows it and the step runs it. */
export function backupCommand(n: NodeFiles, backup: string): string {
  const moves = n.files
    .map((f) => {
      const src = shellQuote(f);
      const dst = shellQuote(`${backup}/${f}`);
      // A file already in the backup is never overwritten: a second copy there means
      // the node wrote new files since, and a human should look.
      return `if [ -e ${src} ]; then if [ -e ${dst} ]; then printf 'both %s and %s exist\\n' ${src} ${dst} >&2; exit 5; fi; mv -- ${src} ${dst}; fi`;
    })
    .join('; ');
  // Checked on the host in the same command; without a way to check, nothing is moved.
  return `${portClosedGuard(n.port)} ${noOtherRedisGuard(n.dir)} cd -- ${shellQuote(n.dir)} && mkdir -p -- ${shellQuote(backup)} && ${moves}`;
}

/**
 * Move a node's RDB and AOF (Redis 7's directory, Redis 6's single file)
 * aside into a backup directory next to them, keeping nodes.conf (the node's identity: id, slots, epochs). Moved, not
 * deleted: the old data can be put back by hand. Re-running finds them moved.
 */
export const backupNodeFilesStep: StepKind<Args> = {
  kind: 'backup-node-files',
  summary:
    "Move each stopped node's RDB and AOF (appendonly yes only) into a backup directory beside them; nodes.conf stays",
  params: GROUP_PARAMS,
  resolve(raw, topology) {
    const t = clusterArg({ ...raw, cluster: raw.target ?? raw.cluster ?? '' }, topology);
    const group = (raw.onlyCollector === 'true' ? collectorGroup(t, raw.pivot || undefined) : t.nodes).filter(
      (n) => n.self,
    );
    // legacyAof: on a Redis 7+ node, the old single AOF file too, which it would adopt at start
    // once its AOF directory is moved aside (and where a copy of a Redis 6 AOF lands).
    const nodes = group.map((n) => {
      const f = nodeFiles(n.address, n.self!.persistence, { nodesConf: false, legacyAof: true });
      return { address: n.address, id: n.id, port: portOf(n.address), dir: f.dir, files: f.files.map((x) => x.name) };
    });
    // Two nodes of the cluster on one host naming the same file would each move the other's.
    const host = hostOf;
    const clash = nodes.flatMap((n) =>
      conflicts(
        nodeFiles(n.address, group.find((g) => g.address === n.address)!.self!.persistence, {
          nodesConf: false,
          legacyAof: true,
        }),
        t.nodes
          .filter((x) => x.address !== n.address && host(x.address) === host(n.address) && x.self)
          .map((x) => ({ address: x.address, persistence: x.self!.persistence })),
      ),
    );
    if (clash.length)
      throw preconditionError(
        'E_UNSAFE_PATH',
        `moving the files aside would touch another node's: ${clash.join('; ')}`,
        'give each node its own data directory or file names',
      );
    return {
      cluster: t.cluster,
      nodes,
      // One name per plan (when its topology was read): a resumed run finds its own backup,
      // and a later migration onto the same target never collides with it.
      backup: `redis-runbook-backup-${planStamp(t)}`,
    };
  },
  title: (a) =>
    `Move the RDB/AOF of ${a.nodes.length} stopped nodes of ${a.cluster} into <dir>/${a.backup}/ (nodes.conf stays)`,
  commands: (a, hosts?: PlanHosts) =>
    a.nodes.map((n) => {
      const h = hosts?.host(n.address);
      return {
        target: h ? `host ${h.name}` : `host of ${n.address}`,
        command: h ? h.shown(backupCommand(n, a.backup)) : backupCommand(n, a.backup),
      };
    }),
  async check(ctx) {
    const noHost = ctx.args.nodes.filter((n) => !ctx.env.host(n.address)).map((n) => n.address);
    // Other instances the inventory knows on the same hosts (its other clusters; this one's
    // nodes were compared at plan time, and are stopped now): none may use these files.
    const problems: string[] = [];
    for (const n of ctx.args.nodes) {
      const others = await otherInstances(ctx.env, n.address, n.id, ctx.args.cluster);
      problems.push(
        ...conflicts(
          {
            address: n.address,
            dir: n.dir,
            files: n.files.map((f) => ({ kind: 'rdb', name: f, path: `${n.dir}/${f}` })),
          },
          others.known,
        ),
        ...others.unknown,
      );
    }
    return [
      cond(
        'hosts known',
        noHost.length === 0,
        'every node has an inventory host',
        `${noHost.join(', ')}: add their hosts under hosts:`,
      ),
      cond(
        'no other instance uses them',
        problems.length === 0,
        'no other inventory node on these hosts uses the files',
        `${[...new Set(problems)].join('; ')}: move the files by hand`,
      ),
      ...(ctx.planning ? [pass('checked when the step runs', 'the step before stops the nodes')] : []),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    await Promise.all(
      a.nodes.map(async (n) => {
        const host = ctx.env.host(n.address)!;
        const r = await host.run(backupCommand(n, a.backup), { timeoutMs: 120_000, signal: ctx.signal });
        if (r.exitCode !== 0)
          throw failedError(
            'E_BACKUP',
            `moving the files of ${n.address} aside on host ${host.name} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
            r.exitCode === 3
              ? 'the node is running: stop it first'
              : r.exitCode === 6
                ? 'another redis-server works in that directory: move the files by hand after checking'
                : 'look at the data directory and retry',
          );
      }),
    );
    return { backup: a.backup };
  },
  async verify(ctx) {
    return [pass('moved', `files kept in <dir>/${ctx.args.backup}/ on each host`)];
  },
};
