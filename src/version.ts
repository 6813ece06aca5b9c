import { readFileSync } from 'node:fs';

/**
 * This tool's version, from its package.json (two levels above the compiled
 * file: dist/src/version.js, in a checkout and in an installed package alike).
 * A saved plan carries it, and `run --plan` refuses a plan another version made.
 */
export const TOOL_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
