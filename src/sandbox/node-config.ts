import type { NodePaths } from './paths.js';
import type { SandboxTlsFiles } from './tls.js';

export interface NodeConfigInput {
  port: number;
  paths: NodePaths;
  password: string;
  nodeTimeoutMs: number;
  /** appendonly yes (an AOF directory, for the AOF file-copy runbook). */
  aof?: boolean;
  /** TLS only: the plain port closed, the cluster bus and replication over TLS too. */
  tls?: SandboxTlsFiles;
  /** A --hosts sandbox: the host's address, bound and announced (CLUSTER NODES shows it). */
  hostAddress?: string;
  /** Redis before 7.0: no enable-debug-command / enable-protected-configs (it refuses to start on them). */
  before7?: boolean;
}

// Redis config arguments may be double-quoted; paths are quoted so a state
// dir with unusual characters still parses.
const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** redis.conf for one sandbox node. The file holds the password: write it with mode 0600. */
export function renderNodeConfig(c: NodeConfigInput): string {
  return [
    '# redis-runbook sandbox node; generated, edits are lost on the next `sandbox up`',
    // Loopback only, or the host's address inside the sandbox's own network namespace:
    // the sandbox is for demos and tests, never reachable from outside.
    ...(c.hostAddress ? [`bind ${c.hostAddress}`, `cluster-announce-ip ${c.hostAddress}`] : ['bind 127.0.0.1']),
    ...(c.tls
      ? [
          'port 0',
          `tls-port ${c.port}`,
          `tls-cert-file ${q(c.tls.serverCert)}`,
          `tls-key-file ${q(c.tls.serverKey)}`,
          `tls-ca-cert-file ${q(c.tls.ca)}`,
          'tls-auth-clients yes',
          'tls-cluster yes',
          'tls-replication yes',
        ]
      : [`port ${c.port}`]),
    'protected-mode no',
    'cluster-enabled yes',
    'cluster-config-file nodes.conf',
    `cluster-node-timeout ${c.nodeTimeoutMs}`,
    // `dir` first: redis chdirs there, and nodes.conf is resolved against it.
    `dir ${q(c.paths.dir)}`,
    'daemonize yes',
    `pidfile ${q(c.paths.pid)}`,
    `logfile ${q(c.paths.log)}`,
    `requirepass ${c.password}`,
    // Replicas authenticate to their master with the same password.
    `masterauth ${c.password}`,
    // No automatic persistence: a sandbox is disposable. Runbooks persist explicitly
    // (BGSAVE, BGREWRITEAOF); --aof turns the append-only file on for the AOF runbooks.
    `appendonly ${c.aof ? 'yes' : 'no'}`,
    'save ""',
    // Redis 7 waits 5 s by default before a diskless full sync to batch
    // replicas; a sandbox wants replicas in sync at once.
    'repl-diskless-sync-delay 0',
    // DEBUG lets tests simulate faults (DEBUG SLEEP, DEBUG SEGFAULT) from loopback only.
    // In a --hosts sandbox the runner connects through the bridge, never from loopback; the
    // address exists only in the sandbox's namespaces, so these stay out of reach from outside.
    // CONFIG SET dir / dbfilename from loopback only: tests put a node in the odd states an
    // operator's configuration can reach (a shared directory, an unsafe file name).
    // Redis 6.2 has neither directive and allows both commands to any authenticated client.
    ...(c.before7
      ? []
      : [
          `enable-debug-command ${c.hostAddress ? 'yes' : 'local'}`,
          `enable-protected-configs ${c.hostAddress ? 'yes' : 'local'}`,
        ]),
    '',
  ].join('\n');
}
