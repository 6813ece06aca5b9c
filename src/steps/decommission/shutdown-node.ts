import { failedError, messageOf } from '../../errors.js';
import { parseClusterNodes, isMaster } from '../../redis/cluster-nodes.js';
import { answers } from '../../redis/node-state.js';
import { nodeArg, NODE_PARAMS } from '../args.js';
import { cond, pass, serviceCommand, waitFor, type StepKind } from '../kind.js';

interface Args {
  cluster: string;
  address: string;
  id: string;
  nodes: string[];
  timeoutMs: number;
}

export const shutdownNodeStep: StepKind<Args> = {
  kind: 'shutdown-node',
  summary: "Stop a node for good: its host's service.stop when the inventory has one, else SHUTDOWN; data files stay",
  params: {
    ...NODE_PARAMS,
    stopTimeoutMs: { help: 'how long the node may take to stop (ms)', type: 'number', default: '60000' },
  },
  resolve(raw, topology) {
    const { t, n } = nodeArg(raw, topology);
    return {
      cluster: t.cluster,
      address: n.address,
      id: n.id,
      nodes: t.nodes.map((x) => x.address),
      timeoutMs: Number(raw.stopTimeoutMs ?? 60_000),
    };
  },
  title: (a) => `Stop ${a.address} (service.stop of its host, or SHUTDOWN)`,
  settles: (a) => [{ cluster: a.cluster, tolerate: [a.address, a.id] }],
  // Forgotten by the others by now: only its own log speaks of its shutdown.
  logNodes: (a) => ({ cluster: a.cluster, nodes: [a.address] }),
  commands: (a, hosts) => [
    serviceCommand(hosts, a.address, 'stop', { target: a.address, command: 'SHUTDOWN' }, 'unless it is already down'),
  ],
  destructive: (a) => `shuts ${a.address} down`,
  async check(ctx) {
    const a = ctx.args;
    const host = ctx.env.host(a.address);
    const how = host?.service('stop');
    const out = [
      pass('how', how ? `host ${host!.name}: \`${how}\`` : `SHUTDOWN (no service.stop for this node in the inventory)`),
    ];
    if (ctx.planning)
      return [...out, pass('checked when the step runs', 'the steps before this one take the node out of the cluster')];
    // Whatever was skipped before (a failed forget or slot move), never stop a node that still
    // serves slots or feeds a replica.
    const pool = ctx.env.pool(a.cluster);
    await ctx.env.consensus(a.cluster);
    const owning: string[] = [];
    const feeding: string[] = [];
    for (const n of a.nodes) {
      const view = await pool
        .node(n)
        .text('CLUSTER', 'NODES')
        .then(parseClusterNodes)
        .catch(() => undefined);
      const line = view?.find((l) => l.id === a.id);
      if (line && isMaster(line) && line.slots.length > 0) owning.push(n);
      for (const r of view?.filter((l) => l.masterId === a.id && !l.flags.includes('fail')) ?? [])
        feeding.push(r.address);
    }
    return [
      ...out,
      cond(
        'owns no slots',
        owning.length === 0,
        `no node sees ${a.address} owning slots`,
        `${owning.join(', ')} still see ${a.address} owning slots: move them or demote it first`,
      ),
      cond(
        'no replica follows it',
        feeding.length === 0,
        'no node replicates it',
        `${[...new Set(feeding)].join(', ')} replicate it`,
      ),
    ];
  },
  async run(ctx) {
    const a = ctx.args;
    const pool = ctx.env.pool(a.cluster);
    if (!(await answers(pool, a.address))) return { alreadyDown: true };
    const host = ctx.env.host(a.address);
    const stop = host?.service('stop');
    if (host && stop) {
      const r = await host.run(stop, { timeoutMs: a.timeoutMs, signal: ctx.signal });
      if (r.exitCode !== 0)
        throw failedError(
          'E_STOP_FAILED',
          `the stop command on host ${host.name} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`,
          `check hosts.${host.name}.service.stop`,
        );
    } else {
      try {
        await pool.node(a.address).call('SHUTDOWN');
      } catch (err) {
        // Closed: the normal reply. Timed out: saving; the wait below tells.
        if (!/unreachable|closed|ECONNRESET|timed? ?out/i.test(messageOf(err)))
          throw failedError(
            'E_SHUTDOWN_REFUSED',
            `SHUTDOWN on ${a.address} failed: ${messageOf(err)}`,
            'read the node log (SHUTDOWN refuses when it cannot save); fix it and retry the step',
          );
      }
    }
    const gone = await waitFor(async () => ((await answers(pool, a.address)) ? undefined : true), {
      timeoutMs: a.timeoutMs,
      intervalMs: 50,
      signal: ctx.signal,
    });
    if (!gone)
      throw failedError(
        'E_STILL_RUNNING',
        `${a.address} still answers ${a.timeoutMs} ms after the stop`,
        'look at the node and retry the step',
      );
    return { via: stop ? 'service.stop' : 'SHUTDOWN' };
  },
  async verify(ctx) {
    const up = await answers(ctx.env.pool(ctx.args.cluster), ctx.args.address);
    return [cond('node stopped', !up, `${ctx.args.address} does not answer`, `${ctx.args.address} still answers`)];
  },
};
