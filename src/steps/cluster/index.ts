/**
 * Step kinds, cluster family. Reading and settling a whole cluster: health checks before and after a
 * change. A kind of this family is its file and one line here.
 */
export { checkClusterStep } from './check-cluster.js';
export { verifyClusterStep } from './verify-cluster.js';
export { waitForAgreementStep } from './wait-for-agreement.js';
