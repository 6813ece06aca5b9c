import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { cli } from './cli.js';

export interface SandboxPair {
  /** An inventory with both: `source` (sandbox a) and `target` (sandbox b), one host. */
  inventory: string;
  source: { base: number; dir: string; password: string };
  target: { base: number; dir: string; password: string };
  /** Write a variant of the inventory (e.g. another start template); returns its path. */
  variant(name: string, edit: (doc: any) => void): string;
  down(): Promise<void>;
}

/**
 * Two sandboxes as a source and a target inside one port range: `sandbox up`
 * puts a target at base+100, so two single-cluster sandboxes (3 masters x 1
 * replica each) are joined into one inventory instead. Their node directories
 * are reached through one directory of links, so one host's service templates
 * (`.../nodes/{port}/redis.conf`) serve both. `ssh`: sandbox a's loopback sshd
 * (port sourceBase+99) carries every host command and copy.
 */
export async function sandboxPair(
  home: string,
  sourceBase: number,
  targetBase: number,
  opts: { ssh?: boolean; keys?: number } = {},
): Promise<SandboxPair> {
  const up = async (name: string, base: number, extra: string[]) => {
    const r = await cli(home, [
      'sandbox',
      'up',
      '--name',
      name,
      '--base-port',
      String(base),
      '--keys',
      String(opts.keys ?? 3000),
      ...extra,
    ]);
    if (r.code !== 0) throw new Error(`sandbox up ${name} failed:\n${r.out}`);
    const inv = r.stdout.trim().split('\n').pop()!;
    return { inv, dir: dirname(inv), password: readFileSync(join(dirname(inv), 'password'), 'utf8').trim() };
  };
  const a = await up('pa', sourceBase, opts.ssh ? ['--ssh'] : []);
  const b = await up('pb', targetBase, []);
  const links = join(home, 'pair-nodes');
  mkdirSync(links, { recursive: true });
  for (const [s, base] of [
    [a, sourceBase],
    [b, targetBase],
  ] as const) {
    for (let i = 0; i < 6; i++) symlinkSync(join(s.dir, 'nodes', String(base + i)), join(links, String(base + i)));
  }
  const docA = parse(readFileSync(a.inv, 'utf8'));
  const docB = parse(readFileSync(b.inv, 'utf8'));
  const base = {
    clusters: {
      source: { ...docA.clusters.source, auth: { password: { file: join(a.dir, 'password') } } },
      target: { ...docB.clusters.source, auth: { password: { file: join(b.dir, 'password') } } },
    },
    hosts: {
      localhost: {
        ...docA.hosts.localhost,
        ...(docA.hosts.localhost.ssh
          ? {
              ssh: {
                ...docA.hosts.localhost.ssh,
                identity: resolve(a.dir, docA.hosts.localhost.ssh.identity),
                knownHosts: resolve(a.dir, docA.hosts.localhost.ssh.knownHosts),
              },
            }
          : {}),
        service: {
          start: `redis-server ${links}/{port}/redis.conf`,
          stop: `kill $(cat ${links}/{port}/redis.pid)`,
          kill: `kill -9 $(cat ${links}/{port}/redis.pid)`,
        },
      },
    },
  };
  const variant = (name: string, edit: (doc: any) => void) => {
    const doc = JSON.parse(JSON.stringify(base));
    edit(doc);
    const path = join(home, `${name}.yaml`);
    writeFileSync(path, stringify(doc, { lineWidth: 0 }));
    return path;
  };
  return {
    inventory: variant('pair', () => {}),
    source: { base: sourceBase, dir: a.dir, password: a.password },
    target: { base: targetBase, dir: b.dir, password: b.password },
    variant,
    down: async () => {
      await cli(home, ['sandbox', 'down', '--name', 'pa']);
      await cli(home, ['sandbox', 'down', '--name', 'pb']);
    },
  };
}
