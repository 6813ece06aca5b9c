import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ReplicaLink, parseCommand } from '../../src/data/readers/replica-link.js';
import { encodeBatch } from '../../src/data/protocol/resp-pipe.js';
import { parseRdb } from '../../src/data/protocol/rdb.js';
import { startStandalone, type Standalone } from '../support/standalone.js';

// A password-protected standalone master on 7696; the link plays its replica.
const PORT = 7696;
const PASSWORD = 'link-test-pw';
let server: Standalone;
let r: Redis;

before(async () => {
  server = await startStandalone({
    port: PORT,
    dirPrefix: 'rr-link-',
    password: PASSWORD,
    args: ['--repl-diskless-sync-delay', '0'],
  });
  r = await server.client();
});
after(async () => {
  r?.disconnect();
  await server?.stop();
});

const masterOffset = async () =>
  Number(/master_repl_offset:(\d+)/.exec((await r.call('INFO', 'replication')) as string)![1]);

async function fullSync(diskless: boolean) {
  await r.call('CONFIG', 'SET', 'repl-diskless-sync', diskless ? 'yes' : 'no');
  // Diskless with a delay: the master sends bare newlines before +FULLRESYNC while it waits.
  await r.call('CONFIG', 'SET', 'repl-diskless-sync-delay', diskless ? '2' : '0');
  const link = new ReplicaLink({ host: '127.0.0.1', port: PORT, password: PASSWORD });
  const rdb = new Promise<Buffer>((resolve) => link.once('rdb', resolve));
  const commands: Array<{ args: string[]; offset: number }> = [];
  link.on('command', (args: Buffer[], offset: number) => commands.push({ args: args.map(String), offset }));
  link.on('error', () => {});
  await link.start();
  return { link, rdb: await rdb, commands };
}

for (const diskless of [false, true]) {
  test(`full sync (${diskless ? 'diskless' : 'disk-based'}): the RDB arrives whole, then the write stream with offsets the master agrees with`, async () => {
    await r.call('FLUSHALL');
    for (let i = 0; i < 500; i++) await r.set(`k${i}`, `v${i}`);
    const { link, rdb, commands } = await fullSync(diskless);
    try {
      const file = parseRdb(rdb);
      assert.equal(file.entries.length, 500);
      await r.set('after', '1');
      await r.rpush('lst', 'a', 'b');
      await r.call('MULTI');
      await r.incr('ctr');
      await r.incr('ctr');
      await r.call('EXEC');
      for (let i = 0; i < 100 && !commands.some((c) => c.args[0] === 'EXEC'); i++)
        await new Promise((s) => setTimeout(s, 20));
      const writes = commands
        .filter((c) => c.args[0] !== 'PING' && c.args[0] !== 'SELECT')
        .map((c) => c.args.join(' '));
      assert.deepEqual(writes, ['set after 1', 'rpush lst a b', 'MULTI', 'incr ctr', 'incr ctr', 'EXEC']);
      assert.equal(link.offset, await masterOffset(), 'every byte of the stream is accounted for');
      // The master sees this link as a connected replica that acknowledged that offset.
      link.ack();
      for (let i = 0; i < 50; i++) {
        const info = (await r.call('INFO', 'replication')) as string;
        if (new RegExp(`slave0:.*offset=${link.offset}`).test(info)) break;
        await new Promise((s) => setTimeout(s, 20));
      }
      assert.match(
        (await r.call('INFO', 'replication')) as string,
        new RegExp(`slave0:.*state=online,offset=${link.offset}`),
      );
    } finally {
      link.close();
    }
  });
}

test('a link resumed with its replication id and offset continues (+CONTINUE) and gets only the writes made meanwhile', async () => {
  const { link } = await fullSync(false);
  const replid = link.replid;
  await new Promise((s) => setTimeout(s, 100));
  const offset = link.offset;
  link.close();
  await r.set('while-away', 'yes');
  const again = new ReplicaLink({ host: '127.0.0.1', port: PORT, password: PASSWORD, resume: { replid, offset } });
  const cont = new Promise((resolve) => again.once('continue', resolve));
  const cmds: string[] = [];
  again.on('command', (args: Buffer[]) => cmds.push(args.map(String).join(' ')));
  again.on('error', () => {});
  let full = false;
  again.once('fullsync', () => {
    full = true;
  });
  await again.start();
  await cont;
  for (let i = 0; i < 100 && !cmds.includes('set while-away yes'); i++) await new Promise((s) => setTimeout(s, 20));
  again.close();
  assert.equal(full, false, 'no second full sync');
  assert.ok(cmds.includes('set while-away yes'), cmds.join(' | '));
});

test('RESP command framing: partial input waits for more bytes', () => {
  const whole = encodeBatch([['SET', 'k', Buffer.from('v\r\nx')]]);
  assert.deepEqual(parseCommand(whole)!.args.map(String), ['SET', 'k', 'v\r\nx']);
  assert.equal(parseCommand(whole)!.size, whole.length);
  for (let cut = 1; cut < whole.length; cut++)
    assert.equal(parseCommand(whole.subarray(0, cut)), undefined, `cut at ${cut}`);
});
