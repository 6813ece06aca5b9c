import { messageOf } from '../../errors.js';
import { hostFor, hostOf } from '../../hosts/host.js';
import type { NodePersistence } from '../../hosts/node-files.js';
import type { StepEnv } from '../kind.js';

/**
 * Every other node the inventory knows (all its clusters, not just the one
 * the runbook acts on) that runs on the same host as `address`, with the
 * files it reports. A node or cluster that cannot be read is listed as
 * unknown: the caller refuses rather than guess which files it uses.
 * `skipCluster`: a cluster the caller checked from its plan-time topology
 * (one it has stopped, say, and cannot read now).
 */
export async function otherInstances(
  env: StepEnv,
  address: string,
  id?: string,
  skipCluster?: string,
): Promise<{ known: Array<{ address: string; persistence: NodePersistence }>; unknown: string[] }> {
  const inv = env.inventory;
  const myHost = hostFor(inv, address)?.name;
  const sameHost = (a: string) =>
    hostOf(a) === hostOf(address) || (myHost !== undefined && hostFor(inv, a)?.name === myHost);
  const known: Array<{ address: string; persistence: NodePersistence }> = [];
  const unknown: string[] = [];
  for (const name of Object.keys(inv.clusters)) {
    if (name === skipCluster) continue;
    let t;
    try {
      t = await env.topology(name);
    } catch (err) {
      unknown.push(
        `cluster ${name} could not be read (${messageOf(err).split('\n')[0]}), so the files of its nodes on this host are unknown`,
      );
      continue;
    }
    for (const n of t.nodes) {
      if (n.id === id || n.address === address || !sameHost(n.address)) continue;
      if (n.self) known.push({ address: n.address, persistence: n.self.persistence });
      else unknown.push(`${n.address} (cluster ${name}) does not answer, so the files it uses are unknown`);
    }
  }
  return { known, unknown };
}
