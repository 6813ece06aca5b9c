#!/usr/bin/env node
/**
 * `npm run lint` (run by `npm test`): the rules that keep the code's shape.
 *
 * 1. Layers. Each file of src/ belongs to a layer; it may import only from
 *    its own layer and the layers listed under it below. The engine never
 *    imports a step kind, a step never imports the CLI, and so on.
 * 2. Size, as a ratchet: lines over 120 characters and functions over 80
 *    lines are counted per file; a file may not have more than the baseline
 *    records (scripts/lint-baseline.json). Fixing one lowers the baseline
 *    (`npm run lint -- --update` writes the new counts, never higher ones;
 *    `--init` writes the first baseline of a tree that has none).
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// --root DIR: lint another tree (the linter's own test).
const rootArg = process.argv.indexOf('--root');
const ROOT = rootArg > 0 ? resolve(process.argv[rootArg + 1]) : resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const BASELINE = join(ROOT, 'scripts', 'lint-baseline.json');

const MAX_LINE = 120;
const MAX_FUNCTION = 80;

/** What each layer may import besides itself. `base`: the files directly in src/. */
const ALLOWED = {
  base: [],
  inventory: ['base'],
  hosts: ['inventory', 'base'],
  redis: ['hosts', 'inventory', 'base'],
  sandbox: ['redis', 'hosts', 'inventory', 'base'],
  data: ['redis', 'hosts', 'inventory', 'base'],
  engine: ['redis', 'hosts', 'inventory', 'base'],
  steps: ['engine', 'data', 'redis', 'hosts', 'inventory', 'base'],
  // What is shown to people about plans and runs (Markdown plans, run reports): reads the engine's
  // records and redis types, acts on nothing.
  report: ['engine', 'redis', 'hosts', 'inventory', 'base'],
  cli: ['report', 'steps', 'engine', 'data', 'sandbox', 'redis', 'hosts', 'inventory', 'base'],
};

const files = (dir) =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
const layerOf = (file) => {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? 'base' : parts[0];
};

const problems = [];
const counts = {};
for (const file of files(SRC)) {
  const text = readFileSync(file, 'utf8');
  const rel = relative(ROOT, file);
  const layer = layerOf(file);
  if (!(layer in ALLOWED))
    problems.push(
      `${rel}: layer \`${layer}\` is not in scripts/lint.mjs's ALLOWED table: add it there with what it may import`,
    );
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  let longFunctions = 0;
  const visit = (node) => {
    // Every way a module can name another: import/export ... from, import x = require(),
    // import('...') (a dynamic import, or a type position), require('...').
    let specNode;
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier)
      specNode = node.moduleSpecifier;
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      specNode = node.moduleReference.expression;
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) specNode = node.argument.literal;
    else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    )
      specNode = node.arguments[0];
    if (specNode && ts.isStringLiteralLike(specNode)) {
      const spec = specNode.text;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        const to = layerOf(target);
        if (to !== layer && !(ALLOWED[layer] ?? []).includes(to)) {
          const line = src.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          problems.push(
            `${rel}:${line}: the ${layer} layer imports ${relative(ROOT, target)} (layer ${to}); ${layer} may import only ${[layer, ...(ALLOWED[layer] ?? [])].join(', ')}`,
          );
        }
      }
    }
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node) ||
      ts.isConstructorDeclaration(node)
    ) {
      if (node.body) {
        const a = src.getLineAndCharacterOfPosition(node.body.getStart()).line;
        const b = src.getLineAndCharacterOfPosition(node.body.getEnd()).line;
        if (b - a + 1 > MAX_FUNCTION) longFunctions++;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  const longLines = text.split('\n').filter((l) => l.length > MAX_LINE).length;
  if (longLines || longFunctions) counts[rel] = { longLines, longFunctions };
}

const update = process.argv.includes('--update');
const init = process.argv.includes('--init');
let baseline = {};
try {
  baseline = JSON.parse(readFileSync(BASELINE, 'utf8'));
} catch (err) {
  // Only --init may start without one: a deleted or broken baseline must not raise the limits.
  if (!(init && err.code === 'ENOENT')) {
    console.error(
      `lint: ${relative(ROOT, BASELINE)}: ${err.code === 'ENOENT' ? 'missing' : `unreadable (${err.message})`}; restore it from git (\`npm run lint -- --init\` only for a new tree)`,
    );
    process.exit(1);
  }
}
const next = {};
for (const [rel, c] of Object.entries(counts)) {
  const b = baseline[rel] ?? { longLines: 0, longFunctions: 0 };
  if (c.longLines > b.longLines)
    problems.push(
      `${rel}: ${c.longLines} lines over ${MAX_LINE} characters, the baseline allows ${b.longLines}: wrap the new ones`,
    );
  if (c.longFunctions > b.longFunctions)
    problems.push(
      `${rel}: ${c.longFunctions} functions over ${MAX_FUNCTION} lines, the baseline allows ${b.longFunctions}: split the new one`,
    );
  next[rel] = {
    longLines: Math.min(c.longLines, b.longLines),
    longFunctions: Math.min(c.longFunctions, b.longFunctions),
  };
}
const total = (o, k) => Object.values(o).reduce((s, x) => s + x[k], 0);
if (update || init) {
  // --update only ever lowers: a file's count is what it is now, capped at what the baseline allowed.
  writeFileSync(BASELINE, JSON.stringify(init ? counts : next, null, 2) + '\n');
}
console.log(
  `lint: ${Object.keys(counts).length} files with long lines or functions (${total(counts, 'longLines')} lines over ${MAX_LINE} chars, ${total(counts, 'longFunctions')} functions over ${MAX_FUNCTION} lines; baseline ${total(baseline, 'longLines')} and ${total(baseline, 'longFunctions')})`,
);
if (problems.length) {
  for (const p of problems) console.error(`lint: ${p}`);
  process.exit(1);
}
