import { test, after } from 'node:test';
import { tempStateDir } from '../support/cli.js';
import { MatrixSandbox, have, printCoverage } from '../support/server-matrix.js';

// A migration is often an upgrade too. For each pair of servers this machine has, every migration
// runbook in turn on one sandbox, each ending with a full comparison of every key (`verify`):
// migrate-sync, then migrate-copy-files (same structure), then migrate-consolidate-reshard (last:
// it leaves the source's slots collected on one master). The other pairs, and the ones the plans
// refuse, are in server-pairs.test.ts (a file of its own, so that the two run side by side). One
// sandbox at a time: source 19800-19805, target 19900-19905.
const BASE = 19800;
const box = new MatrixSandbox(tempStateDir('rr-upgrades-'), 'upg', BASE);

after(async () => {
  await box.down();
  printCoverage('server matrix (migrations)');
});

const UPGRADES: Array<[string, string]> = [
  ['redis-6.2.16', 'redis-7.2.6'],
  ['default', 'redis-7.4.1'],
  ['redis-7.2.6', 'valkey-8.0.1'],
  ['redis-6.2.16', 'valkey-8.0.1'],
];
const MIGRATIONS = ['migrate-sync', 'migrate-copy-files', 'migrate-consolidate-reshard'];

for (const [source, target] of UPGRADES.filter(([s, t]) => have(s) && have(t))) {
  test(`upgrade ${source} -> ${target}: ${MIGRATIONS.join(', ')}, each ends with 0 differences`, async () => {
    await box.up(source, target);
    for (const runbook of MIGRATIONS) await box.migrateAndVerify(runbook, source, target);
  });
}
