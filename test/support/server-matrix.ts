/**
 * The server-version matrix's shared parts: which server builds this machine has, a sandbox of a
 * source build and a target build, a run of a runbook against it, and the record of every outcome
 * that the docs' support table is generated from (scripts/support-table.mjs).
 *
 * Builds: REDIS_BUILDS (or REDIS_RUNBOOK_BUILDS) names a directory of builds,
 * <name>/bin/{redis,valkey}-server. `default` is the system's redis-server.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, type CliResult } from './cli.js';
import { availableBuilds } from '../../src/sandbox/servers.js';

export const BUILDS = process.env.REDIS_BUILDS ?? process.env.REDIS_RUNBOOK_BUILDS;
// The product reads REDIS_RUNBOOK_BUILDS; the tests accept REDIS_BUILDS too (CI sets that one).
if (BUILDS) process.env.REDIS_RUNBOOK_BUILDS = BUILDS;
export const builds: string[] = BUILDS && existsSync(BUILDS) ? availableBuilds(BUILDS) : [];
export const have = (b: string): boolean => b === 'default' || builds.includes(b);

/** One outcome: a runbook on a server (source = target) or a migration from one to another. */
export interface Outcome {
  runbook: string;
  source: string;
  target: string;
  /** supported: it ran and its checks passed; refused: the plan refused it, with `reason`. */
  result: 'supported' | 'refused';
  /** What the run proved (e.g. "0 differences in 3000 keys"), or the plan's refusal line. */
  detail: string;
  /** The server versions the nodes reported, e.g. "redis 6.2.16", so the table names them. */
  sourceVersion?: string;
  targetVersion?: string;
}

interface Server {
  flavor: string;
  version: string;
}

const outcomes: Outcome[] = [];

/**
 * Records an outcome: kept for the summary this file prints, and appended as a JSON line to
 * RR_SUPPORT_LOG when set (.ci/run sets it; scripts/support-table.mjs turns it into the table).
 */
export function record(o: Outcome): void {
  outcomes.push(o);
  if (process.env.RR_SUPPORT_LOG) appendFileSync(process.env.RR_SUPPORT_LOG, JSON.stringify(o) + '\n');
}

/** Prints what this file covered, or that the matrix could not run here. */
export function printCoverage(what: string): void {
  if (!builds.length) {
    console.log(`${what}: not available (set REDIS_BUILDS to a directory of builds); default server only`);
    return;
  }
  console.log(`${what}: builds ${builds.join(', ')} and the default redis-server`);
  for (const o of outcomes)
    console.log(
      `  ${o.source}${o.target !== o.source ? ` -> ${o.target}` : ''}: ${o.runbook}: ${o.result}: ${o.detail}`,
    );
}

/** A matrix sandbox: source 3 x 1 of one build at `base`, target 3 x 1 of another at base+100. */
export class MatrixSandbox {
  inventory = '';
  constructor(
    private readonly home: string,
    private readonly name: string,
    private readonly base: number,
  ) {}

  async up(source: string, target: string, extra: string[] = []): Promise<string> {
    await this.down();
    const args = ['sandbox', 'up', '--name', this.name, '--base-port', String(this.base), '--keys', '3000'];
    args.push('--target-masters', '3', ...extra);
    if (source !== 'default') args.push('--source-server', source);
    if (target !== 'default') args.push('--target-server', target);
    const r = await cli(this.home, args);
    assert.equal(r.code, 0, `sandbox of ${source} -> ${target}:\n${r.out}`);
    this.inventory = r.stdout.trim().split('\n').pop()!;
    return this.inventory;
  }

  down(): Promise<CliResult> {
    return cli(this.home, ['sandbox', 'down', '--name', this.name]);
  }

  /** Each sandbox has its own password: read again after every `up`. */
  password(): string {
    return readFileSync(join(dirname(this.inventory), 'password'), 'utf8').trim();
  }

  /** The server each cluster's nodes report (e.g. "redis 6.2.16"), from `check --json`. */
  async versions(): Promise<{ source: string; target: string }> {
    const of = async (cluster: string) => {
      const r = await cli(this.home, ['check', '--inventory', this.inventory, '--cluster', cluster, '--json']);
      const nodes = (JSON.parse(r.stdout) as { topology: { nodes: Array<{ self?: { server?: Server } }> } }).topology
        .nodes;
      const s = nodes.find((n) => n.self?.server)?.self?.server;
      return s ? `${s.flavor} ${s.version}` : 'unknown';
    };
    return { source: await of('source'), target: await of('target') };
  }

  run(runbook: string, params: string[] = []): Promise<CliResult> {
    const args = ['run', runbook, '--inventory', this.inventory, ...params.flatMap((p) => ['--param', p])];
    return cli(this.home, [...args, '--yes', '--allow-destructive']);
  }

  plan(runbook: string, params: string[] = []): Promise<CliResult> {
    const args = ['plan', runbook, '--inventory', this.inventory, ...params.flatMap((p) => ['--param', p])];
    return cli(this.home, args);
  }

  /** A full comparison of every key of source and target: returns how many keys it compared. */
  async verifyAll(): Promise<number> {
    const v = await cli(this.home, [
      'verify',
      '--inventory',
      this.inventory,
      '--source',
      'source',
      '--target',
      'target',
    ]);
    assert.equal(v.code, 0, v.out);
    const m = /verify: (\d+) keys compared, 0 differ/.exec(v.out);
    assert.ok(m, v.out);
    return Number(m[1]);
  }

  /** Runs a migration on the sandbox that is up, then a full verify of all 3000 keys; records it. */
  async migrateAndVerify(runbook: string, source: string, target: string): Promise<void> {
    const r = await this.run(runbook);
    assert.equal(r.code, 0, `${runbook}, ${source} -> ${target}:\n${r.out}`);
    const compared = await this.verifyAll();
    assert.equal(compared, 3000);
    const v = await this.versions();
    const detail = `0 differences in ${compared} keys`;
    record({ runbook, source, target, result: 'supported', detail, sourceVersion: v.source, targetVersion: v.target });
  }

  /** redis-cli of a build against one node of this sandbox, in cluster mode; fails on an error reply. */
  redis(build: string, port: number, ...args: string[]): string {
    const dir = join(BUILDS ?? '', build, 'bin');
    const bin =
      build === 'default'
        ? 'redis-cli'
        : existsSync(join(dir, 'valkey-cli'))
          ? join(dir, 'valkey-cli')
          : join(dir, 'redis-cli');
    const r = spawnSync(bin, ['-c', '-p', String(port), '-a', this.password(), '--no-auth-warning', ...args], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /^(ERR|WRONGPASS|NOAUTH)/m, r.stdout);
    return r.stdout.trim();
  }
}

/** The plan's FAIL line matching `pattern`: the reason the support table gives for a refusal. */
export function refusal(r: CliResult, pattern: RegExp): string {
  assert.notEqual(r.code, 0, r.out);
  const line = r.out.split('\n').find((l) => pattern.test(l));
  assert.ok(line, `no line matching ${pattern} in:\n${r.out}`);
  return line.replace(/^\s*(FAIL\s+)?/, '').trim();
}

/**
 * Why a test that needs these builds cannot run here, or false when it can: for `test(name,
 * { skip }, fn)`. The reason is printed too, so a machine without the builds says what it skipped.
 */
export function skipUnless(what: string, ...needed: string[]): string | false {
  const missing = needed.filter((b) => !have(b));
  if (!missing.length) return false;
  const why = BUILDS
    ? `no ${missing.join(', ')} build in ${BUILDS}`
    : `REDIS_BUILDS is not set (a directory of server builds with ${missing.join(', ')})`;
  console.log(`${what}: skipped: ${why}`);
  return why;
}
