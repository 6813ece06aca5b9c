/**
 * Step kinds, sync family. Migrating by replication: the sync engine started, followed, cut over and
 * reported. A kind of this family is its file and one line here.
 */
export { checkSyncStep } from './check-sync.js';
export { cutOverStep } from './cut-over.js';
export { startSyncStep } from './start-sync.js';
export { syncReportStep } from './sync-report.js';
export { waitFullSyncStep } from './wait-full-sync.js';
export { waitSyncLagStep } from './wait-sync-lag.js';
