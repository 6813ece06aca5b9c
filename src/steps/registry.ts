import type { StepKind, StepKinds } from '../engine/step-contract.js';
import { checkClusterStep } from './check-cluster.js';
import { waitReplicaSyncStep } from './wait-replica-sync.js';
import { clusterFailoverStep } from './cluster-failover.js';
import { waitForAgreementStep } from './wait-for-agreement.js';
import { verifyFailoverStep } from './verify-failover.js';
import { verifyDataStep } from './verify-data.js';
import { drillFailMasterStep } from './drill-fail-master.js';
import { restartAsReplicaStep } from './restart-as-replica.js';
import { verifyClusterStep } from './verify-cluster.js';
import { moveSlotsStep } from './move-slots.js';
import { forgetNodeStep } from './forget-node.js';
import { shutdownNodeStep } from './shutdown-node.js';
import { deleteNodeFilesStep } from './delete-node-files.js';
import { matchShardsStep } from './match-shards.js';
import { persistMastersStep } from './persist-masters.js';
import { stopNodesStep } from './stop-nodes.js';
import { backupNodeFilesStep } from './backup-node-files.js';
import { copyShardFilesStep } from './copy-shard-files.js';
import { startNodesStep } from './start-nodes.js';
import { verifyCopyStep } from './verify-copy.js';
import { moveSlotPlanStep } from './move-slot-plan.js';
import { checkSyncStep } from './check-sync.js';
import { startSyncStep } from './start-sync.js';
import { waitFullSyncStep } from './wait-full-sync.js';
import { waitSyncLagStep } from './wait-sync-lag.js';
import { cutOverStep } from './cut-over.js';
import { syncReportStep } from './sync-report.js';

const KINDS: StepKind[] = [
  checkClusterStep,
  waitReplicaSyncStep,
  clusterFailoverStep,
  waitForAgreementStep,
  verifyFailoverStep,
  verifyDataStep,
  drillFailMasterStep,
  restartAsReplicaStep,
  verifyClusterStep,
  moveSlotsStep,
  forgetNodeStep,
  shutdownNodeStep,
  deleteNodeFilesStep,
  matchShardsStep,
  persistMastersStep,
  stopNodesStep,
  backupNodeFilesStep,
  copyShardFilesStep,
  startNodesStep,
  verifyCopyStep,
  moveSlotPlanStep,
  checkSyncStep,
  startSyncStep,
  waitFullSyncStep,
  waitSyncLagStep,
  cutOverStep,
  syncReportStep,
];

/** Every shipped step kind: what the CLI hands the engine. A new kind is its file and one entry in KINDS. */
export const stepKinds: StepKinds = new Map(KINDS.map((k) => [k.kind, k]));
