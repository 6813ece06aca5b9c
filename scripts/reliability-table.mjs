#!/usr/bin/env node
// Turns the JSON lines the chaos and soak cases append to RR_RELIABILITY_LOG
// into the reliability table (markdown): case | runs | passed | acknowledged
// writes lost | data differences. Usage: reliability-table.mjs <log> [<log> ...]
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (!files.length) {
  console.error(
    'usage: reliability-table.mjs <log.jsonl> [...]  (write one with RR_RELIABILITY_LOG=<file> npm run test:chaos)',
  );
  process.exit(2);
}
const rows = new Map();
for (const f of files) {
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    const row = rows.get(r.case) ?? { runs: 0, passed: 0, lost: 0, lostKnown: false, diffs: 0, diffsKnown: false };
    row.runs += 1;
    if (r.passed) row.passed += 1;
    if (typeof r.ackedLost === 'number') {
      row.lost += r.ackedLost;
      row.lostKnown = true;
    }
    if (typeof r.differences === 'number') {
      row.diffs += r.differences;
      row.diffsKnown = true;
    }
    rows.set(r.case, row);
  }
}
console.log('| case | runs | passed | acknowledged writes lost | data differences |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, r] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
  console.log(
    `| ${name} | ${r.runs} | ${r.passed} | ${r.lostKnown ? r.lost : 'no writer'} | ${r.diffsKnown ? r.diffs : 'n/a'} |`,
  );
}
