/**
 * The built-in sync engine alone in a process, for bench/peers-sync.ts (which runs it under
 * /usr/bin/time, so its CPU and peak RSS compare with RedisShake's process):
 * `node peers-sync-engine.js SOURCE_SEED TARGET_SEED PASSWORD_FILE [--stay]`.
 * Starts a SyncSession as bench/sync.ts does, waits until every shard reaches phase 'stream',
 * prints one JSON line {ms, keys, rdbBytes}, then stops the session and exits; with --stay it
 * goes on streaming (the incremental phase) until SIGINT.
 */
import { ClusterPool } from '../src/redis/connect.js';
import { engineFullSync } from './engine-sync.js';

const [sourceSeed, targetSeed, pwFile, mode] = process.argv.slice(2);
if (!sourceSeed || !targetSeed || !pwFile)
  throw new Error('usage: peers-sync-engine SOURCE TARGET PASSWORD_FILE [--stay]');
const interrupted = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
const pool = (name: string, seed: string) =>
  new ClusterPool({ name, seeds: [seed], auth: { password: { file: pwFile } } }, { access: 'read-write' });
const source = pool('source', sourceSeed);
const target = pool('target', targetSeed);
const r = await engineFullSync(source, target, 'peersync');
process.stdout.write(`${JSON.stringify({ ms: r.ms, keys: r.keys, rdbBytes: r.rdbBytes })}\n`);
if (mode === '--stay') await interrupted;
await r.session.stop();
await source.close();
await target.close();
process.exit(0);
