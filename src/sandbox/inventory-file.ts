import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { HostsSsh } from './host-sshd.js';
import type { SandboxNetwork } from './metadata.js';
import { LOOPBACK } from './node-client.js';

export interface InventoryCluster {
  name: string;
  /** Master ports: the seeds discovery starts from. */
  seeds: number[];
}

/**
 * The sandbox's inventory. The password is referenced as `{ file: password }`,
 * relative to the inventory's own directory, so the file can be printed,
 * copied into bug reports or committed without leaking anything. Service
 * commands start a node from its redis.conf and stop it through its pidfile,
 * the same way an operator's systemd unit would.
 */
export interface SandboxSsh {
  user: string;
  port: number;
  identity: string;
  knownHosts: string;
}

function clustersDoc(clusters: InventoryCluster[], tls?: boolean, addrOf: (port: number) => string = () => LOOPBACK) {
  return Object.fromEntries(
    clusters.map((c) => [
      c.name,
      {
        seeds: c.seeds.map((p) => `${addrOf(p)}:${p}`),
        auth: { password: { file: 'password' } },
        // --tls: the nodes serve TLS only and want a client certificate; the server's is verified against the sandbox's CA.
        ...(tls ? { tls: { ca: 'tls/ca.crt', cert: 'tls/client.crt', key: 'tls/client.key' } } : {}),
      },
    ]),
  );
}

/** Start, stop and kill a node from its directory, the way an operator's systemd unit would. */
function serviceDoc(hostDir: string) {
  const nodeDir = join(hostDir, 'nodes', '{port}');
  return {
    // Each node's server binary is named in its directory (clusters of one sandbox may run
    // different servers: a 6.2 source, a Valkey target).
    start: `"$(cat ${join(nodeDir, 'server')})" ${join(nodeDir, 'redis.conf')}`,
    stop: `kill $(cat ${join(nodeDir, 'redis.pid')})`,
    kill: `kill -9 $(cat ${join(nodeDir, 'redis.pid')})`,
  };
}

export function renderInventory(
  sandboxDir: string,
  clusters: InventoryCluster[],
  ssh?: SandboxSsh,
  tls?: boolean,
): string {
  const doc = {
    clusters: clustersDoc(clusters, tls),
    hosts: {
      localhost: {
        // With --ssh every host command and copy goes through the sandbox's own loopback sshd.
        transport: ssh ? 'ssh' : 'local',
        addresses: [LOOPBACK],
        ...(ssh ? { ssh: { user: ssh.user, port: ssh.port, identity: ssh.identity, knownHosts: ssh.knownHosts } } : {}),
        service: serviceDoc(sandboxDir),
      },
    },
  };
  return render(doc);
}

/**
 * The inventory of a `--hosts N` sandbox: one ssh host per namespace, each
 * reached through its own sshd (so service commands run inside it). With
 * directCopy every host may copy to every other over ssh with the shared key.
 */
export function renderHostsInventory(
  sandboxDir: string,
  clusters: InventoryCluster[],
  network: SandboxNetwork,
  ssh: HostsSsh,
  directCopy: boolean,
): string {
  const addrOf = (port: number) => network.hosts.find((h) => h.nodes.includes(port))?.address ?? LOOPBACK;
  const login = { user: ssh.user, identity: ssh.identity, knownHosts: ssh.knownHosts };
  const doc = {
    clusters: clustersDoc(clusters, false, addrOf),
    hosts: Object.fromEntries(
      network.hosts.map((h) => [
        h.name,
        {
          transport: 'ssh',
          addresses: [h.address],
          ssh: { ...login, port: h.sshPort },
          service: serviceDoc(join(sandboxDir, 'hosts', h.name)),
          ...(directCopy
            ? {
                copyTo: Object.fromEntries(
                  network.hosts
                    .filter((o) => o !== h)
                    .map((o) => [o.name, { identity: ssh.identity, knownHosts: ssh.knownHosts }]),
                ),
              }
            : {}),
        },
      ]),
    ),
  };
  return render(doc);
}

function render(doc: object): string {
  return [
    '# Written by `redis-runbook sandbox up`. The password is in ./password (mode 0600),',
    '# referenced by file and never written here.',
    stringify(doc, { lineWidth: 0 }),
  ].join('\n');
}

export function writeInventory(path: string, text: string): void {
  writeFileSync(path, text);
}
