import type { StepKind, StepKinds } from '../engine/step-contract.js';
import * as cluster from './cluster/index.js';
import * as failover from './failover/index.js';
import * as decommission from './decommission/index.js';
import * as slots from './slots/index.js';
import * as files from './files/index.js';
import * as sync from './sync/index.js';
import * as data from './data/index.js';

/** Each family's index exports its kinds, and only them. */
const KINDS: StepKind[] = [cluster, failover, decommission, slots, files, sync, data].flatMap(
  (family) => Object.values(family) as StepKind[],
);

/**
 * Every shipped step kind: what the CLI hands the engine. A new kind is its
 * file and one line in its family's index.ts.
 */
export const stepKinds: StepKinds = new Map(KINDS.map((k) => [k.kind, k]));
