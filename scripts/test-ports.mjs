// Which of the test files' ports (test/support/ports.ts, compiled) something already listens on,
// on this machine's own network namespace: each as "port (bus of, file): process".
import { spawnSync } from 'node:child_process';

/** @param {string[]} files the test files about to run, as repository paths (test/e2e/x.test.ts) */
export async function portsInUse(files) {
  const { PORT_TABLE } = await import(new URL('../dist/test/support/ports.js', import.meta.url).href);
  const { CLUSTER_BUS_OFFSET } = await import(new URL('../dist/src/sandbox/layout.js', import.meta.url).href);
  const wanted = new Map();
  for (const row of PORT_TABLE) {
    if (!files.includes(row.file)) continue;
    for (const [lo, hi] of row.ranges)
      for (let p = lo; p <= hi; p++) {
        wanted.set(p, row.file);
        // A redis node of a sandbox binds its cluster bus port too.
        wanted.set(p + CLUSTER_BUS_OFFSET, `${row.file}, bus of ${p}`);
      }
  }
  const ss = spawnSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  // Without ss (iproute2) there is nothing to read: the suite runs as before.
  if (ss.status !== 0 || !ss.stdout) return [];
  const out = [];
  for (const line of ss.stdout.split('\n')) {
    const m = /^\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s+\S+\s*(.*)$/.exec(line.trim());
    if (!m || !wanted.has(Number(m[2]))) continue;
    const who = /\("([^"]+)",pid=(\d+)/.exec(m[3]);
    out.push({
      port: Number(m[2]),
      text: `${m[1]}:${m[2]} (${wanted.get(Number(m[2]))}): ${who ? `${who[1]} pid ${who[2]}` : 'a process of another user'}`,
    });
  }
  return out.sort((a, b) => a.port - b.port).map((o) => o.text);
}
