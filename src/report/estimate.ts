import type { Plan, StepInstance } from '../engine/plan.js';
import type { StepEffect } from './plan-after.js';
import type { MeasuredRates } from './plan-rates.js';
import { fmtBytes, fmtCount, fmtDuration } from './md.js';

/**
 * How long each step of a plan may take: an estimate, from what the step
 * moves or copies (plan-after.ts) and a rate. A rate measured by earlier runs
 * in this state dir wins over the default; every default is stated with
 * where it comes from, so a reviewer can judge it.
 */

export interface Rate {
  value: number;
  /** 'measured: ...' or 'default: ...' in words. */
  source: string;
}

export interface StepEstimate {
  stepId: string;
  /** Undefined when the step's time cannot be estimated (it waits for the operator, say). */
  ms?: number;
  basis: string;
}

/**
 * Conservative defaults for a LAN (1 GbE), meant to err long. Changing one
 * here changes every plan document; measured rates replace them once a run
 * in the same state dir has done the same kind of work.
 */
export const DEFAULTS = {
  slotKeysPerSec: {
    value: 10_000,
    source:
      'default: a third of the 30,039 keys/s the native slot mover reached in docs/benchmarks.md (2-core machine, ' +
      'small values); slower with big values',
  },
  msPerSlot: {
    value: 2,
    source: 'default: SETSLOT and GETKEYSINSLOT round trips, groups of 64 slots pipelined, 8 groups at once',
  },
  copyBytesPerSec: { value: 50e6, source: 'default: ssh copy plus SHA-256 on both ends, 1 GbE' },
  saveBytesPerSec: { value: 100e6, source: 'default: BGSAVE/BGREWRITEAOF writing to local disk' },
  syncBytesPerSec: { value: 20e6, source: 'default: full sync by RESTORE into the target' },
  verifyKeysPerSec: { value: 15_000, source: "default: verify-data's qps default" },
  stepMs: { value: 5_000, source: 'default: a check or a wait on the cluster agreeing, a few seconds' },
} satisfies Record<string, Rate>;

/** Fixed times by kind when nothing is measured: what each mostly waits for. */
function fixedMs(s: StepInstance): Rate | undefined {
  const a = (s.args ?? {}) as Record<string, unknown>;
  switch (s.kind) {
    case 'cluster-failover':
      return { value: 5_000, source: 'default: a manual failover completes within CLUSTER_MF_TIMEOUT, 5 s' };
    case 'drill-fail-master': {
      const t = Number(a.nodeTimeoutMs) || 15_000;
      return {
        value: 2 * t + 5_000,
        source:
          `default: detection (cluster-node-timeout ${t} ms) plus election, twice the timeout plus 5 ` +
          `s, then the canary check`,
      };
    }
    case 'forget-node':
      return { value: 10_000, source: 'default: CLUSTER FORGET on every node, well within its 60 s window' };
    case 'stop-nodes':
    case 'start-nodes':
    case 'shutdown-node':
    case 'restart-as-replica':
      return { value: 15_000, source: 'default: a node stopping or starting and loading its data, per batch' };
    case 'wait-sync-lag':
    case 'cut-over':
      return { value: 30_000, source: 'default: the lag staying under max-lag; a pause at cut-over ends by itself' };
    default:
      return undefined;
  }
}

function kindRate(kind: string, m: MeasuredRates): Rate | undefined {
  const k = m.kindMs[kind];
  return k
    ? { value: k.ms, source: `measured: median of ${k.steps} earlier ${kind} step(s) in this state dir` }
    : undefined;
}

export function estimateStep(
  s: StepInstance,
  e: StepEffect | undefined,
  plan: Plan,
  measured: MeasuredRates,
): StepEstimate {
  const keyRate: Rate = measured.slotKeysPerSec
    ? {
        value: measured.slotKeysPerSec.value,
        source: `measured: ${measured.slotKeysPerSec.steps} earlier slot move(s) in this state dir`,
      }
    : DEFAULTS.slotKeysPerSec;
  const copyRate: Rate = measured.copyBytesPerSec
    ? {
        value: measured.copyBytesPerSec.value,
        source: `measured: ${measured.copyBytesPerSec.steps} earlier file copy step(s) in this state dir`,
      }
    : DEFAULTS.copyBytesPerSec;
  const bytes = (b: number) => `${fmtBytes(b)} (${e?.bytesBasis ?? 'used_memory, a stand-in'})`;
  if ((s.kind === 'move-slot-plan' || s.kind === 'move-slots') && e?.slots !== undefined) {
    if (!e.slots) return { stepId: s.id, ms: 0, basis: 'no slot moves' };
    const keys = e.keys ?? 0;
    const ms = (keys * 1000) / keyRate.value + e.slots * DEFAULTS.msPerSlot.value;
    return {
      stepId: s.id,
      ms,
      basis:
        `${fmtCount(e.slots)} slots, ~${fmtCount(keys)} keys, ~${bytes(e.bytes ?? 0)} at ${fmtCount(keyRate.value)} ` +
        `keys/s (${keyRate.source}) + ${DEFAULTS.msPerSlot.value} ms per slot (${DEFAULTS.msPerSlot.source})`,
    };
  }
  if (s.kind === 'copy-shard-files' && e?.bytes !== undefined)
    return {
      stepId: s.id,
      ms: (e.bytes * 1000) / copyRate.value,
      basis: `~${bytes(e.bytes)} at ${fmtBytes(copyRate.value)}/s (${copyRate.source})`,
    };
  if (s.kind === 'start-sync' && e?.bytes !== undefined)
    return {
      stepId: s.id,
      ms: (e.bytes * 1000) / DEFAULTS.syncBytesPerSec.value,
      basis:
        `full sync of ~${bytes(e.bytes)}, ~${fmtCount(e.keys ?? 0)} keys ` +
        `at ${fmtBytes(DEFAULTS.syncBytesPerSec.value)}/s ` +
        `(${DEFAULTS.syncBytesPerSec.source})`,
    };
  const measuredKind = kindRate(s.kind, measured);
  if (measuredKind) return { stepId: s.id, ms: measuredKind.value, basis: measuredKind.source };
  const fixed = fixedMs(s);
  if (fixed) return { stepId: s.id, ms: fixed.value, basis: fixed.source };
  return { stepId: s.id, ms: DEFAULTS.stepMs.value, basis: DEFAULTS.stepMs.source };
}

/** Saves and comparisons scale with the data: their size comes from the plan's keys and memory. */
export function estimateData(
  s: StepInstance,
  data: { keys?: number; bytes?: number; bytesBasis: string },
  measured: MeasuredRates,
): StepEstimate | undefined {
  const a = (s.args ?? {}) as Record<string, unknown>;
  if (kindRate(s.kind, measured)) return undefined;
  if (s.kind === 'persist-masters' && data.bytes !== undefined)
    return {
      stepId: s.id,
      ms: (data.bytes * 1000) / DEFAULTS.saveBytesPerSec.value + DEFAULTS.stepMs.value,
      basis:
        `saving ~${fmtBytes(data.bytes)} (${data.bytesBasis}) at ${fmtBytes(DEFAULTS.saveBytesPerSec.value)}/s ` +
        `(${DEFAULTS.saveBytesPerSec.source})`,
    };
  if ((s.kind === 'verify-data' || s.kind === 'verify-copy') && data.keys !== undefined) {
    const qps = Number(a.qps) > 0 ? Number(a.qps) : DEFAULTS.verifyKeysPerSec.value;
    const sample = Number(a.sample) > 0 ? Math.min(100, Number(a.sample)) / 100 : 1;
    const keys = data.keys * sample;
    return {
      stepId: s.id,
      ms: (keys * 1000) / qps + DEFAULTS.stepMs.value,
      basis:
        `~${fmtCount(keys)} keys read from each side at ${fmtCount(qps)} keys/s ` +
        `(${Number(a.qps) > 0 ? "the step's qps" : DEFAULTS.verifyKeysPerSec.source})`,
    };
  }
  return undefined;
}

export function totalText(es: StepEstimate[]): string {
  const known = es.filter((e) => e.ms !== undefined);
  const ms = known.reduce((s, e) => s + e.ms!, 0);
  return (
    `${fmtDuration(ms)} (estimate, ${known.length} of ${es.length} steps; guided runs add the time ` +
    `you take at each prompt)`
  );
}
