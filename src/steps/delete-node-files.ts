import { failedError, usageError } from '../errors.js';
import { answers } from '../redis/node-state.js';
import { nodeArg } from './args.js';
import { portClosedGuard, shellQuote } from '../hosts/copy.js';
import { cond, pass, type StepKind } from './kind.js';

interface Args { cluster: string; address: string; port: string; paths: string[] }

export const deleteNodeFilesStep: StepKind<Args> = {
  kind: 'delete-node-files',
  summary: 'Delete a stopped node\'s RDB, AOF directory and nodes.conf on its host (paths read from CONFIG GET at plan time)',
  resolve(raw, topology) {
    const { t, n } = nodeArg(raw, topology);
    const p = n.self?.persistence;
    if (!p?.dir) throw failedError('E_NODE_UNREACHABLE', `${n.address} does not answer, so its data directory is unknown`, 'start it, or delete its files by hand (deleteFiles=false)');
    const dir = p.dir.replace(/\/+$/, '');
    if (!dir.startsWith('/') || dir === '') throw usageError('E_UNSAFE_PATH', `${n.address} reports dir \`${p.dir}\`: files are deleted only under an absolute data directory`, 'delete them by hand, or pass deleteFiles=false');
    // Two nodes of this cluster on one host sharing the directory would share the files too.
    const host = (x: string) => x.slice(0, x.lastIndexOf(':'));
    const sharing = t.nodes.filter((x) => x.id !== n.id && host(x.address) === host(n.address) && x.self?.persistence.dir.replace(/\/+$/, '') === dir);
    if (sharing.length) throw usageError('E_UNSAFE_PATH', `${sharing.map((x) => x.address).join(', ')} use the same directory ${dir} as ${n.address}`, 'delete the files by hand, or pass deleteFiles=false');
    const inDir = (f: string) => (f.startsWith('/') ? f : `${dir}/${f}`);
    return { cluster: t.cluster, address: n.address, port: n.address.slice(n.address.lastIndexOf(':') + 1), paths: [p.dbfilename, p.appenddirname, p.clusterConfigFile].filter(Boolean).map(inDir) };
  },
  title: (a) => `Delete the data files of ${a.address}: ${a.paths.join(', ')}`,
  commands: (a) => [{ target: `host of ${a.address}`, command: `rm -rf -- ${a.paths.map(shellQuote).join(' ')}` }],
  destructive: (a) => `deletes ${a.address}'s data files (${a.paths.join(', ')}); they cannot be recovered`,
  async check(ctx) {
    const host = ctx.env.host(ctx.args.address);
    const up = await answers(ctx.env.pool(ctx.args.cluster), ctx.args.address);
    return [
      cond('host known', !!host, `host ${host?.name} (${host?.config.transport})`, `no inventory host lists ${ctx.args.address}'s address: add it under hosts:, or pass deleteFiles=false`),
      ctx.planning ? pass('node stopped', 'checked when the step runs; the step before stops it') : cond('node stopped', !up, `${ctx.args.address} does not answer`, `${ctx.args.address} still answers: files of a running node are not deleted`),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    if (await answers(ctx.env.pool(a.cluster), a.address)) throw failedError('E_NODE_RUNNING', `${a.address} answers again`, 'stop it before its files are deleted');
    const host = ctx.env.host(a.address)!;
    // Checked on the host itself, in the same command: a node that merely did not answer us
    // (a network blip) still listens there, and its files are not touched.
    const r = await host.run(`${portClosedGuard(a.port)} rm -rf -- ${a.paths.map(shellQuote).join(' ')}`, { timeoutMs: 60_000, signal: ctx.signal });
    if (r.exitCode === 3) throw failedError('E_NODE_RUNNING', `something still listens on port ${a.port} on host ${host.name}`, 'stop the node before its files are deleted');
    if (r.exitCode !== 0) throw failedError('E_DELETE_FAILED', `rm on host ${host.name} exited ${r.exitCode}: ${r.stderr.trim()}`, 'check the permissions on the data directory and retry');
    return { deleted: a.paths };
  },
  async verify(ctx) {
    const host = ctx.env.host(ctx.args.address)!;
    const r = await host.run(`for p in ${ctx.args.paths.map(shellQuote).join(' ')}; do [ -e "$p" ] && echo "$p"; done; true`, { timeoutMs: 30_000 });
    const left = r.stdout.trim();
    return [cond('files deleted', r.exitCode === 0 && left === '', 'none of the files exists', left ? `still there: ${left.split('\n').join(', ')}` : `could not look (exit ${r.exitCode})`)];
  },
};
