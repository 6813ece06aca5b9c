/**
 * The inventory: which clusters exist, how to authenticate to them and how to
 * reach and control the hosts their nodes run on. Secrets are references
 * (an env var or a file), never values: the inventory can be stored and
 * printed, and a run re-resolves them on resume.
 */
export type SecretRef = { env: string } | { file: string };

export interface TlsConfig {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  /** Default true; false only for self-signed test rigs. */
  verify: boolean;
}

export interface ClusterAuth {
  /** ACL user; omitted means the `default` user (requirepass). */
  username?: string;
  password?: SecretRef;
}

export interface ClusterConfig {
  name: string;
  /** host:port of a few nodes; discovery finds the rest. */
  seeds: string[];
  auth?: ClusterAuth;
  tls?: TlsConfig;
}

export interface SshConfig {
  user?: string;
  port?: number;
  identity?: string;
  /** ProxyJump value, e.g. `bastion` or `user@bastion:22`. */
  jump?: string;
  /** A known_hosts file to use instead of ~/.ssh/known_hosts (the sandbox has its own). */
  knownHosts?: string;
}

export interface ServiceControl {
  /** Command templates; `{port}`, `{host}` and `{address}` are substituted. */
  stop?: string;
  start?: string;
  /** Kill the process without a clean shutdown (a crash drill), e.g. `systemctl kill -s KILL redis@{port}`. */
  kill?: string;
}

/**
 * How this host logs in to another host to copy files to it directly. Every
 * value is as seen from this host (a key file on this host, its known_hosts);
 * user and port default to the other host's `ssh:` entry.
 */
export interface CopyTrust {
  user?: string;
  port?: number;
  identity?: string;
  knownHosts?: string;
}

export interface HostConfig {
  name: string;
  transport: 'local' | 'ssh';
  /** The node addresses (IPs or names as CLUSTER NODES shows them) on this host. */
  addresses: string[];
  ssh?: SshConfig;
  service?: ServiceControl;
  /**
   * Hosts this one may ssh to: a copy from here to one of them runs rsync on
   * this host, pushing straight to the other (one hop, not through the runner).
   */
  copyTo?: Record<string, CopyTrust>;
}

export interface Inventory {
  /** Absolute path of the file it was read from, for messages. */
  file: string;
  clusters: Record<string, ClusterConfig>;
  hosts: Record<string, HostConfig>;
}
