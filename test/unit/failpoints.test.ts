import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failpointsOf, stepFailpoint } from '../../src/engine/failpoint.js';
import { stepKinds } from '../../src/steps/registry.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

test("failpointsOf: each step's check, confirm and run boundaries, its declared points in order, then verify and done", () => {
  const plan = {
    runbook: 'r',
    steps: [
      { id: 'pre', kind: 'check-cluster', args: {} },
      { id: 'fo', kind: 'cluster-failover', args: {} },
      {
        id: 'up',
        kind: 'start-nodes',
        args: { cluster: 't', masters: ['h:1', 'h:2'], replicas: [{ address: 'h:3', master: 'h:1' }], timeoutMs: 1 },
      },
    ],
  };
  assert.deepEqual(failpointsOf(plan, stepKinds), [
    'pre.check',
    'pre.confirm',
    'pre.run',
    'pre.verify',
    'pre.done',
    'fo.check',
    'fo.confirm',
    'fo.run',
    'fo:sent',
    'fo.verify',
    'fo.done',
    'up.check',
    'up.confirm',
    'up.run',
    'up:start-sent:h:1',
    'up:start-sent:h:2',
    'up:masters-started',
    'up:start-sent:h:3',
    'up.verify',
    'up.done',
  ]);
  assert.deepEqual(failpointsOf({ runbook: 'r', steps: [] }, stepKinds), []);
  assert.throws(
    () => failpointsOf({ runbook: 'r', steps: [{ id: 'x', kind: 'no-such-kind', args: {} }] }, stepKinds),
    /unknown step kind `no-such-kind`/,
  );
});

test('a step reaching a failpoint its kind does not declare throws while crash tests arm failpoints; a declared one passes', () => {
  const step = { id: 'fo', kind: 'cluster-failover', args: {} };
  const was = process.env.REDIS_RUNBOOK_FAILPOINT;
  try {
    process.env.REDIS_RUNBOOK_FAILPOINT = 'other.run';
    assert.throws(
      () => stepFailpoint(step, 'not-declared', stepKinds),
      /step fo \(cluster-failover\) reached failpoint `not-declared`, which its kind does not declare/,
    );
    stepFailpoint(step, 'sent', stepKinds); // declared, not armed: returns
    delete process.env.REDIS_RUNBOOK_FAILPOINT;
    stepFailpoint(step, 'not-declared', stepKinds); // production: never throws for a test hook
  } finally {
    if (was === undefined) delete process.env.REDIS_RUNBOOK_FAILPOINT;
    else process.env.REDIS_RUNBOOK_FAILPOINT = was;
  }
});

/** The names a source file passes to a failpoint: a literal, or the fixed start of a template. */
function calledNames(text: string, call: RegExp): string[] {
  return [...text.matchAll(call)].map((m) => {
    const arg = m[1]!;
    const lit = /^(['`])([^'`$]*)(\$\{)?/.exec(arg);
    if (!lit)
      throw new Error(
        `a failpoint called with \`${arg}\`: use a literal name (or a template starting with one) so it can be declared`,
      );
    return lit[3] ? `${lit[2]}\${` : lit[2]!;
  });
}

test("every ctx.failpoint call site in src/steps is declared by its file's kind (and points reached through a helper too)", () => {
  // Helpers a step hands its ctx.failpoint to call it as `failpoint?.('name')`.
  const helperNames = ['hosts/copy.ts'].flatMap((f) =>
    calledNames(readFileSync(join(SRC, f), 'utf8'), /\bfailpoint\?\.\(([^)]*)\)/g),
  );
  assert.deepEqual(helperNames, ['staged']);
  let sites = 0;
  // Step files sit in family folders (src/steps/<family>/); a file name is enough to say which.
  const stepFiles = (readdirSync(join(SRC, 'steps'), { recursive: true }) as string[]).filter((n) => n.endsWith('.ts'));
  for (const f of stepFiles) {
    const text = readFileSync(join(SRC, 'steps', f), 'utf8');
    const names = calledNames(text, /ctx\.failpoint\(([^)]*)\)/g);
    if (/failpoint: ctx\.failpoint\b/.test(text)) names.push(...helperNames);
    if (!names.length) continue;
    // The declaration, on one line or wrapped over several (up to the kind's next member).
    const decl = /\n {2}failpoints: ([\s\S]*?)\n {2}(?:[a-zA-Z]+[:(]|\})/.exec(text)?.[1];
    assert.ok(decl, `${f} calls failpoints ${names.join(', ')} but declares none: add \`failpoints\` to its kind`);
    for (const n of names) {
      sites++;
      const declared = n.endsWith('${') ? decl.includes(`\`${n}`) : decl.includes(`'${n}'`);
      assert.ok(declared, `${f}: failpoint \`${n}\` is not in its kind's failpoints (${decl})`);
    }
  }
  assert.ok(sites >= 11, `found ${sites} call sites`);
});
