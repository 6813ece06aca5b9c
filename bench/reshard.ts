/**
 * The native slot-migration engine (src/redis/slot-move.ts) against
 * `redis-cli --cluster reshard` at its default pipeline (10 keys per
 * MIGRATE), moving the same slots holding the same keys in the same run:
 * redis-cli moves every slot of master A to master B, then the engine moves
 * them back, and the next round swaps the order. Keys/s each, and the ratio.
 */
import { execa } from 'execa';
import { moveSlots, type SlotMove } from '../src/redis/slot-move.js';
import { rangesToSlots } from '../src/redis/slots.js';
import { median } from './stats.js';
import { slotSandbox } from './slot-sandbox.js';
import { benchCli } from './bench-cli.js';

const BASE = 8200;
const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const { cli } = benchCli('reshard');

async function main(): Promise<void> {
  const { pool, password, masters, a, b, view, settle } = await slotSandbox(cli, {
    name: 'reshard',
    base: BASE,
    keys: KEYS,
  });
  const slots = rangesToSlots(a.slots);
  const keysIn = async (addr: string) => Number(await pool.node(addr).call('DBSIZE'));
  const moved = await keysIn(a.address);
  process.stderr.write(`moving ${slots.length} slots holding ${moved} keys between ${a.address} and ${b.address}\n`);

  const redisCli = async (from: typeof a, to: typeof a) => {
    const t0 = Date.now();
    const r = await execa(
      'redis-cli',
      [
        '--cluster',
        'reshard',
        `127.0.0.1:${BASE + 2}`,
        '--cluster-from',
        from.id,
        '--cluster-to',
        to.id,
        '--cluster-slots',
        String(slots.length),
        '--cluster-yes',
      ],
      { env: { REDISCLI_AUTH: password }, reject: false, stdout: 'ignore', stderr: 'pipe' },
    );
    if (r.exitCode !== 0) throw new Error(`redis-cli reshard failed: ${r.stderr}`);
    return Date.now() - t0;
  };
  const engine = async (from: typeof a, to: typeof a) => {
    const moves: SlotMove[] = slots.map((slot) => ({
      slot,
      from: { id: from.id, address: from.address },
      to: { id: to.id, address: to.address },
    }));
    const t0 = Date.now();
    await moveSlots(pool, moves, {
      batch: 100,
      migrateTimeoutMs: 20000,
      masters: masters.map((m) => m.address),
      concurrency: 8,
    });
    return Date.now() - t0;
  };
  const cliMs: number[] = [];
  const engMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which tool moves first, so that neither always finds a freshly moved layout.
    for (const tool of i % 2 === 0 ? ['cli', 'engine'] : ['engine', 'cli']) {
      const owner = (await view()).find((l) => l.id === a.id)!.slots.length > 0 ? [a, b] : [b, a];
      const ms = tool === 'cli' ? await redisCli(owner[0]!, owner[1]!) : await engine(owner[0]!, owner[1]!);
      (tool === 'cli' ? cliMs : engMs).push(ms);
      process.stderr.write(
        `round ${i + 1}: ${tool} moved ${moved} keys in ${ms} ms (${Math.round(moved / (ms / 1000))} keys/s)\n`,
      );
      // Let gossip spread the new owners before the next move reads them.
      await settle();
    }
  }
  const total =
    (await keysIn(a.address)) +
    (await keysIn(b.address)) +
    (await keysIn(masters.find((m) => m.id !== a.id && m.id !== b.id)!.address));
  await pool.close();
  cli(['sandbox', 'down', '--name', 'reshard']);
  if (total !== KEYS) throw new Error(`key count changed: ${total} != ${KEYS}`);
  const kps = (ms: number) => Math.round(moved / (ms / 1000));
  console.log(
    `\nslot migration: ${slots.length} slots holding ${moved} keys (of ${KEYS}), 3 masters, no replicas, ${ROUNDS} rounds each, medians`,
  );
  console.log('| mover | median ms | keys/s | runs (ms) | ratio |');
  console.log('|---|---|---|---|---|');
  console.log(
    `| baseline: redis-cli --cluster reshard (pipeline 10) | ${median(cliMs)} | ${kps(median(cliMs))} | ${cliMs.join(', ')} | 1.00 |`,
  );
  console.log(
    `| engine: moveSlots (groups of 64 slots pipelined, one MIGRATE per slot, 8 groups at once) | ${median(engMs)} | ${kps(median(engMs))} | ${engMs.join(', ')} | ${(median(cliMs) / median(engMs)).toFixed(2)} |`,
  );
  console.log(`key total after all moves: ${total} (unchanged)`);
}

try {
  await main();
} finally {
  cli(['sandbox', 'down', '--name', 'reshard']);
}
