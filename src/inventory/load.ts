import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { RunbookError, usageError } from '../errors.js';
import type { ClusterConfig, CopyTrust, HostConfig, Inventory, SecretRef, SshConfig, TlsConfig } from './types.js';
import { HOST_NAME, parseAddress } from '../address.js';

export { parseAddress } from '../address.js';

/**
 * Load and validate an inventory file. Every error names the file, the path
 * inside it and the fix, and is a usage error (exit 2).
 */
export function loadInventory(path: string): Inventory {
  const file = resolve(path);
  let text: string;
  try {
    text = readCapped(file);
  } catch (err) {
    if (err instanceof RunbookError) throw err;
    throw usageError(
      'E_INVENTORY_UNREADABLE',
      `cannot read inventory ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      'pass an existing YAML file with --inventory (sandbox up prints one)',
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` line ${err.linePos[0].line}` : '';
    throw usageError(
      'E_INVENTORY_YAML',
      `${file}${where}: not valid YAML (${(err as Error).message.split('\n')[0]})`,
      'fix the YAML syntax',
    );
  }
  return validateInventory(doc, file);
}

/** An inventory is a few kilobytes; a bigger file is the wrong file (or /dev/zero). */
export const MAX_INVENTORY_BYTES = 1024 * 1024;

/**
 * Read a regular file of at most MAX_INVENTORY_BYTES. Checked on the open file
 * (no race with a swap), and the read itself is capped: a device or a file
 * that grows while read cannot make it read without end.
 */
function readCapped(file: string): string {
  // Refused before it is opened: opening a FIFO would wait for a writer.
  if (!statSync(file).isFile())
    throw usageError(
      'E_INVENTORY_UNREADABLE',
      `inventory ${file} is not a regular file`,
      'pass --inventory the inventory YAML file (sandbox up prints one)',
    );
  const fd = openSync(file, 'r');
  try {
    const st = fstatSync(fd);
    const fix = 'pass --inventory the inventory YAML file (sandbox up prints one)';
    if (!st.isFile()) throw usageError('E_INVENTORY_UNREADABLE', `inventory ${file} is not a regular file`, fix);
    if (st.size > MAX_INVENTORY_BYTES)
      throw usageError(
        'E_INVENTORY_TOO_BIG',
        `inventory ${file} is ${st.size} bytes; an inventory is at most ${MAX_INVENTORY_BYTES}`,
        fix,
      );
    const buf = Buffer.alloc(MAX_INVENTORY_BYTES + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
    if (n > MAX_INVENTORY_BYTES)
      throw usageError('E_INVENTORY_TOO_BIG', `inventory ${file} is over ${MAX_INVENTORY_BYTES} bytes`, fix);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

class Validator {
  constructor(readonly file: string) {}
  fail(path: string, problem: string, fix: string): never {
    throw usageError('E_INVENTORY_INVALID', `${this.file}: ${path || '(top level)'}: ${problem}`, fix);
  }
  object(v: unknown, path: string, fix: string): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      this.fail(path, `expected a mapping, got ${show(v)}`, fix);
    return v as Record<string, unknown>;
  }
  string(v: unknown, path: string, fix: string): string {
    if (typeof v !== 'string' || v.trim() === '') this.fail(path, `expected a non-empty string, got ${show(v)}`, fix);
    return v;
  }
  optString(v: unknown, path: string, fix: string): string | undefined {
    return v === undefined ? undefined : this.string(v, path, fix);
  }
  noUnknown(o: Record<string, unknown>, path: string, known: string[]): void {
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) this.fail(`${path}.${k}`, 'unknown key', `use one of: ${known.join(', ')}`);
    }
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} \`${String(v).slice(0, 40)}\``;
}

export function validateInventory(doc: unknown, file: string): Inventory {
  const v: Validator = new Validator(file);
  const base = dirname(file);
  const top = v.object(doc, '', 'the file must be a mapping with `clusters:` (and optionally `hosts:`)');
  v.noUnknown(top, '', ['clusters', 'hosts']);
  const clustersDoc = v.object(
    top.clusters,
    'clusters',
    'add `clusters:` with at least one cluster, e.g. `source: { seeds: [\"10.0.0.1:6379\"] }`',
  );
  if (Object.keys(clustersDoc).length === 0)
    v.fail('clusters', 'no cluster defined', 'add at least one cluster under `clusters:`');

  const clusters: Record<string, ClusterConfig> = {};
  for (const [name, raw] of Object.entries(clustersDoc)) clusters[name] = clusterConfig(v, name, raw, base);

  const hosts: Record<string, HostConfig> = {};
  if (top.hosts !== undefined) {
    const hostsDoc = v.object(top.hosts, 'hosts', 'map host names to `{ transport, addresses, ssh, service }`');
    for (const [name, raw] of Object.entries(hostsDoc)) hosts[name] = hostConfig(v, name, raw, base);
    for (const host of Object.values(hosts)) checkCopyTargets(v, host, hosts);
  }
  return { file, clusters, hosts };
}

/** `clusters.<name>`: its seeds, and optionally `auth:` and `tls:`. */
function clusterConfig(v: Validator, name: string, raw: unknown, base: string): ClusterConfig {
  const p = `clusters.${name}`;
  const c = v.object(raw, p, 'give the cluster `seeds:` and optionally `auth:` and `tls:`');
  v.noUnknown(c, p, ['seeds', 'auth', 'tls']);
  if (!Array.isArray(c.seeds) || c.seeds.length === 0)
    v.fail(
      `${p}.seeds`,
      `expected a list of host:port, got ${show(c.seeds)}`,
      'list one or more nodes, e.g. `seeds: [\"10.0.0.1:6379\"]`',
    );
  const seeds = c.seeds.map((s, i) => {
    const str = v.string(s, `${p}.seeds[${i}]`, 'write each seed as host:port');
    if (!parseAddress(str))
      v.fail(`${p}.seeds[${i}]`, `\`${str}\` is not host:port`, 'write each seed as host:port, e.g. 127.0.0.1:7000');
    return str.trim();
  });
  const cluster: ClusterConfig = { name, seeds };
  if (c.auth !== undefined) {
    const a = v.object(
      c.auth,
      `${p}.auth`,
      'give `password: { env: VAR }` or `{ file: PATH }`, and optionally `username:`',
    );
    v.noUnknown(a, `${p}.auth`, ['username', 'password']);
    cluster.auth = {
      username: v.optString(a.username, `${p}.auth.username`, 'name the ACL user, or drop the key for `default`'),
      password: a.password === undefined ? undefined : secretRef(v, a.password, `${p}.auth.password`, base),
    };
  }
  if (c.tls !== undefined) cluster.tls = tls(v, c.tls, `${p}.tls`, base);
  return cluster;
}

/** `hosts.<name>`: how to reach it (transport, ssh), the addresses its nodes announce, its service commands. */
function hostConfig(v: Validator, name: string, raw: unknown, base: string): HostConfig {
  const p = `hosts.${name}`;
  const h = v.object(raw, p, 'give the host `transport:` (local|ssh) and `addresses:`');
  v.noUnknown(h, p, ['transport', 'addresses', 'ssh', 'service', 'copyTo']);
  const transport: unknown = h.transport ?? 'ssh';
  if (transport !== 'local' && transport !== 'ssh')
    v.fail(`${p}.transport`, `\`${String(transport)}\` is not a transport`, 'use `local` or `ssh`');
  if (!Array.isArray(h.addresses) || h.addresses.length === 0)
    v.fail(
      `${p}.addresses`,
      `expected a list of addresses, got ${show(h.addresses)}`,
      'list the IPs or names its nodes announce, e.g. `addresses: [10.0.0.1]`',
    );
  const host: HostConfig = {
    name,
    transport,
    addresses: h.addresses.map((a, i) => {
      const str = v.string(a, `${p}.addresses[${i}]`, 'write each address as an IP or host name');
      // It becomes ssh's destination and a service template's {host}: nothing else than a name or an IP.
      if (!HOST_NAME.test(str) || str.startsWith('-'))
        v.fail(
          `${p}.addresses[${i}]`,
          `\`${str}\` is not an IP or host name`,
          'write an IP or host name (letters, digits, dots, hyphens; not starting with `-`)',
        );
      return str;
    }),
  };
  if (h.ssh !== undefined) host.ssh = sshConfig(v, h.ssh, `${p}.ssh`, base);
  if (h.service !== undefined) {
    const s = v.object(h.service, `${p}.service`, 'give `stop:` and `start:` command templates');
    v.noUnknown(s, `${p}.service`, ['stop', 'start', 'kill']);
    host.service = {
      stop: v.optString(s.stop, `${p}.service.stop`, 'a command such as `systemctl stop redis@{port}`'),
      start: v.optString(s.start, `${p}.service.start`, 'a command such as `systemctl start redis@{port}`'),
      kill: v.optString(s.kill, `${p}.service.kill`, 'a command such as `systemctl kill -s KILL redis@{port}`'),
    };
  }
  if (h.copyTo !== undefined) host.copyTo = copyTo(v, h.copyTo, p);
  return host;
}

/** One hop of a ProxyJump value: `[user@]host[:port]`, the host possibly a bracketed IPv6 address. */
const JUMP_HOP = String.raw`(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9_[][A-Za-z0-9._:\]-]*(?::\d{1,5})?`;
const JUMP = new RegExp(`^${JUMP_HOP}(?:,${JUMP_HOP})*$`);

/** A host's `ssh:` (at path p); relative identity and knownHosts paths are from the inventory's folder. */
function sshConfig(v: Validator, raw: unknown, p: string, base: string): SshConfig {
  const s = v.object(raw, p, 'give `user`, `port`, `identity` or `jump`');
  v.noUnknown(s, p, ['user', 'port', 'identity', 'jump', 'knownHosts']);
  if (s.port !== undefined && (!Number.isInteger(s.port) || (s.port as number) < 1 || (s.port as number) > 65535)) {
    v.fail(`${p}.port`, `expected a port number, got ${show(s.port)}`, 'use an integer 1..65535');
  }
  const sane = (value: string | undefined, key: string, re: RegExp, what: string): string | undefined => {
    // Each value reaches ssh's command line: one starting with `-` would be read as an option.
    if (value !== undefined && (value.startsWith('-') || !re.test(value)))
      v.fail(`${p}.${key}`, `\`${value.slice(0, 60)}\` is not ${what}`, `write ${what} (not starting with \`-\`)`);
    return value;
  };
  sane(
    v.optString(s.identity, `${p}.identity`, 'give the path of a private key file'),
    'identity',
    /^[^\0\n\r]+$/,
    'a file path',
  );
  sane(
    v.optString(s.knownHosts, `${p}.knownHosts`, 'give the path of a known_hosts file'),
    'knownHosts',
    /^[^\0\n\r]+$/,
    'a file path',
  );
  return {
    user: sane(
      v.optString(s.user, `${p}.user`, 'name the SSH user'),
      'user',
      /^[A-Za-z0-9_][A-Za-z0-9._-]*$/,
      'a user name',
    ),
    port: s.port as number | undefined,
    identity:
      s.identity === undefined
        ? undefined
        : resolvePath(base, v.string(s.identity, `${p}.identity`, 'give the path of a private key file')),
    jump: sane(
      v.optString(s.jump, `${p}.jump`, 'give a ProxyJump value such as `bastion`'),
      'jump',
      JUMP,
      'a ProxyJump value ([user@]host[:port], comma-separated)',
    ),
    knownHosts:
      s.knownHosts === undefined
        ? undefined
        : resolvePath(base, v.string(s.knownHosts, `${p}.knownHosts`, 'give the path of a known_hosts file')),
  };
}

const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** `copyTo: { other: { user, port, identity, knownHosts } }`: key paths are on this host, so they must be absolute. */
function copyTo(v: Validator, raw: unknown, hostPath: string): Record<string, CopyTrust> {
  const p = `${hostPath}.copyTo`;
  const doc = v.object(
    raw,
    p,
    'map the names of hosts this host may ssh to, e.g. `copyTo: { db2: { identity: /home/redis/.ssh/id_ed25519 } }`',
  );
  const out: Record<string, CopyTrust> = {};
  for (const [other, entry] of Object.entries(doc)) {
    const q = `${p}.${other}`;
    // `db2: {}` (or nothing): this host's own ssh defaults reach db2.
    const e =
      entry === null
        ? {}
        : v.object(entry, q, 'give `{}` or any of `user`, `port`, `identity`, `knownHosts` (as on this host)');
    v.noUnknown(e, q, ['user', 'port', 'identity', 'knownHosts']);
    if (e.port !== undefined && (!Number.isInteger(e.port) || (e.port as number) < 1 || (e.port as number) > 65535))
      v.fail(`${q}.port`, `expected a port number, got ${show(e.port)}`, 'use an integer 1..65535');
    const user = v.optString(e.user, `${q}.user`, 'name the SSH user on that host');
    if (user !== undefined && !USER.test(user))
      v.fail(
        `${q}.user`,
        `\`${user.slice(0, 60)}\` is not a user name`,
        'write a user name (letters, digits, `.`, `_`, `-`; not starting with `-`)',
      );
    const path = (k: 'identity' | 'knownHosts') => {
      const value = v.optString(e[k], `${q}.${k}`, 'give an absolute path on this host');
      if (value !== undefined && (!value.startsWith('/') || /[\0\n\r]/.test(value))) {
        v.fail(
          `${q}.${k}`,
          `\`${value.slice(0, 60)}\` is not an absolute path`,
          `write the absolute path of the file on host ${hostPath.slice('hosts.'.length)} (the copy runs there, not here)`,
        );
      }
      return value;
    };
    out[other] = {
      user,
      port: e.port as number | undefined,
      identity: path('identity'),
      knownHosts: path('knownHosts'),
    };
  }
  return out;
}

/** A direct copy runs over ssh on the source and logs in to the target with ssh: both must be ssh hosts. */
function checkCopyTargets(v: Validator, host: HostConfig, hosts: Record<string, HostConfig>): void {
  if (!host.copyTo) return;
  const p = `hosts.${host.name}.copyTo`;
  if (host.transport !== 'ssh')
    v.fail(
      p,
      "only an ssh host can copy to another directly (a local host's copies already run here)",
      'drop `copyTo:` from this host, or make it `transport: ssh`',
    );
  for (const other of Object.keys(host.copyTo)) {
    if (other === host.name)
      v.fail(`${p}.${other}`, 'a host does not copy to itself', `remove \`${other}\` from its own copyTo`);
    const target = hosts[other];
    if (!target)
      v.fail(
        `${p}.${other}`,
        `no host \`${other}\` in this inventory`,
        `name one of: ${
          Object.keys(hosts)
            .filter((n) => n !== host.name)
            .join(', ') || '(no other host)'
        }`,
      );
    if (target.transport !== 'ssh')
      v.fail(
        `${p}.${other}`,
        `host \`${other}\` is local (this machine), reached without ssh`,
        `remove \`${other}\`: copies to this machine already go in one hop`,
      );
  }
}

function secretRef(v: Validator, raw: unknown, path: string, base: string): SecretRef {
  const fix = 'write `{ env: VAR }` or `{ file: PATH }`; a password is never written into the inventory itself';
  if (typeof raw === 'string') v.fail(path, 'a clear-text password is not accepted here', fix);
  const o = v.object(raw, path, fix);
  const keys = Object.keys(o);
  if (keys.length !== 1 || (keys[0] !== 'env' && keys[0] !== 'file'))
    v.fail(path, `expected exactly one of env or file, got ${keys.join(', ') || 'nothing'}`, fix);
  if (o.env !== undefined) return { env: v.string(o.env, `${path}.env`, fix) };
  return { file: resolvePath(base, v.string(o.file, `${path}.file`, fix)) };
}

function tls(v: Validator, raw: unknown, path: string, base: string): TlsConfig {
  if (raw === true) return { verify: true };
  const o = v.object(raw, path, 'write `tls: true` or `{ ca, cert, key, servername, verify }`');
  v.noUnknown(o, path, ['ca', 'cert', 'key', 'servername', 'verify']);
  const file = (k: string) =>
    o[k] === undefined ? undefined : resolvePath(base, v.string(o[k], `${path}.${k}`, 'give a file path'));
  if (o.verify !== undefined && typeof o.verify !== 'boolean')
    v.fail(`${path}.verify`, `expected true or false, got ${show(o.verify)}`, 'write `verify: true`');
  return {
    ca: file('ca'),
    cert: file('cert'),
    key: file('key'),
    servername: v.optString(o.servername, `${path}.servername`, 'give a host name'),
    verify: o.verify !== false,
  };
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}
