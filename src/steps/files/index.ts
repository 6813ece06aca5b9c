/**
 * Step kinds, files family. Migrating by node files: matching shards, saving, stopping, backing up,
 * copying and starting nodes. A kind of this family is its file and one line here.
 */
export { backupNodeFilesStep } from './backup-node-files.js';
export { copyShardFilesStep } from './copy-shard-files.js';
export { matchShardsStep } from './match-shards.js';
export { persistMastersStep } from './persist-masters.js';
export { startNodesStep } from './start-nodes.js';
export { stopNodesStep } from './stop-nodes.js';
export { verifyCopyStep } from './verify-copy.js';
