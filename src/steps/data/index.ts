/**
 * Step kinds, data family. Comparing the data of two clusters key by key. A kind of this family is its
 * file and one line here.
 */
export { verifyDataStep } from './verify-data.js';
