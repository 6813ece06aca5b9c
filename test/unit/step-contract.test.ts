import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { declaredArgs } from '../../src/engine/plan.js';
import { loadRunbookFile, listRunbooks, stepKnobs } from '../../src/engine/runbook.js';
import { RunbookError } from '../../src/errors.js';
import { keyConditions } from '../../src/steps/cluster/verify-cluster.js';
import type { StepKind } from '../../src/steps/kind.js';
import { stepKinds } from '../../src/steps/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'rr-contract-'));
const shipped = (name: string) => readFileSync(join(process.cwd(), 'runbooks', `${name}.yaml`), 'utf8');

/** A shipped runbook with one edit, written under its own name so it loads like the original. */
function edited(name: string, from: string, to: string): string {
  const text = shipped(name);
  assert.ok(text.includes(from), `${name}.yaml contains ${from}`);
  const sub = mkdtempSync(join(dir, 'rb-'));
  const file = join(sub, `${name}.yaml`);
  writeFileSync(file, text.replace(from, to));
  return file;
}

const refused = (file: string, re: RegExp) =>
  assert.throws(
    () => loadRunbookFile(file, stepKinds),
    (e: unknown) =>
      e instanceof RunbookError && e.code === 'E_RUNBOOK_INVALID' && re.test(e.message) && e.message.includes(file),
    `refused with ${re}`,
  );

test('every shipped runbook loads: each with: key is a parameter of its kind, each step reference names an earlier step', () => {
  const rbs = listRunbooks(stepKinds);
  assert.ok(rbs.length >= 8);
  for (const rb of rbs)
    for (const s of stepKnobs(rb)) assert.ok(Object.keys(s.knobs).length > 0, `${rb.name}/${s.id} shows its knobs`);
});

test('a misspelt with: key is refused when the runbook loads, naming the file, the step and the key (a verification must not fail open)', () => {
  // baselineStep misspelt: before, verify-cluster silently dropped its "no keys lost" check.
  refused(
    edited('rebalance', 'baselineStep: preflight', 'baselinestep: preflight'),
    /steps\[2\] \(verify\)\.with\.baselinestep: `baselinestep` is not a parameter of step kind `verify-cluster` \(it takes: .*baselineStep/,
  );
});

test("a step reference that names no earlier step is refused, whether given or the kind's default", () => {
  refused(
    edited('rebalance', 'baselineStep: preflight', 'baselineStep: preflite'),
    /`preflite` is not a step before this one .*earlier steps: preflight, rebalance/,
  );
  // A later step is not an earlier one.
  refused(
    edited('migrate-copy-files', 'persistStep: persist', 'persistStep: compare'),
    /`compare` is not a step before this one/,
  );
  // The default ('preflight') must exist too when the runbook relies on it.
  refused(
    edited('migrate-sync', '- id: verify\n', '- id: compare\n'),
    /steps\[7\] \(report\)\.with\.verifyStep: `verify` \(the default\) is not a step before this one/,
  );
});

test('literal numbers and booleans in with: are checked at load', () => {
  refused(edited('migrate-copy-files', 'rounds: "1"', 'rounds: "one"'), /with\.rounds: `one` is not a number/);
  refused(edited('decommission-node', 'gone: "true"', 'gone: "maybe"'), /with\.gone: `maybe` is not true or false/);
});

test('a kind is handed only what it declares: others are absent, and reading an undeclared name throws', () => {
  const kind = stepKinds.get('shutdown-node')!;
  const raw = declaredArgs(
    kind,
    'shutdown',
    { stopTimeoutMs: '5000' },
    { cluster: 'c', node: '127.0.0.1:7000', deleteFiles: 'true', mode: 'force' },
  );
  assert.deepEqual({ ...raw }, { cluster: 'c', node: '127.0.0.1:7000', stopTimeoutMs: '5000' });
  assert.throws(() => raw.deleteFiles, /shutdown-node reads `deleteFiles`, which it does not declare/);
  assert.equal(JSON.stringify(raw), JSON.stringify({ cluster: 'c', node: '127.0.0.1:7000', stopTimeoutMs: '5000' }));
});

test('number and boolean parameters are checked once for every kind: NaN or a word is a usage error naming the step', () => {
  const kind = stepKinds.get('move-slots')!;
  const bad = (w: Record<string, string>, re: RegExp) =>
    assert.throws(
      () => declaredArgs(kind, 'move-slots', w, {}),
      (e: unknown) => e instanceof RunbookError && e.code === 'E_PARAM' && re.test(e.message),
    );
  bad({ migrateTimeoutMs: 'soon' }, /migrateTimeoutMs=soon is not a number at least 0 \(step move-slots: /);
  bad({ concurrency: '-1' }, /concurrency=-1 is not a number/);
  bad({ moveSlots: 'maybe' }, /moveSlots=maybe is not true or false/);
  // yes and no are true and false (verify-data always took them).
  assert.equal(declaredArgs(kind, 'move-slots', { moveSlots: 'yes' }, {}).moveSlots, 'true');
  // Substituted runbook parameters are checked the same way.
  assert.throws(() => declaredArgs(kind, 'move-slots', { batch: '{{b}}' }, { b: 'NaN' }), /batch=NaN is not a number/);
});

test('every kind declares its parameters with help, and only step references have type step', () => {
  for (const [name, k] of stepKinds as Map<string, StepKind>) {
    for (const [p, spec] of Object.entries(k.params)) {
      assert.ok(spec.help.length > 5, `${name}.${p} has help`);
      // Step references are named ...Step, and every ...Step is a checked reference.
      assert.equal(spec.type === 'step', p.endsWith('Step'), `${name}.${p}: type ${spec.type ?? 'string'}`);
    }
  }
});

test('a missing baseline fails the key check instead of dropping it', () => {
  const now = [{ ranges: '0-16383', master: 'a', keys: 5 }];
  for (const mode of ['per-shard', 'total'] as const) {
    const cs = keyConditions(undefined, now, mode, 'preflight');
    assert.equal(cs.length, 1);
    assert.equal(cs[0]!.ok, false);
    assert.match(cs[0]!.reason, /no key counts recorded by step preflight/);
  }
});

test("every shipped runbook's plan builds from fake topologies, each kind reading only what it declares", async () => {
  const { buildPlan } = await import('../../src/engine/plan.js');
  const { resolveParams } = await import('../../src/engine/runbook.js');
  const { fingerprintOf } = await import('../../src/redis/topology.js');
  type Node = import('../../src/redis/topology.js').TopologyNode;
  const cluster = (name: string, base: number): import('../../src/redis/topology.js').Topology => {
    const n = (i: number, role: 'master' | 'replica', slots: Array<[number, number]>, masterId?: string): Node => ({
      id: `${name}${i}`,
      address: `127.0.0.1:${base + i}`,
      role,
      masterId,
      flags: [role === 'master' ? 'master' : 'slave'],
      slots,
      configEpoch: 1,
      reachable: true,
      self: {
        version: '7.2.4',
        role,
        replOffset: 100,
        masterLinkUp: role === 'replica' ? true : undefined,
        replicaOffsets: {},
        keys: 10,
        usedMemory: 1000 + i,
        maxmemory: 0,
        clusterState: 'ok',
        persistence: {
          dir: `/d/${base + i}`,
          dbfilename: 'dump.rdb',
          appendonly: false,
          appenddirname: 'appendonlydir',
          appendfilename: 'appendonly.aof',
          clusterConfigFile: 'nodes.conf',
        },
        view: [],
      },
    });
    const nodes = [
      n(0, 'master', [[0, 5460]]),
      n(1, 'master', [[5461, 10922]]),
      n(2, 'master', [[10923, 16383]]),
      n(3, 'replica', [], `${name}0`),
      n(4, 'replica', [], `${name}1`),
      n(5, 'replica', [], `${name}2`),
    ];
    return {
      cluster: name,
      takenAt: 'now',
      seed: nodes[0]!.address,
      nodeTimeoutMs: 2000,
      nodes,
      fingerprint: fingerprintOf(nodes),
    };
  };
  const topologies = { source: cluster('source', 7000), target: cluster('target', 8000) };
  const params: Record<string, string[]> = {
    'manual-failover': ['node=127.0.0.1:7000', 'failback=true'],
    'failover-drill': ['node=127.0.0.1:7000'],
    'decommission-node': ['node=127.0.0.1:7000', 'deleteFiles=true'],
  };
  for (const rb of listRunbooks(stepKinds)) {
    try {
      const plan = buildPlan(rb, resolveParams(rb, params[rb.name] ?? []), '/inv.yaml', topologies);
      assert.ok(plan.steps.length > 0, rb.name);
      for (const s of plan.steps)
        assert.ok(s.params && typeof s.params === 'object', `${rb.name}/${s.id} shows the parameters it was handed`);
    } catch (err) {
      assert.doesNotMatch(String(err), /does not declare/, `${rb.name}: ${String(err)}`);
      throw err;
    }
  }
});

test('every step kind in a family folder is registered: its family index exports it, and the registry holds it', () => {
  const steps = join(process.cwd(), 'src', 'steps');
  const families = readdirSync(steps, { withFileTypes: true }).filter((d) => d.isDirectory());
  assert.ok(families.length >= 6, `step families: ${families.map((d) => d.name).join(', ')}`);
  let kinds = 0;
  for (const family of families) {
    const dirPath = join(steps, family.name);
    const index = readFileSync(join(dirPath, 'index.ts'), 'utf8');
    for (const file of readdirSync(dirPath).filter((n) => n.endsWith('.ts') && n !== 'index.ts')) {
      const text = readFileSync(join(dirPath, file), 'utf8');
      const exported = /^export const (\w+Step)\b[^=]*= \{\n\s+kind: '([^']+)'/m.exec(text);
      if (!exported) continue;
      kinds++;
      const line = `export { ${exported[1]} } from './${file.replace(/\.ts$/, '.js')}';`;
      assert.ok(index.includes(line), `src/steps/${family.name}/index.ts lacks \`${line}\``);
      assert.ok(stepKinds.has(exported[2]!), `the registry lacks ${exported[2]} (src/steps/${family.name}/${file})`);
    }
  }
  assert.equal(kinds, stepKinds.size, 'every registered kind lives in a family folder');
});
