import assert from 'node:assert/strict';
import { after } from 'node:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runIdOf } from '../support/cli.js';
import { withNode } from '../support/cluster.js';
import { delayProxy, type DelayProxy } from '../support/delay-proxy.js';
import { figure, showRun, underLoad, type Show } from '../support/write-load.js';
import { test } from '../support/reliability.js';
import { audited, explained, migrationSandbox } from '../support/write-load-migration.js';

// Added latency (this kernel has no netem): a delaying TCP proxy per link. Source 16100-16105,
// target 16200-16205, sshd 16199; proxies 16300-16305 (source nodes) and 16310 (sshd).
const sb = migrationSandbox(16100, 'lat');
const { home, BASE, SOURCE_MASTERS, carried, release } = sb;
const ONE_WAY_MS = 25;
const proxies: DelayProxy[] = [];
after(async () => {
  for (const p of proxies) await p.close();
});

const portOf = (a: string) => Number(a.slice(a.lastIndexOf(':') + 1));

/** Every node of the source announces its proxy's port: clients, the runner's sync and the replicas all reach it through the delay. */
async function sourceBehindProxies(): Promise<DelayProxy[]> {
  const mine: DelayProxy[] = [];
  for (let i = 0; i < 6; i++) {
    const p = await delayProxy(16300 + i, BASE + i, ONE_WAY_MS);
    mine.push(p);
    proxies.push(p);
    await withNode(BASE + i, sb.password, (c) => c.call('CONFIG', 'SET', 'cluster-announce-port', String(p.port)));
  }
  // Wait until every node's view shows the proxied ports (gossip).
  for (let tries = 0; ; tries++) {
    const views = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) =>
        withNode(BASE + i, sb.password, (c) => c.call('CLUSTER', 'NODES') as Promise<string>),
      ),
    );
    if (views.every((v) => [0, 1, 2, 3, 4, 5].every((i) => v.includes(`:${16300 + i}@`)))) break;
    assert.ok(tries < 100, 'the nodes learnt the announced ports');
    await new Promise((r) => setTimeout(r, 100));
  }
  return mine;
}

test(`migrate-copy-files with ${ONE_WAY_MS} ms each way on the ssh link under write load: every write acknowledged before each save is on the target`, async () => {
  const ssh = await delayProxy(16310, BASE + 99, ONE_WAY_MS);
  proxies.push(ssh);
  // The same host, reached through the proxy: its port and its key under that port.
  const inv = readFileSync(sb.inventory, 'utf8');
  assert.match(inv, new RegExp(`port: ${BASE + 99}\\n`));
  // Written outside the sandbox's directory (`sandbox down` refuses to delete files it did not
  // make), so the password file it names is given by its full path.
  const slow = join(mkdtempSync(join(tmpdir(), 'rr-lat-inv-')), 'inventory.yaml');
  assert.match(inv, /file: password\n/);
  writeFileSync(
    slow,
    inv
      .replace(`port: ${BASE + 99}\n`, `port: ${ssh.port}\n`)
      .replaceAll('file: password\n', `file: ${join(dirname(sb.inventory), 'password')}\n`),
  );
  const known = /knownHosts: (\S+)/.exec(inv)![1]!;
  const line = readFileSync(known, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`[127.0.0.1]:${BASE + 99} `))!;
  writeFileSync(
    known,
    `${readFileSync(known, 'utf8').trimEnd()}\n${line.replace(`:${BASE + 99} `, `:${ssh.port} `)}\n`,
  );

  const args = ['run', 'migrate-copy-files', '--inventory', slow, '--yes', '--allow-destructive'];
  const { r, writer } = await underLoad(home, args, {
    port: BASE,
    password: sb.password,
    prefix: 'lc',
    stopAfterStep: 'persist',
  });
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  assert.ok(ssh.chunks > 100, `the copies went through the delayed link (${ssh.chunks} chunks)`);
  const lost = await carried(writer, (m) => audited(s, 'BGSAVE', m)!.at);
  const differences = explained(s, writer, Math.min(...SOURCE_MASTERS.map((m) => audited(s, 'BGSAVE', m)!.at)));
  figure(`migrate-copy-files, ${ONE_WAY_MS} ms each way on ssh`, writer, lost, differences);
  assert.ok(
    s.steps.filter((x) => x.stepId !== 'compare').every((x) => x.status === 'done'),
    r.out,
  );
});

/** Back to the nodes' own ports, and wait until every view shows them. */
async function sourceDirect(): Promise<void> {
  for (let i = 0; i < 6; i++)
    await withNode(BASE + i, sb.password, (c) => c.call('CONFIG', 'SET', 'cluster-announce-port', '0'));
  for (let tries = 0; ; tries++) {
    const views = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) =>
        withNode(BASE + i, sb.password, (c) => c.call('CLUSTER', 'NODES') as Promise<string>),
      ),
    );
    if (views.every((v) => [0, 1, 2, 3, 4, 5].every((i) => v.includes(`:${BASE + i}@`)))) return;
    assert.ok(tries < 100, 'the nodes learnt their own ports again');
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(`migrate-sync with ${ONE_WAY_MS} ms each way to every source node under write load: every write acknowledged before the cut-over is on the target`, async () => {
  const mine = await sourceBehindProxies();
  let r: Awaited<ReturnType<typeof underLoad>>['r'];
  let writer: Awaited<ReturnType<typeof underLoad>>['writer'];
  try {
    const args = [
      'run',
      'migrate-sync',
      '--inventory',
      sb.inventory,
      '--yes',
      '--allow-destructive',
      '--param',
      'rounds=2',
    ];
    ({ r, writer } = await underLoad(home, args, {
      port: BASE,
      password: sb.password,
      prefix: 'ls',
      stopAfterStep: 'cut-over',
      tailMs: 0,
    }));
  } finally {
    // The checks below find each master's slots by its own address.
    await sourceDirect();
  }
  const s = (await showRun(home, runIdOf(r))) as Show & { findings?: Array<{ key: string }> };
  await release(runIdOf(r), s);
  // The run saw the source at the proxies' addresses: each shard's PSYNC link went through the delay.
  const linked = [...r.out.matchAll(/full sync from 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  assert.ok(
    linked.length >= 3 && linked.every((p) => mine.some((x) => x.port === p)),
    `every shard synced through a proxy: ${linked.join(', ')}`,
  );
  assert.ok(
    s.audit.some((a) => portOf(a.target) >= 16300 && portOf(a.target) <= 16305),
    'the runner addressed the source through the proxies',
  );
  const cutAt = s.steps.find((x) => x.stepId === 'cut-over')!.startedAt!;
  assert.ok(writer.ackedBetween(0, cutAt).length > 500, 'the sync carried a live load');
  const lost = await carried(writer, () => cutAt);
  const differences = explained(s, writer, cutAt);
  figure(`migrate-sync, ${ONE_WAY_MS} ms each way to the source`, writer, lost, differences);
  assert.ok(
    s.steps.filter((x) => !['verify', 'report'].includes(x.stepId)).every((x) => x.status === 'done'),
    r.out,
  );
});
