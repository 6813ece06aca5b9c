/**
 * Step kinds, failover family. Promoting replicas: planned failovers, the failover drill, a killed
 * master brought back as a replica. A kind of this family is its file and one line here.
 */
export { clusterFailoverStep } from './cluster-failover.js';
export { drillFailMasterStep } from './drill-fail-master.js';
export { restartAsReplicaStep } from './restart-as-replica.js';
export { verifyFailoverStep } from './verify-failover.js';
export { waitReplicaSyncStep } from './wait-replica-sync.js';
