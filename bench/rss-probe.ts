/**
 * Preloaded into the runner (`node --import`) by the scale benchmark: on
 * exit it writes the process's peak resident set size (getrusage's
 * ru_maxrss, in KiB, the kernel's own high-water mark) to the file named by
 * RR_BENCH_RSS_FILE. Exact, unlike sampling, and it needs nothing in the CLI.
 */
import { writeFileSync } from 'node:fs';

const out = process.env.RR_BENCH_RSS_FILE;
if (out) process.on('exit', () => writeFileSync(out, String(process.resourceUsage().maxRSS)));
