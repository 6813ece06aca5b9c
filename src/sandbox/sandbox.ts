import { hasEnableDirectives, resolveServer, type SandboxServer } from './servers.js';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadInventory } from '../inventory/load.js';
import { failedError, messageOf, preconditionError, RunbookError, usageError } from '../errors.js';
import { formCluster, type FormedCluster } from './cluster-create.js';
import { renderInventory, writeInventory } from './inventory-file.js';
import {
  clusterLayout,
  CLUSTER_BUS_OFFSET,
  MAX_MASTERS,
  MAX_REPLICAS,
  TARGET_PORT_OFFSET,
  type ClusterLayout,
} from './layout.js';
import { readMeta, writeMeta } from './metadata.js';
import { nodeAnswers } from './node-client.js';
import { renderNodeConfig } from './node-config.js';
import { startNode, stopNode } from './node-process.js';
import { createPasswordFile, readPasswordFile } from './password.js';
import { sandboxPaths, sandboxRoot, validateSandboxName, type SandboxPaths } from './paths.js';
import { checkNameFree, checkPortsFree, sandboxPorts } from './preflight.js';
import { seedCluster } from './seed-data.js';
import { startSshd, stopSshd, SSHD_PORT_OFFSET } from './sshd.js';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { startHostSshds } from './host-sshd.js';
import { renderHostsInventory } from './inventory-file.js';
import type { SandboxNetwork } from './metadata.js';
import { metaWhere, nodeWhere, planHosts, type NodeWhere } from './multihost.js';
import { checkNetworkPrivileges, createNetwork, destroyNetwork } from './netns.js';
import { MAX_HOSTS, MIN_HOSTS } from './placement.js';
import { createSandboxTls, sandboxTlsOptions, type SandboxTlsFiles } from './tls.js';

/**
 * Local Redis Cluster sandboxes on loopback, for the demo and the tests: a
 * seeded `source` cluster and optionally an empty `target`, each node a
 * daemonized redis-server with its files under one directory, plus an
 * inventory that the rest of redis-runbook can use as is.
 */
export interface SandboxUpOptions {
  stateDir: string;
  name: string;
  masters: number;
  replicas: number;
  targetMasters?: number;
  /** Load the target with the same keys as the source (to try and test `verify`). */
  seedTarget?: boolean;
  keys: number;
  basePort: number;
  nodeTimeoutMs: number;
  /** A loopback sshd (port base + 99); the inventory's host then uses transport ssh. */
  ssh?: boolean;
  /** appendonly yes on every node. */
  aof?: boolean;
  /** TLS-only nodes (cluster bus and replication too), with a CA made for the sandbox; the inventory gets `tls:`. */
  tls?: boolean;
  /**
   * Spread the nodes over this many simulated hosts (network namespaces, each
   * with its own address and sshd); needs root. Undefined: one loopback host.
   */
  hosts?: number;
  /** With hosts: the inventory lets every host copy files straight to every other over ssh. */
  directCopy?: boolean;
  /** The server each cluster runs: a build name (REDIS_RUNBOOK_BUILDS) or a path; default redis-server on PATH. */
  sourceServer?: string;
  targetServer?: string;
  onProgress?: (line: string) => void;
}
export interface SandboxClusterInfo {
  name: 'source' | 'target';
  ports: number[];
  masters: number;
  replicasPerMaster: number;
  server?: SandboxServer;
}
export interface SandboxInfo {
  name: string;
  dir: string;
  inventoryPath: string;
  passwordFile: string;
  clusters: SandboxClusterInfo[];
  network?: SandboxNetwork;
}
export interface SandboxStatus {
  name: string;
  dir: string;
  inventoryPath: string;
  clusters: Array<SandboxClusterInfo & { running: number }>;
  hosts?: Array<{ name: string; address: string; netns: string }>;
}

export async function sandboxUp(o: SandboxUpOptions): Promise<SandboxInfo> {
  const say = o.onProgress ?? (() => {});
  const layouts = validateUp(o);
  const paths = sandboxPaths(o.stateDir, o.name);
  refuseShellCharacters(paths);
  const allPorts = layouts.flatMap((l) => l.ports);
  // Which server each cluster runs, known (and runnable) before anything is created.
  const source = await resolveServer(o.sourceServer);
  const servers = {
    source,
    target: o.targetServer === o.sourceServer ? source : await resolveServer(o.targetServer),
  };
  await preflightUp(o, paths, allPorts, say);

  const network = o.hosts !== undefined ? await planHosts(paths.dir, layouts, o.hosts) : undefined;
  const where = nodeWhere(paths.dir, network);
  mkdirSync(network ? join(paths.dir, 'hosts') : paths.nodesDir, { recursive: true });
  const clusters: SandboxClusterInfo[] = layouts.map((l) => ({
    name: l.name,
    ports: l.ports,
    masters: l.masterPorts.length,
    replicasPerMaster: l.replicasPerMaster,
    server: servers[l.name],
  }));
  // Metadata before any node or namespace is made: from here on `down` can find and remove everything.
  writeMeta(paths.meta, {
    version: 1,
    name: o.name,
    createdAt: new Date().toISOString(),
    basePort: o.basePort,
    nodeTimeoutMs: o.nodeTimeoutMs,
    keys: o.keys,
    clusters,
    ...(network ? { network } : {}),
  });
  const password = createPasswordFile(paths.password);

  try {
    await bringUp({ o, say, paths, layouts, allPorts, network, where, password, serverOf: serverOfPort(clusters) });
  } catch (err) {
    throw withCleanupHint(err, o.name, paths);
  }
  return {
    name: o.name,
    dir: paths.dir,
    inventoryPath: paths.inventory,
    passwordFile: paths.password,
    clusters,
    ...(network ? { network } : {}),
  };
}

/** The inventory's service commands embed the sandbox's path unquoted. */
function refuseShellCharacters(paths: SandboxPaths): void {
  if (/[\s'"`$\\]/.test(paths.dir)) {
    throw usageError(
      'E_SANDBOX_OPTIONS',
      `state dir ${paths.dir} contains spaces, quotes or shell characters`,
      "use a --state-dir path without them; the inventory's start/stop commands embed it",
    );
  }
}

/** Checks before sandboxUp creates anything; a stopped sandbox of the same name is removed. */
async function preflightUp(
  o: SandboxUpOptions,
  paths: SandboxPaths,
  allPorts: number[],
  say: (line: string) => void,
): Promise<void> {
  // Before anything exists: without the privileges a --hosts sandbox needs, nothing is created.
  if (o.hosts !== undefined) await checkNetworkPrivileges();
  if (await checkNameFree(paths, o.name, metaWhere(paths.dir, readMeta(paths.meta)).addrOf)) {
    say(`removing stopped sandbox \`${o.name}\` left at ${paths.dir}`);
    const old = readMeta(paths.meta)?.network;
    if (old) await destroyNetwork(old);
    removeSandboxDir(paths);
  }
  // A --hosts sandbox's ports are in its own namespaces: nothing on this machine's loopback is in the way.
  if (o.hosts === undefined)
    await checkPortsFree(o.stateDir, o.name, o.ssh ? [...allPorts, o.basePort + SSHD_PORT_OFFSET] : allPorts);
}

/** What the stages of bringUp share: the sandbox's directory, metadata and password already exist. */
interface UpState {
  o: SandboxUpOptions;
  say: (line: string) => void;
  paths: SandboxPaths;
  layouts: ClusterLayout[];
  allPorts: number[];
  network: SandboxNetwork | undefined;
  where: NodeWhere;
  password: string;
  serverOf: (port: number) => SandboxServer;
}

/** The server of the cluster a port belongs to. */
function serverOfPort(clusters: SandboxClusterInfo[]): (port: number) => SandboxServer {
  return (port) => clusters.find((c) => c.ports.includes(port))!.server!;
}

/** Network, TLS, nodes, clusters, keys and inventory, in that order; a failure leaves the nodes for inspection. */
async function bringUp(up: UpState): Promise<void> {
  const { o, say, paths, layouts, network, where, password } = up;
  if (network) {
    await createNetwork(network);
    say(
      `${network.hosts.length} hosts on ${network.subnet} (bridge ${network.bridge}, this machine ${network.runnerAddress}): ${network.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}`,
    );
  }
  const tlsFiles = o.tls ? await createSandboxTls(paths.dir) : undefined;
  const tls = o.tls ? sandboxTlsOptions(paths.dir) : undefined;
  if (tlsFiles) say(`TLS only: CA and certificates in ${tlsFiles.dir}`);
  writeNodeConfigs(up, tlsFiles);
  await startNodes(up, tls);

  const formed = await Promise.all(
    layouts.map((l) => formCluster(l, { password, onProgress: say, tls, addrOf: where.addrOf })),
  );
  if (o.keys > 0) await seedClusters(up, formed, tls);
  await writeSandboxInventory(up);
  // What we hand out must be usable by the rest of redis-runbook; find out here, not in the next command.
  loadInventory(paths.inventory);
  say(`sandbox \`${o.name}\` is up; inventory: ${paths.inventory}`);
}

function writeNodeConfigs(
  { o, allPorts, network, where, password, serverOf }: UpState,
  tlsFiles?: SandboxTlsFiles,
): void {
  for (const port of allPorts) {
    const np = where.pathsOf(port);
    mkdirSync(np.dir, { recursive: true });
    // The inventory's service.start runs the binary named here (see inventory-file.ts).
    writeFileSync(join(np.dir, 'server'), `${serverOf(port).binary}\n`);
    // redis.conf holds the password (Redis cannot read it from a file): owner-only.
    writeFileSync(
      np.conf,
      renderNodeConfig({
        port,
        paths: np,
        password,
        nodeTimeoutMs: o.nodeTimeoutMs,
        aof: o.aof,
        tls: tlsFiles,
        hostAddress: network ? where.addrOf(port) : undefined,
        before7: !hasEnableDirectives(serverOf(port)),
      }),
      { mode: 0o600 },
    );
    chmodSync(np.conf, 0o600);
  }
}

async function startNodes(
  { say, layouts, allPorts, network, where, password, serverOf }: UpState,
  tls?: ConnectionOptions,
): Promise<void> {
  for (const l of layouts) {
    const s = serverOf(l.ports[0]!);
    say(
      `${l.name}: starting ${l.ports.length} ${s.flavor} ${s.version} node(s) on ${network ? 'the hosts, ports ' : '127.0.0.1:'}${l.ports[0]}..${l.ports[l.ports.length - 1]}`,
    );
  }
  await Promise.all(
    allPorts.map((port) =>
      startNode(port, where.pathsOf(port), password, tls, where.placeOf(port), serverOf(port).binary),
    ),
  );
}

/** The source, and with --seed-target the target too. */
async function seedClusters(
  { o, say, where, password }: UpState,
  formed: FormedCluster[],
  tls?: ConnectionOptions,
): Promise<void> {
  // Same deterministic key set on both sides: identical data however each cluster is sharded.
  const expireBaseMs = Date.now();
  await Promise.all(
    formed.slice(0, o.seedTarget ? 2 : 1).map((f, i) =>
      seedCluster({
        password,
        tls,
        addrOf: where.addrOf,
        masters: f.masters,
        keys: o.keys,
        onProgress: say,
        label: i === 0 ? 'source' : 'target',
        expireBaseMs,
      }),
    ),
  );
}

/** The inventory, with the sshd(s) it names started first: on every host with --hosts, on loopback with --ssh. */
async function writeSandboxInventory({ o, say, paths, layouts, network }: UpState): Promise<void> {
  const seeds = layouts.map((l) => ({ name: l.name, seeds: l.masterPorts }));
  if (network) {
    const ssh = await startHostSshds(paths.dir, network.hosts);
    say(
      `sshd on each host, port ${network.hosts[0]!.sshPort} (user ${ssh.user}, key ${ssh.identity})${o.directCopy ? '; hosts copy to each other directly' : ''}`,
    );
    writeInventory(paths.inventory, renderHostsInventory(paths.dir, seeds, network, ssh, o.directCopy === true));
  } else {
    let ssh;
    if (o.ssh) {
      ssh = await startSshd(paths.dir, o.basePort + SSHD_PORT_OFFSET);
      say(`sshd on 127.0.0.1:${ssh.port} (user ${ssh.user}, key ${ssh.identity})`);
    }
    writeInventory(paths.inventory, renderInventory(paths.dir, seeds, ssh, o.tls));
  }
}

export async function sandboxDown(stateDir: string, name: string): Promise<{ stopped: number }> {
  const paths = sandboxPaths(stateDir, name);
  // Nothing there is not an error: `down` is also the cleanup after a failed or interrupted `up`.
  if (!existsSync(paths.dir)) return { stopped: 0 };
  refuseForeignDir(paths);
  const password = readPasswordFile(paths.password);
  const meta = readMeta(paths.meta);
  const where = metaWhere(paths.dir, meta);
  const ports = sandboxPorts(paths);
  const tls = sandboxTlsOptions(paths.dir);
  // All at once: SHUTDOWN is quick, and stopping in parallel avoids replicas
  // starting failovers for masters that went down before them.
  const results = await Promise.allSettled(
    ports.map((port) => stopNode(port, where.pathsOf(port), password, tls, where.addrOf(port))),
  );
  await stopSshd(paths.dir);
  // Whatever else runs in the hosts' namespaces goes with them (sshds, their sessions).
  if (meta?.network) await destroyNetwork(meta.network);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    const first = failures[0];
    // Keep the directory: its pidfiles and metadata are how a retry finds the survivors.
    throw first instanceof RunbookError && failures.length === 1
      ? first
      : failedError(
          'E_SANDBOX_STOP',
          `${failures.length} node(s) of sandbox \`${name}\` could not be stopped: ${failures.map(messageOf).join('; ')}`,
          `stop them by hand, then run \`redis-runbook sandbox down --name ${name}\` again`,
        );
  }
  removeSandboxDir(paths);
  return { stopped: results.filter((r) => r.status === 'fulfilled' && r.value).length };
}

export async function sandboxStatus(stateDir: string): Promise<SandboxStatus[]> {
  const root = sandboxRoot(stateDir);
  if (!existsSync(root)) return [];
  const names = readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isSandboxName(e.name))
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const paths = sandboxPaths(stateDir, name);
      const meta = readMeta(paths.meta);
      const tls = sandboxTlsOptions(paths.dir);
      const where = metaWhere(paths.dir, meta);
      const clusters = await Promise.all(
        (meta?.clusters ?? []).map(async (c) => {
          const answers = await Promise.all(c.ports.map((p) => nodeAnswers(p, 1000, tls, where.addrOf(p))));
          return {
            name: c.name,
            ports: c.ports,
            masters: c.masters,
            replicasPerMaster: c.replicasPerMaster,
            server: c.server,
            running: answers.filter(Boolean).length,
          };
        }),
      );
      return {
        name,
        dir: paths.dir,
        inventoryPath: paths.inventory,
        clusters,
        ...(meta?.network
          ? { hosts: meta.network.hosts.map((h) => ({ name: h.name, address: h.address, netns: h.netns })) }
          : {}),
      };
    }),
  );
}

function validateUp(o: SandboxUpOptions): ClusterLayout[] {
  validateSandboxName(o.name);
  const int = (v: number, flag: string, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw usageError(
        'E_SANDBOX_OPTIONS',
        `${flag} must be an integer from ${min} to ${max}, got ${v}`,
        `pass ${flag} ${min}..${max}`,
      );
    }
  };
  int(o.masters, '--masters', 1, MAX_MASTERS);
  int(o.replicas, '--replicas', 0, MAX_REPLICAS);
  if (o.targetMasters !== undefined) int(o.targetMasters, '--target-masters', 1, MAX_MASTERS);
  int(o.keys, '--keys', 0, 10_000_000);
  int(o.nodeTimeoutMs, '--node-timeout', 100, 600_000);
  // The highest node's cluster bus port (+10000) must still be a valid port.
  const highest = (o.targetMasters !== undefined ? TARGET_PORT_OFFSET : 0) + MAX_MASTERS * (1 + MAX_REPLICAS);
  int(o.basePort, '--base-port', 1024, 65535 - CLUSTER_BUS_OFFSET - highest);
  if (o.hosts !== undefined) {
    int(o.hosts, '--hosts', MIN_HOSTS, MAX_HOSTS);
    if (o.tls)
      throw usageError(
        'E_SANDBOX_OPTIONS',
        '--tls cannot be combined with --hosts (the sandbox certificates name 127.0.0.1 only)',
        'drop --tls or --hosts',
      );
  } else if (o.directCopy) {
    throw usageError(
      'E_SANDBOX_OPTIONS',
      '--direct-copy needs --hosts N: on one loopback host there is nothing to copy between',
      'add --hosts 2 (or more), or drop --direct-copy',
    );
  }
  const layouts = [clusterLayout('source', o.basePort, o.masters, o.replicas)];
  if (o.targetMasters !== undefined)
    layouts.push(clusterLayout('target', o.basePort + TARGET_PORT_OFFSET, o.targetMasters, o.replicas));
  return layouts;
}

function isSandboxName(name: string): boolean {
  try {
    validateSandboxName(name);
    return true;
  } catch {
    return false;
  }
}

const OWN_ENTRIES = new Set(['ssh', 'tls', 'sandbox.json', 'password', 'inventory.yaml', 'nodes', 'hosts']);

/** `down` deletes recursively: only a directory that looks like one of ours. */
function refuseForeignDir(paths: SandboxPaths): void {
  const foreign = readdirSync(paths.dir).filter((e) => !OWN_ENTRIES.has(e));
  if (foreign.length > 0) {
    throw preconditionError(
      'E_SANDBOX_FOREIGN',
      `${paths.dir} holds files a sandbox does not create (${foreign.slice(0, 5).join(', ')}); not deleting it`,
      'move those files away, or delete the directory yourself once its nodes are stopped',
    );
  }
}

function removeSandboxDir(paths: SandboxPaths): void {
  refuseForeignDir(paths);
  rmSync(paths.dir, { recursive: true, force: true });
}

/** Failures after nodes started leave them running for inspection; say how to clean up. */
function withCleanupHint(err: unknown, name: string, paths: SandboxPaths): RunbookError {
  const hint = `inspect ${paths.dir}/[hosts/<host>/]nodes/<port>/redis.log, then clean up with \`redis-runbook sandbox down --name ${name}\``;
  if (err instanceof RunbookError) {
    return new RunbookError(err.code, err.kind, err.message, err.remedy ? `${err.remedy}; ${hint}` : hint);
  }
  return failedError('E_SANDBOX_UP', `sandbox up failed: ${messageOf(err)}`, hint);
}
