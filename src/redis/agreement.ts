import { failedError } from '../errors.js';
import { parseClusterNodes, parseInfo, isMaster, type ClusterNodeLine } from './cluster-nodes.js';
import type { ClusterPool } from './connect.js';

/**
 * Cluster agreement: one rule for every step that changes a topology, and for
 * every check that reads the whole cluster.
 *
 * Redis Cluster spreads a change by gossip. A step that moved a slot, failed
 * over a master or restarted a node has made the change on the nodes it spoke
 * to, but the others learn it later: a replica still routes a slot to its old
 * owner, a node still flags a restarted master `fail` (a master with slots
 * keeps that flag until 2 x cluster-node-timeout after it was set, and until
 * the next ping reaches it) and answers CLUSTERDOWN meanwhile. The next step
 * would then act on a cluster that is still moving. So:
 *
 * - a topology-changing step is done only when every reachable node reports
 *   the same structure (slot owners, roles, members, who is failing), no node
 *   is flagged `fail`/`fail?` and every node says `cluster_state:ok`
 *   (`settleCluster`);
 * - a check that reads the whole cluster first waits, briefly, until the
 *   reachable nodes agree with each other (`waitForConsensus`), then decides
 *   on that view instead of on the first stale node.
 */

/** What one node says, read in one round trip (CLUSTER NODES + CLUSTER INFO). */
export interface NodeReport {
  address: string;
  view?: ClusterNodeLine[];
  state?: string;
  error?: string;
}

const member = (l: ClusterNodeLine) => !l.flags.includes('handshake') && !l.flags.includes('noaddr');
const failing = (l: ClusterNodeLine) => l.flags.includes('fail') || l.flags.includes('fail?');

/**
 * A node's view of the structure, as text: members, their roles and masters,
 * slot owners, and who is failing. Two nodes agree when these are equal.
 * `fail?` and `fail` count alike: the one becomes the other by gossip.
 */
export function viewSignature(view: readonly ClusterNodeLine[]): string {
  return view
    .filter(member)
    .map(
      (l) =>
        `${l.id} ${isMaster(l) ? 'master' : `replica-of-${l.masterId ?? '-'}`} ${l.slots.map(([a, b]) => `${a}-${b}`).join(',')}${failing(l) ? ' failing' : ''}`,
    )
    .sort()
    .join('\n');
}

export interface Agreement {
  /** Every reachable node reports the same structure. */
  consensus: boolean;
  /** Consensus, and healthy: no failure flag, cluster_state:ok everywhere, every member answers (tolerated nodes aside). */
  settled: boolean;
  /** Nodes that answered. */
  reachable: number;
  /** Members listed by the reachable nodes. */
  members: number;
  /** What is not settled yet, in words (empty when settled). */
  problems: string[];
}

/**
 * Judge the reports of one poll (pure). `tolerate`: addresses or ids of nodes
 * that may be down or flagged failing (a master a FORCE failover replaces, a
 * node the step shut down); the others must answer and be healthy.
 */
export function assessAgreement(reports: readonly NodeReport[], tolerate: readonly string[] = []): Agreement {
  const tolerated = (l: { id?: string; address: string }) =>
    tolerate.includes(l.address) || (l.id !== undefined && tolerate.includes(l.id));
  const selfId = (r: NodeReport) => r.view?.find((l) => l.flags.includes('myself'))?.id;
  const reporting = reports.filter((r) => r.view && r.state);
  // A node no other node lists is not part of the cluster (forgotten and still running, or
  // not joined yet): its view does not count. Neither does a tolerated node's.
  const listedByOthers = (r: NodeReport) =>
    reporting.some((o) => o !== r && o.view!.some((l) => l.id === selfId(r) && !l.flags.includes('myself')));
  const answered = reporting.filter(
    (r) => !tolerated({ id: selfId(r), address: r.address }) && (reporting.length === 1 || listedByOthers(r)),
  );
  const problems: string[] = [];
  const groups = new Map<string, string[]>();
  for (const r of answered) {
    const sig = viewSignature(r.view!);
    groups.set(sig, [...(groups.get(sig) ?? []), r.address]);
  }
  const consensus = groups.size <= 1 && answered.length > 0;
  if (!answered.length) problems.push('no node answers');

  const members = new Map<string, ClusterNodeLine>();
  for (const r of answered) for (const l of r.view!.filter(member)) members.set(l.id, l);
  for (const r of answered) {
    const flagged = r.view!.filter((l) => member(l) && failing(l) && !tolerated(l));
    if (flagged.length)
      problems.push(
        `${r.address} flags ${flagged.map((l) => `${l.address} ${l.flags.filter((f) => f.startsWith('fail')).join(',')}`).join(', ')}`,
      );
    if (r.state !== 'ok') problems.push(`${r.address} says cluster_state:${r.state}`);
  }
  if (groups.size > 1) {
    // Listed last: a flag or a state above says more than "the views differ".
    const views = [...groups.values()].sort((a, b) => b.length - a.length);
    problems.push(
      `${views.length} different views of the cluster (${views.map((v) => (v.length > 3 ? `${v.length} nodes` : v.join(', '))).join(' | ')})`,
    );
  }
  const answeredIds = new Set(answered.map((r) => r.view!.find((l) => l.flags.includes('myself'))?.id));
  const silent = [...members.values()].filter((l) => !answeredIds.has(l.id) && !tolerated(l));
  if (silent.length) problems.push(`no answer from ${silent.map((l) => l.address).join(', ')}`);
  return {
    consensus,
    settled: consensus && problems.length === 0,
    reachable: answered.length,
    members: members.size,
    problems,
  };
}

/** The addresses to poll: the seeds, and every member a reachable node lists. */
function addressesFrom(reports: readonly NodeReport[], seeds: readonly string[]): string[] {
  const out = new Set(seeds);
  for (const r of reports)
    for (const l of r.view ?? []) if (member(l) && l.address && !l.address.startsWith(':')) out.add(l.address);
  return [...out];
}

/**
 * One poll: CLUSTER NODES and CLUSTER INFO from each node, pipelined, in
 * parallel. These reads repeat many times a second while a cluster settles,
 * so they are not journaled one by one (a summary is, by the caller).
 */
export async function readReports(pool: ClusterPool, addresses: readonly string[]): Promise<NodeReport[]> {
  return Promise.all(
    addresses.map(async (address): Promise<NodeReport> => {
      try {
        const res = await pool.node(address).pipeline([
          ['CLUSTER', 'NODES'],
          ['CLUSTER', 'INFO'],
        ]);
        const [[e1, nodes], [e2, info]] = res as [[Error | null, unknown], [Error | null, unknown]];
        if (e1 || e2) return { address, error: (e1 ?? e2)!.message };
        return {
          address,
          view: parseClusterNodes(String(nodes)),
          state: parseInfo(String(info)).cluster_state ?? 'unknown',
        };
      } catch (err) {
        return { address, error: (err as Error).message };
      }
    }),
  );
}

/** Poll every member (found from `seeds`) once; the member list grows as views name new nodes. */
export async function pollCluster(pool: ClusterPool, seeds: readonly string[]): Promise<NodeReport[]> {
  const first = await readReports(pool, seeds);
  const more = addressesFrom(first, seeds).filter((a) => !seeds.includes(a));
  return more.length ? [...first, ...(await readReports(pool, more))] : first;
}

export interface SettleOptions {
  /** Addresses or ids allowed to be down or flagged failing. */
  tolerate?: readonly string[];
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
  /** A progress line while it waits. */
  progress?(line: string): void;
}

export interface Settled {
  ms: number;
  polls: number;
  nodes: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function stopped(signal?: AbortSignal): void {
  if (signal?.aborted)
    throw failedError(
      'E_STOPPED',
      'stopped by the operator while waiting for the cluster to agree',
      'resume the run; the step checks the cluster again before it acts',
    );
}

/**
 * Wait until the cluster has settled (see `assessAgreement`), polling, and
 * say what it waits for. Bounded: after `timeoutMs` it fails with
 * E_NO_AGREEMENT naming what is still not agreed. A stop request is not a
 * timeout (E_STOPPED).
 */
export async function settleCluster(pool: ClusterPool, seeds: readonly string[], o: SettleOptions): Promise<Settled> {
  const started = Date.now();
  for (let polls = 1; ; polls++) {
    stopped(o.signal);
    const a = assessAgreement(await pollCluster(pool, seeds), o.tolerate);
    if (a.settled) return { ms: Date.now() - started, polls, nodes: a.reachable };
    stopped(o.signal);
    const waited = Date.now() - started;
    if (waited >= o.timeoutMs) {
      throw failedError(
        'E_NO_AGREEMENT',
        `the nodes of the cluster did not all agree and report a healthy cluster within ${Math.round(o.timeoutMs / 1000)} s: ${a.problems.join('; ')}`,
        'check the cluster bus between the nodes (port + 10000) and that every node runs; a node flagged fail clears once it answers again. Retry the step: it waits again',
      );
    }
    o.progress?.(`waiting for all nodes to agree (${(waited / 1000).toFixed(1)} s): ${a.problems[0] ?? ''}`);
    await sleep(o.intervalMs ?? 100, o.signal);
  }
}

/**
 * Wait, briefly, until the reachable nodes agree with each other (consensus
 * only: a dead node that everyone flags `fail` is agreed on). Returns whether
 * they did; the caller then reads and decides either way.
 */
export async function waitForConsensus(
  pool: ClusterPool,
  seeds: readonly string[],
  o: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<boolean> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const a = assessAgreement(await pollCluster(pool, seeds));
    if (a.consensus || a.reachable === 0) return a.consensus;
    if (Date.now() >= deadline || o.signal?.aborted) return false;
    await sleep(o.intervalMs ?? 100, o.signal);
  }
}

/** How long a topology change may take to spread: failure flags clear up to 2 x cluster-node-timeout after they were set. */
export function settleTimeoutMs(nodeTimeoutMs: number): number {
  return Math.max(30_000, 6 * nodeTimeoutMs);
}

/** How long a check waits for a converging view before it decides on what it sees. */
export function consensusTimeoutMs(nodeTimeoutMs: number): number {
  return Math.min(Math.max(5_000, 2 * nodeTimeoutMs + 2_000), 40_000);
}
