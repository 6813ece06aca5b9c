import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { preconditionError } from '../errors.js';
import type { Plan } from './plan.js';
import { TOOL_VERSION } from '../version.js';

/**
 * A saved plan is tamper-evident. `plan --out` signs it with an HMAC key
 * kept in the state dir (created 0600 on first use, never printed), and pins
 * it to the inventory file's content (SHA-256). `run --plan` accepts it only
 * when the signature verifies with that state dir's key (so a plan made
 * elsewhere, or edited, is refused) and the runbook, resolved again from the
 * same parameters against the live topology, gives exactly the same steps.
 */

const KEY_FILE = 'plan.key';

/** The state dir's plan key; created (mode 0600) when `create` and there is none. */
export function planKey(stateDir: string, create: boolean): Buffer | undefined {
  const file = join(stateDir, KEY_FILE);
  try {
    return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) return undefined;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  try {
    // O_EXCL: two `plan` commands at once end with one key, the second reads it.
    const fd = openSync(file, 'wx', 0o600);
    writeSync(fd, randomBytes(32).toString('hex') + '\n');
    closeSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
}

/** Names the key without revealing it: a plan says which state dir signed it. */
function keyId(key: Buffer): string {
  return createHash('sha256').update('redis-runbook plan key id\0').update(key).digest('hex').slice(0, 16);
}

/** JSON with object keys sorted: the signed bytes do not depend on key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonical(x === undefined ? null : x)).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function inventoryDigest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function mac(key: Buffer, plan: Plan): string {
  const { seal: _seal, ...body } = plan;
  return createHmac('sha256', key).update(canonical(body)).digest('hex');
}

/** The plan as `plan --out` saves it: pinned to the inventory's content and signed with the state dir's key. */
export function sealPlan(plan: Plan, stateDir: string, inventoryFile: string): Plan {
  const key = planKey(stateDir, true)!;
  const pinned: Plan = { ...plan, inventoryDigest: inventoryDigest(inventoryFile) };
  delete pinned.seal;
  return { ...pinned, seal: { keyId: keyId(key), mac: mac(key, pinned) } };
}

export type SealStatus = 'ok' | 'unsigned' | 'foreign' | 'altered';

export function sealStatus(plan: Plan, stateDir: string): SealStatus {
  if (!plan.seal || typeof plan.seal.mac !== 'string') return 'unsigned';
  const key = planKey(stateDir, false);
  if (!key || plan.seal.keyId !== keyId(key)) return 'foreign';
  const want = Buffer.from(mac(key, plan), 'hex');
  const got = Buffer.from(plan.seal.mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want) ? 'ok' : 'altered';
}

/** A plan signed by another state dir (or by a key since replaced) is refused before anything else is looked at. */
export function assertNotForeign(plan: Plan, status: SealStatus, stateDir: string): void {
  if (status !== 'foreign') return;
  throw preconditionError(
    'E_PLAN_FOREIGN',
    `plan ${plan.id} was not made with this state dir (${stateDir}): it is signed with another state dir's key`,
    `a saved plan runs only with the --state-dir that made it (this also keeps it single-use: its runs are journaled there); make a new plan with this state dir and review it`,
  );
}

/**
 * A plan is executed by the version that made it: another version may resolve
 * the same runbook to other steps, or read a step's arguments differently.
 */
export function assertSameToolVersion(plan: Plan): void {
  if (plan.toolVersion === TOOL_VERSION) return;
  const maker = plan.toolVersion
    ? `redis-runbook ${plan.toolVersion}`
    : 'a redis-runbook that did not record its version';
  throw preconditionError(
    'E_PLAN_TOOL_VERSION',
    `plan ${plan.id} was made by ${maker}, and this is redis-runbook ${TOOL_VERSION}`,
    `make a new plan with this version (\`redis-runbook plan ${plan.runbook} ... --out FILE\`) and review it`,
  );
}

export function assertInventoryPinned(plan: Plan, inventoryFile: string): void {
  const now = inventoryDigest(inventoryFile);
  if (plan.inventoryDigest === now) return;
  throw preconditionError(
    'E_PLAN_INVENTORY_CHANGED',
    plan.inventoryDigest
      ? `the inventory ${inventoryFile} is not the one plan ${plan.id} was made from (its SHA-256 was ${plan.inventoryDigest.slice(0, 12)}..., is now ${now.slice(0, 12)}...)`
      : `plan ${plan.id} is not pinned to an inventory (made by an older version, or edited)`,
    `make a new plan from the inventory as it is now, and review it`,
  );
}

/** Where two values first differ, as a path (`args.replica`), with both values shortened. */
function firstDifference(
  a: unknown,
  b: unknown,
  path: string,
): { path: string; saved: string; now: string } | undefined {
  if (canonical(a) === canonical(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`,
      );
      if (d) return d;
    }
  }
  // Two long strings: show each from a little before where they part, not two identical prefixes.
  let from = 0;
  if (typeof a === 'string' && typeof b === 'string') {
    while (from < a.length && a[from] === b[from]) from++;
    from = Math.max(0, from - 40);
  }
  const show = (v: unknown) => {
    if (v === undefined) return '(absent)';
    const s = typeof v === 'string' && from > 0 ? `...${JSON.stringify(v.slice(from))}` : canonical(v);
    return s.length > 80 ? `${s.slice(0, 80)}...` : s;
  };
  return { path, saved: show(a), now: show(b) };
}

/**
 * Compare a saved plan with the runbook resolved again (same parameters,
 * same plan time, live topology): every step's id, kind, title, args,
 * commands and destructive flag must be the same. Returns the differences
 * in words (empty when none).
 */
export function planDifferences(saved: Plan, fresh: Plan, o: { structuralOnly?: boolean } = {}): string[] {
  const out: string[] = [];
  const n = Math.max(saved.steps.length, fresh.steps.length);
  for (let i = 0; i < n; i++) {
    const s = saved.steps[i];
    const f = fresh.steps[i];
    if (!s) {
      out.push(`step ${i + 1} (${f!.id}) is missing from the saved plan`);
      continue;
    }
    if (!f) {
      out.push(`step ${i + 1} (${s.id}) is not in the runbook's plan`);
      continue;
    }
    if (s.id !== f.id) {
      out.push(`step ${i + 1} is ${s.id} in the saved plan, ${f.id} when resolved now`);
      continue;
    }
    // A plan whose signature holds was not edited: what may differ then is only what the live
    // cluster measures (keys, memory, sizes in args and titles), which the steps read again when
    // they run. Its shape must still be the same: the same steps, destructive where they were.
    const fields = o.structuralOnly
      ? (['id', 'kind'] as const)
      : (['id', 'kind', 'title', 'args', 'commands', 'destructive'] as const);
    if (o.structuralOnly && !!s.destructive !== !!f.destructive)
      out.push(
        `step ${f.id}: ${f.destructive ? `is destructive now (${f.destructive})` : 'is no longer destructive'}, not so in the saved plan`,
      );
    for (const field of fields) {
      const d = firstDifference(s[field], f[field], field);
      if (d) out.push(`step ${f.id}: ${d.path} is ${d.saved} in the saved plan, ${d.now} when resolved now`);
    }
  }
  const d = firstDifference(
    (saved.omitted ?? []).map((x) => (o.structuralOnly ? x.id : x)),
    (fresh.omitted ?? []).map((x) => (o.structuralOnly ? x.id : x)),
    'omitted',
  );
  if (d) out.push(`${d.path}: ${d.saved} in the saved plan, ${d.now} when resolved now`);
  return out.length > 4 ? [...out.slice(0, 4), `and ${out.length - 4} more difference(s)`] : out;
}

export function tampered(plan: Plan, what: string): Error {
  return preconditionError(
    'E_PLAN_TAMPERED',
    `plan ${plan.id} is not the plan \`redis-runbook plan\` made: ${what}; nothing was run`,
    `make a new plan with \`redis-runbook plan ${plan.runbook} ... --out FILE\` and review it (if nobody edited the file, the cluster changed in a way that changes the plan)`,
  );
}
