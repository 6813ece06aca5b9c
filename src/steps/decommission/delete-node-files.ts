import { failedError, preconditionError } from '../../errors.js';
import { answers } from '../../redis/node-state.js';
import { nodeArg, NODE_PARAMS } from '../args.js';
import { portClosedGuard, shellQuote } from '../../hosts/copy.js';
import { conflicts, noOtherRedisGuard, nodeFiles } from '../../hosts/node-files.js';
import { otherInstances } from '../files/node-files-check.js';
import { cond, pass, type PlanHosts, type StepKind } from '../kind.js';
import { hostOf, portOf } from '../../address.js';

interface Args {
  cluster: string;
  address: string;
  id: string;
  port: string;
  dir: string;
  paths: string[];
}

/**
 * The exact command line the step runs on the node's host, shown as is in the
 * plan: nothing while the port listens or another redis-server works in the
 * directory, checked on the host in the same command as the rm.
 */
export function deleteCommand(a: Pick<Args, 'port' | 'dir' | 'paths'>): string {
  return `${portClosedGuard(a.port)} ${noOtherRedisGuard(a.dir)} rm -rf -- ${a.paths.map(shellQuote).join(' ')}`;
}

export const deleteNodeFilesStep: StepKind<Args> = {
  kind: 'delete-node-files',
  summary:
    "Delete a stopped node's RDB, AOF directory (appendonly yes only) and nodes.conf on its host (paths read from CONFIG GET at plan time)",
  params: NODE_PARAMS,
  resolve(raw, topology) {
    const { t, n } = nodeArg(raw, topology);
    const p = n.self?.persistence;
    if (!p?.dir)
      throw failedError(
        'E_NODE_UNREACHABLE',
        `${n.address} does not answer, so its data directory is unknown`,
        'start it, or delete its files by hand (deleteFiles=false)',
      );
    const mine = nodeFiles(n.address, p, { nodesConf: true });
    // Nodes of this cluster are known now; the inventory's other clusters are checked live (check).
    const host = hostOf;
    const others = t.nodes
      .filter((x) => x.id !== n.id && host(x.address) === host(n.address) && x.self)
      .map((x) => ({ address: x.address, persistence: x.self!.persistence }));
    const clash = conflicts(mine, others);
    if (clash.length)
      throw preconditionError(
        'E_UNSAFE_PATH',
        `deleting ${n.address}'s files would touch another node's: ${clash.join('; ')}`,
        'delete the files by hand, or pass deleteFiles=false',
      );
    return {
      cluster: t.cluster,
      address: n.address,
      id: n.id,
      port: portOf(n.address),
      dir: mine.dir,
      paths: mine.files.map((f) => f.path),
    };
  },
  title: (a) => `Delete the data files of ${a.address}: ${a.paths.join(', ')}`,
  commands: (a, hosts?: PlanHosts) => {
    const h = hosts?.host(a.address);
    return [
      {
        target: h ? `host ${h.name}` : `host of ${a.address}`,
        command: h ? h.shown(deleteCommand(a)) : deleteCommand(a),
      },
    ];
  },
  destructive: (a) => `deletes ${a.address}'s data files (${a.paths.join(', ')}); they cannot be recovered`,
  async check(ctx) {
    const host = ctx.env.host(ctx.args.address);
    const up = await answers(ctx.env.pool(ctx.args.cluster), ctx.args.address);
    const others = await otherInstances(ctx.env, ctx.args.address, ctx.args.id);
    const clash = conflicts(
      {
        address: ctx.args.address,
        dir: ctx.args.dir,
        files: ctx.args.paths.map((p) => ({ kind: 'rdb', name: '', path: p })),
      },
      others.known,
    );
    return [
      cond(
        'host known',
        !!host,
        `host ${host?.name} (${host?.config.transport})`,
        `no inventory host lists ${ctx.args.address}'s address: add it under hosts:, or pass deleteFiles=false`,
      ),
      ctx.planning
        ? pass('node stopped', 'checked when the step runs; the step before stops it')
        : cond(
            'node stopped',
            !up,
            `${ctx.args.address} does not answer`,
            `${ctx.args.address} still answers: files of a running node are not deleted`,
          ),
      cond(
        'no other instance uses them',
        clash.length === 0 && others.unknown.length === 0,
        `none of the ${others.known.length} other inventory nodes on this host uses these paths`,
        [...clash, ...others.unknown].join('; ') + ': delete the files by hand, or pass deleteFiles=false',
      ),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    if (await answers(ctx.env.pool(a.cluster), a.address))
      throw failedError('E_NODE_RUNNING', `${a.address} answers again`, 'stop it before its files are deleted');
    const host = ctx.env.host(a.address)!;
    // Checked on the host itself, in the same command: a node that merely did not answer us
    // (a network blip) still listens there, and its files are not touched.
    const r = await host.run(deleteCommand(a), { timeoutMs: 60_000, signal: ctx.signal });
    if (r.exitCode === 3)
      throw failedError(
        'E_NODE_RUNNING',
        `something still listens on port ${a.port} on host ${host.name}`,
        'stop the node before its files are deleted',
      );
    if (r.exitCode === 6)
      throw failedError(
        'E_UNSAFE_PATH',
        `another redis-server works in ${a.dir} on host ${host.name}: ${r.stderr.trim()}`,
        'its files may be among these: delete them by hand after checking',
      );
    if (r.exitCode !== 0)
      throw failedError(
        'E_DELETE_FAILED',
        `rm on host ${host.name} exited ${r.exitCode}: ${r.stderr.trim()}`,
        'check the permissions on the data directory and retry',
      );
    return { deleted: a.paths };
  },
  async verify(ctx) {
    const host = ctx.env.host(ctx.args.address)!;
    const r = await host.run(
      `for p in ${ctx.args.paths.map(shellQuote).join(' ')}; do [ -e "$p" ] && echo "$p"; done; true`,
      { timeoutMs: 30_000 },
    );
    const left = r.stdout.trim();
    return [
      cond(
        'files deleted',
        r.exitCode === 0 && left === '',
        'none of the files exists',
        left ? `still there: ${left.split('\n').join(', ')}` : `could not look (exit ${r.exitCode})`,
      ),
    ];
  },
};
