import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LINT = join(process.cwd(), 'scripts', 'lint.mjs');

function tree(files: Record<string, string>, baseline?: object): string {
  const root = mkdtempSync(join(tmpdir(), 'rr-lint-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  mkdirSync(join(root, 'scripts'), { recursive: true });
  if (baseline) writeFileSync(join(root, 'scripts', 'lint-baseline.json'), JSON.stringify(baseline));
  return root;
}
const lint = (root: string) => spawnSync(process.execPath, [LINT, '--root', root], { encoding: 'utf8' });

test('the shipped tree passes the linter', () => {
  const r = spawnSync(process.execPath, [LINT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('an import that runs up the layers is refused, naming the file, the line and what the layer may import', () => {
  const root = tree(
    {
      'src/steps/kind-x.ts': 'export const x = 1;\n',
      'src/engine/plan.ts': "import { x } from '../steps/kind-x.js';\nexport const y = x;\n",
      // The other ways to name a module count too.
      'src/engine/lazy.ts':
        "export const k = () => import('../steps/kind-x.js');\nexport type T = import('../cli/main.js').M;\n",
      'src/cli/main.ts': 'export type M = number;\n',
    },
    {},
  );
  const r = lint(root);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /src\/engine\/plan\.ts:1: the engine layer imports src\/steps\/kind-x\.ts \(layer steps\); engine may import only engine, redis, hosts, inventory, base/,
  );
  assert.match(r.stderr, /src\/engine\/lazy\.ts:1: the engine layer imports src\/steps\/kind-x\.ts/);
  assert.match(r.stderr, /src\/engine\/lazy\.ts:2: the engine layer imports src\/cli\/main\.ts/);
});

test('a missing or broken baseline is an error, not a fresh start (it would raise the limits)', () => {
  const files = { 'src/redis/a.ts': 'export const a = 1;\n' };
  const missing = lint(tree(files));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /lint-baseline\.json: missing; restore it from git/);
  const root = tree(files);
  writeFileSync(join(root, 'scripts', 'lint-baseline.json'), '{ broken');
  assert.match(lint(root).stderr, /unreadable/);
});

test('more long lines or long functions than the baseline allows fail; as many pass', () => {
  const long = `export const s = '${'x'.repeat(130)}';\n`;
  const body = Array.from({ length: 85 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const files = { 'src/redis/a.ts': long + `export function f(): void {\n${body}\n}\n` };
  assert.equal(lint(tree(files, { 'src/redis/a.ts': { longLines: 1, longFunctions: 1 } })).status, 0);
  const r = lint(tree(files, { 'src/redis/a.ts': { longLines: 0, longFunctions: 0 } }));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /src\/redis\/a\.ts: 1 lines over 120 characters, the baseline allows 0/);
  assert.match(r.stderr, /src\/redis\/a\.ts: 1 functions over 80 lines, the baseline allows 0/);
});
