/**
 * Step kinds, decommission family. Taking a node out of a cluster: forgetting it, shutting it down,
 * deleting its files. A kind of this family is its file and one line here.
 */
export { deleteNodeFilesStep } from './delete-node-files.js';
export { forgetNodeStep } from './forget-node.js';
export { shutdownNodeStep } from './shutdown-node.js';
