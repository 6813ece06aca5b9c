import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { join } from 'node:path';
import { execa } from 'execa';
import { failedError, preconditionError, messageOf } from '../errors.js';

/**
 * A sandbox with --tls: a private CA made for it, one certificate for the
 * nodes (valid for 127.0.0.1 and localhost) and one for clients, under
 * `<sandbox>/tls/`. Nodes serve TLS only (`port 0`), the cluster bus and
 * replication included, and require a client certificate; the inventory
 * names the CA and the client certificate and key, so everything the tool
 * opens has to go through TLS with verification to work at all.
 */
export interface SandboxTlsFiles {
  dir: string;
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export function sandboxTlsFiles(sandboxDir: string): SandboxTlsFiles {
  const dir = join(sandboxDir, 'tls');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'redis.crt'),
    serverKey: join(dir, 'redis.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

async function openssl(args: string[]): Promise<void> {
  let r;
  try {
    r = await execa('openssl', args, { reject: false, stdin: 'ignore', timeout: 60_000 });
  } catch (err) {
    throw failedError('E_SANDBOX_TLS', `cannot run openssl: ${messageOf(err)}`);
  }
  if ((r as { code?: string }).code === 'ENOENT')
    throw preconditionError(
      'E_OPENSSL_MISSING',
      'openssl is not on PATH',
      'install openssl (`apt-get install openssl`), or drop --tls',
    );
  if (r.exitCode !== 0)
    throw failedError(
      'E_SANDBOX_TLS',
      `openssl ${args[0]} failed: ${String(r.stderr ?? '')
        .trim()
        .split('\n')
        .slice(-3)
        .join(' | ')}`,
    );
}

/** Make the CA and the two certificates (keys mode 0600). */
export async function createSandboxTls(sandboxDir: string): Promise<SandboxTlsFiles> {
  const f = sandboxTlsFiles(sandboxDir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  const days = '3650';
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f.caKey,
    '-out',
    f.ca,
    '-days',
    days,
    '-subj',
    '/CN=redis-runbook sandbox CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leaf = async (cert: string, key: string, cn: string, ext: string) => {
    const csr = `${cert}.csr`;
    const extFile = `${cert}.ext`;
    writeFileSync(extFile, ext);
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      f.ca,
      '-CAkey',
      f.caKey,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      days,
      '-extfile',
      extFile,
    ]);
  };
  // Redis uses its one certificate both ways (it connects to its peers on the cluster bus and to its master).
  await leaf(
    f.serverCert,
    f.serverKey,
    'redis-runbook sandbox node',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  await leaf(f.clientCert, f.clientKey, 'redis-runbook', 'extendedKeyUsage=clientAuth\n');
  for (const k of [f.caKey, f.serverKey, f.clientKey]) chmodSync(k, 0o600);
  return f;
}

/** Socket options the sandbox's own connections use (the nodes accept nothing else). */
export function sandboxTlsOptions(sandboxDir: string): ConnectionOptions | undefined {
  const f = sandboxTlsFiles(sandboxDir);
  if (![f.ca, f.clientCert, f.clientKey].every((p) => existsSync(p))) return undefined;
  return {
    ca: readFileSync(f.ca),
    cert: readFileSync(f.clientCert),
    key: readFileSync(f.clientKey),
    rejectUnauthorized: true,
  };
}
