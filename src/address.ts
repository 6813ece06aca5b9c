/**
 * Node addresses, HOST:PORT as CLUSTER NODES and the inventory write them
 * (an IPv6 host in brackets: [::1]:7000). Every part of the tool splits and
 * checks them here, so brackets are handled the same way everywhere.
 */

/** HOST:PORT with the host a name, an IPv4 address or a bracketed IPv6 address. */
const ADDRESS = /^(\[[0-9a-fA-F:]+\]|[^\s:]+):(\d{1,5})$/;

/** A host name or IP literal as a node may announce it: nothing a shell or ssh would read as syntax or an option. */
export const HOST_NAME = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})|[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?)$/;

/** The host of HOST:PORT, without IPv6 brackets. */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** The port of HOST:PORT, as written. */
export function portOf(address: string): string {
  return address.slice(address.lastIndexOf(':') + 1);
}

/** HOST:PORT parsed and checked (port 1..65535), or undefined. */
export function parseAddress(s: string): { host: string; port: number } | undefined {
  const m = ADDRESS.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** HOST:PORT from CLUSTER NODES, checked before it goes into a command: a valid host and a port 1..65535. */
export function validNodeAddress(address: string): boolean {
  const i = address.lastIndexOf(':');
  if (i <= 0) return false;
  const port = portOf(address);
  const host = hostOf(address);
  return (
    /^\d{1,5}$/.test(port) &&
    Number(port) >= 1 &&
    Number(port) <= 65535 &&
    HOST_NAME.test(host) &&
    !host.startsWith('-')
  );
}
