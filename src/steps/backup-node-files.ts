import { failedError } from '../errors.js';
import { portClosedGuard, shellQuote } from '../hosts/copy.js';
import { clusterArg } from './args.js';
import { collectorGroup } from '../redis/consolidate.js';
import { planStamp } from '../redis/topology.js';
import { cond, pass, type StepKind } from './kind.js';

interface NodeFiles { address: string; port: string; dir: string; files: string[] }
interface Args { cluster: string; nodes: NodeFiles[]; backup: string }

/**
 * Move a node's RDB and AOF aside into a backup directory next to them,
 * keeping nodes.conf (the node's identity: id, slots, epochs). Moved, not
 * deleted: the old data can be put back by hand. Re-running finds them moved.
 */
export const backupNodeFilesStep: StepKind<Args> = {
  kind: 'backup-node-files',
  summary: 'Move each stopped node\'s RDB and AOF into a backup directory beside them; nodes.conf stays',
  resolve(raw, topology) {
    const t = clusterArg({ ...raw, cluster: raw.target ?? raw.cluster ?? '' }, topology);
    return {
      cluster: t.cluster,
      nodes: (raw.onlyCollector === 'true' ? collectorGroup(t, raw.pivot || undefined) : t.nodes).filter((n) => n.self).map((n) => ({
        address: n.address, port: n.address.slice(n.address.lastIndexOf(':') + 1), dir: n.self!.persistence.dir,
        files: [n.self!.persistence.dbfilename, n.self!.persistence.appenddirname].filter(Boolean),
      })),
      // One name per plan (when its topology was read): a resumed run finds its own backup,
      // and a later migration onto the same target never collides with it.
      backup: `redis-runbook-backup-${planStamp(t)}`,
    };
  },
  title: (a) => `Move the RDB/AOF of ${a.nodes.length} stopped nodes of ${a.cluster} into <dir>/${a.backup}/ (nodes.conf stays)`,
  commands: (a) => a.nodes.map((n) => ({ target: `host of ${n.address}`, command: `cd ${n.dir} && mkdir -p ${a.backup} && mv ${n.files.join(' ')} ${a.backup}/` })),
  async check(ctx) {
    const noHost = ctx.args.nodes.filter((n) => !ctx.env.host(n.address)).map((n) => n.address);
    return [
      cond('hosts known', noHost.length === 0, 'every node has an inventory host', `${noHost.join(', ')}: add their hosts under hosts:`),
      ...(ctx.planning ? [pass('checked when the step runs', 'the step before stops the nodes')] : []),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    await Promise.all(a.nodes.map(async (n) => {
      const host = ctx.env.host(n.address)!;
      const d = shellQuote(n.dir);
      const moves = n.files.map((f) => {
        const src = shellQuote(f);
        const dst = shellQuote(`${a.backup}/${f}`);
        // A file already in the backup is never overwritten: a second copy there means
        // the node wrote new files since, and a human should look.
        return `if [ -e ${src} ]; then if [ -e ${dst} ]; then printf 'both %s and %s exist\\n' ${src} ${dst} >&2; exit 5; fi; mv -- ${src} ${dst}; fi`;
      }).join('; ');
      // Checked on the host in the same command; without a way to check, nothing is moved.
      const r = await host.run(`${portClosedGuard(n.port)} cd ${d} && mkdir -p ${shellQuote(a.backup)} && ${moves}`, { timeoutMs: 120_000, signal: ctx.signal });
      if (r.exitCode !== 0) throw failedError('E_BACKUP', `moving the files of ${n.address} aside on host ${host.name} failed (exit ${r.exitCode}): ${r.stderr.trim()}`, r.exitCode === 3 ? 'the node is running: stop it first' : 'look at the data directory and retry');
    }));
    return { backup: a.backup };
  },
  async verify(ctx) {
    return [pass('moved', `files kept in <dir>/${ctx.args.backup}/ on each host`)];
  },
};
