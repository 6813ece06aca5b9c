import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
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
export interface SandboxSsh { user: string; port: number; identity: string; knownHosts: string }

export function renderInventory(sandboxDir: string, clusters: InventoryCluster[], ssh?: SandboxSsh, tls?: boolean): string {
  const nodeDir = join(sandboxDir, 'nodes', '{port}');
  const doc = {
    clusters: Object.fromEntries(clusters.map((c) => [c.name, {
      seeds: c.seeds.map((p) => `${LOOPBACK}:${p}`),
      auth: { password: { file: 'password' } },
      // --tls: the nodes serve TLS only and want a client certificate; the server's is verified against the sandbox's CA.
      ...(tls ? { tls: { ca: 'tls/ca.crt', cert: 'tls/client.crt', key: 'tls/client.key' } } : {}),
    }])),
    hosts: {
      localhost: {
        // With --ssh every host command and copy goes through the sandbox's own loopback sshd.
        transport: ssh ? 'ssh' : 'local',
        addresses: [LOOPBACK],
        ...(ssh ? { ssh: { user: ssh.user, port: ssh.port, identity: ssh.identity, knownHosts: ssh.knownHosts } } : {}),
        service: {
          start: `redis-server ${join(nodeDir, 'redis.conf')}`,
          stop: `kill $(cat ${join(nodeDir, 'redis.pid')})`,
          kill: `kill -9 $(cat ${join(nodeDir, 'redis.pid')})`,
        },
      },
    },
  };
  return [
    '# Written by `redis-runbook sandbox up`. The password is in ./password (mode 0600),',
    '# referenced by file and never written here.',
    stringify(doc, { lineWidth: 0 }),
  ].join('\n');
}

export function writeInventory(path: string, text: string): void {
  writeFileSync(path, text);
}
