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
export function renderInventory(sandboxDir: string, clusters: InventoryCluster[]): string {
  const nodeDir = join(sandboxDir, 'nodes', '{port}');
  const doc = {
    clusters: Object.fromEntries(clusters.map((c) => [c.name, {
      seeds: c.seeds.map((p) => `${LOOPBACK}:${p}`),
      auth: { password: { file: 'password' } },
    }])),
    hosts: {
      localhost: {
        transport: 'local',
        addresses: [LOOPBACK],
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
