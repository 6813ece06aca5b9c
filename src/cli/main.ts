#!/usr/bin/env node
import { Command } from 'commander';
import { RunbookError, exitCodeFor, messageOf, EXIT, usageError } from '../errors.js';
import { listRunbooks, loadRunbook, resolveParams, stepKnobs } from '../engine/runbook.js';
import { preparePlan } from '../engine/prepare.js';
import { planRefused } from '../engine/plan.js';
import { sealPlan } from '../engine/plan-seal.js';
import { discoverTopology } from '../redis/topology.js';
import { checkCluster, renderCheck } from '../redis/check.js';
import { sandboxUp, sandboxDown, sandboxStatus } from '../sandbox/sandbox.js';
import { Session } from './session.js';
import { writePlanFile } from '../engine/plan-file.js';
import { renderPlan, renderRuns, renderShow, table } from './render.js';
import { NodeLogStore } from '../engine/node-log-store.js';
import { runCommand, resumeCommand } from './run-command.js';
import { statusCommand, type StatusFlags } from './status.js';
import { reportCommand } from './report-command.js';
import { unfinishedRun } from '../engine/lifecycle.js';
import { stateDirFrom } from './state-dir.js';
import { Cleanup } from '../engine/cleanup.js';
import { stopLeftoverShake, type ShakeRecord } from '../data/engines/shake-session.js';
import { scrubStream } from '../scrub.js';
import { prepareStateDir } from '../engine/state-files.js';
import { stepKinds } from '../steps/registry.js';
import { TOOL_VERSION } from '../version.js';
import { clustersBefore, markdownPath, planFormat, writePlanMarkdown, type PlanOptions } from './plan-doc.js';
import { recordingTopologies } from '../report/plan-before.js';
import { renderPlanMarkdown } from '../report/plan-markdown.js';
import { measuredRatesIn } from '../report/plan-rates.js';

// Everything this process prints passes the scrubber, whoever prints it.
scrubStream(process.stdout);
scrubStream(process.stderr);

const program = new Command();
program
  .name('redis-runbook')
  .description('Redis Cluster high-availability operations as step-by-step, resumable runbooks')
  .option(
    '--state-dir <dir>',
    'where runs and sandboxes live (default $REDIS_RUNBOOK_HOME or ~/.local/state/redis-runbook)',
  )
  .option('--debug', 'print stack traces')
  .version(TOOL_VERSION, '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride();

const globals = () => program.opts<{ stateDir?: string; debug?: boolean }>();
const collect = (v: string, prev: string[]) => [...prev, v];
let exitCode = 0;

program
  .command('list')
  .description('list the runbooks, one line each')
  .option('--json', 'output JSON')
  .action((o: { json?: boolean }) => {
    const rbs = listRunbooks(stepKinds);
    if (o.json)
      return void console.log(
        JSON.stringify(
          rbs.map((r) => ({ name: r.name, summary: r.summary, params: r.params, steps: stepKnobs(r) })),
          null,
          2,
        ),
      );
    for (const r of rbs) console.log(`${r.name.padEnd(24)} ${r.summary}`);
  });

program
  .command('check')
  .description(
    'check a cluster as `redis-cli --cluster check` does: keys, slots and replicas per master, agreement, open slots, coverage, cluster_state',
  )
  .requiredOption('--inventory <file>', 'inventory YAML')
  .requiredOption('--cluster <name>', 'cluster name in the inventory')
  .option('--json', 'output JSON')
  .action(async (o: { inventory: string; cluster: string; json?: boolean }) => {
    const s = Session.from(globals());
    try {
      const env = s.env(s.inventory(o.inventory), 'read-only');
      const t = await discoverTopology(env.pool(o.cluster));
      const c = checkCluster(t);
      console.log(o.json ? JSON.stringify({ check: c, topology: t }, null, 2) : renderCheck(c, t));
      exitCode = c.ok ? EXIT.ok : EXIT.failed;
    } finally {
      await s.close();
    }
  });

program
  .command('plan <runbook>')
  .description(
    'build the plan read-only: every step with the commands it will send to which node, and each precondition evaluated live',
  )
  .requiredOption('--inventory <file>', 'inventory YAML')
  .option('--param <k=v>', 'runbook parameter (repeatable)', collect, [])
  .option('--out <file>', 'save the plan as JSON for `run --plan`, and the plan as Markdown beside it (.md)')
  .option('--format <format>', 'text, json or markdown (for a change ticket or a pull request)')
  .option('--json', 'output JSON (same as --format json)')
  .action(async (name: string, o: PlanOptions) => {
    const format = planFormat(o);
    const s = Session.from(globals());
    try {
      const rb = loadRunbook(name, stepKinds);
      const params = resolveParams(rb, o.param);
      const inv = s.inventory(o.inventory);
      // The topologies the plan is built from are kept for the Markdown's "before" (keys, memory, lag).
      const { env, seen } = recordingTopologies(s.env(inv, 'read-only'));
      const report = await preparePlan(rb, params, inv.file, env);
      // Saved, it is signed with this state dir's key and pinned to the inventory's content: `run --plan` checks both.
      const saved = o.out ? sealPlan(report.plan, s.stateDir, inv.file) : undefined;
      if (o.out) writePlanFile(o.out, saved!);
      const markdown =
        format === 'markdown' || o.out
          ? renderPlanMarkdown({
              report: { ...report, plan: saved ?? report.plan },
              summary: rb.summary,
              before: await clustersBefore(env, seen),
              measured: measuredRatesIn(s.stateDir),
              planFile: o.out,
              stateDir: s.stateDir,
            })
          : '';
      if (o.out) writePlanMarkdown(markdownPath(o.out), markdown);
      const text = format === 'markdown' ? markdown : renderPlan(report);
      console.log(format === 'json' ? JSON.stringify(report, null, 2) : text);
      if (o.out && format === 'text')
        console.log(
          `plan saved to ${o.out} (review: ${markdownPath(o.out)}); run exactly it: redis-runbook run --plan ${o.out}`,
        );
      exitCode = planRefused(report) ? EXIT.precondition : EXIT.ok;
    } finally {
      await s.close();
    }
  });

program
  .command('run [runbook]')
  .description('execute a runbook (guided on a terminal, unattended with --yes), or a saved plan with --plan')
  .option('--inventory <file>', "inventory YAML (with --plan: default the plan's)")
  .option('--param <k=v>', 'runbook parameter (repeatable)', collect, [])
  .option('--plan <file>', 'execute this saved plan; refused if the topology drifted since')
  .option('-y, --yes', 'unattended: do not ask before each step')
  .option('--allow-destructive', 'with --yes: also take destructive steps (FORCE/TAKEOVER, shutdowns, deletions)')
  .option('--metrics-addr <host:port>', 'serve Prometheus metrics of the run on GET /metrics there while it lasts')
  .action(
    async (
      name: string | undefined,
      o: {
        inventory?: string;
        param: string[];
        plan?: string;
        yes?: boolean;
        allowDestructive?: boolean;
        metricsAddr?: string;
      },
    ) => {
      if (!name && !o.plan)
        throw usageError(
          'E_USAGE',
          'no runbook given',
          'name a runbook (see `redis-runbook list`) or pass --plan FILE',
        );
      exitCode = await runCommand(name, { ...o, stateDir: globals().stateDir });
    },
  );

program
  .command('verify')
  .description('compare two clusters key by key (type, value, TTL) in rounds; exit 0 only when nothing differs')
  .requiredOption('--inventory <file>', 'inventory YAML')
  .requiredOption('--source <name>', 'the reference cluster (or standalone server)')
  .requiredOption('--target <name>', 'the cluster compared with it')
  .option('--mode <mode>', 'full (type, value, TTL) | length (type, length, TTL) | keys (existence, type)', 'full')
  .option('--rounds <n>', 'rounds; each later one rechecks only what differed', '3')
  .option('--qps <n>', 'keys per second read from each cluster; 0 = unlimited', '15000')
  .option('--batch <n>', 'keys per SCAN and per pipeline', '256')
  .option('--sample <percent>', 'check a random percentage of keys', '100')
  .option('--extra', 'also report keys that exist only in the target')
  .option('--pause <ms>', 'pause before each recheck round', '2000')
  .option('--ttl-tolerance <ms>', 'TTL difference tolerated', '2000')
  .option('--no-ttl', 'do not compare TTLs (type and value only, what RedisFullCheck compares)')
  .option('--stream-groups', 'compare stream consumer groups too')
  .option('--json', 'print the report as JSON')
  .option('--metrics-addr <host:port>', 'serve Prometheus metrics of the run on GET /metrics there while it lasts')
  .action(
    async (o: {
      inventory: string;
      source: string;
      target: string;
      mode: string;
      rounds: string;
      qps: string;
      batch: string;
      sample: string;
      extra?: boolean;
      pause: string;
      ttlTolerance: string;
      ttl: boolean;
      streamGroups?: boolean;
      json?: boolean;
      metricsAddr?: string;
    }) => {
      const inv = Session.from(globals()).inventory(o.inventory);
      for (const name of [o.source, o.target]) {
        if (!inv.clusters[name])
          throw usageError(
            'E_PARAM',
            `cluster \`${name}\` is not in the inventory ${inv.file}`,
            `use one of: ${Object.keys(inv.clusters).join(', ')}`,
          );
      }
      const params = [
        `source=${o.source}`,
        `target=${o.target}`,
        `mode=${o.mode}`,
        `rounds=${o.rounds}`,
        `qps=${o.qps}`,
        `batch=${o.batch}`,
        `sample=${o.sample}`,
        `extra=${!!o.extra}`,
        `pauseMs=${o.pause}`,
        `ttlToleranceMs=${o.ttlTolerance}`,
        `ttl=${o.ttl}`,
        `streamGroups=${!!o.streamGroups}`,
      ];
      let result:
        | {
            runId: string;
            report: { compared?: number; differ?: number } | null;
            differences: Array<{ key: string; kind: string; source: string; target: string }>;
          }
        | undefined;
      exitCode = await runCommand(
        'verify-data',
        {
          inventory: o.inventory,
          param: params,
          yes: true,
          stateDir: globals().stateDir,
          // With --json, the run's own narration goes to stderr so that stdout is the report alone.
          narration: o.json ? 'stderr' : 'stdout',
          metricsAddr: o.metricsAddr,
        },
        (runId, session) => {
          // The comparison's report is the output of the runbook's verify-data step, whatever its id.
          const step = session.store.steps(runId).find((s) => s.kind === 'verify-data');
          const report = (step?.output ?? null) as { compared?: number; differ?: number } | null;
          result = { runId, report, differences: session.store.findings(runId) };
        },
      );
      if (!result) return;
      if (o.json) return void console.log(JSON.stringify(result, null, 2));
      for (const f of result.differences.slice(0, 20))
        console.log(`  ${f.kind.padEnd(7)} ${f.key}: source ${f.source} | target ${f.target}`);
      if (result.differences.length > 20)
        console.log(`  ... ${result.differences.length - 20} more: redis-runbook show ${result.runId}`);
      if (result.report?.compared !== undefined)
        console.log(`verify: ${result.report.compared} keys compared, ${result.report.differ} differ`);
    },
  );

program
  .command('resume <runId>')
  .description('resume a run that was stopped, failed or killed; steps converge, nothing already done is repeated')
  .option('-y, --yes', 'unattended')
  .option('--allow-destructive', 'with --yes: also take destructive steps')
  .option(
    '--force',
    'the run is recorded as executing on another host: take it over anyway (make sure that process is gone first)',
  )
  .option('--metrics-addr <host:port>', 'serve Prometheus metrics of the run on GET /metrics there while it lasts')
  .action(
    async (id: string, o: { yes?: boolean; allowDestructive?: boolean; force?: boolean; metricsAddr?: string }) => {
      exitCode = await resumeCommand(id, { ...o, stateDir: globals().stateDir });
    },
  );

/** Walk a run's cleanup registry for `abort`; prints what was done, returns what was not. */
async function undoLeftovers(s: Session, id: string, inventoryFile: string): Promise<string[]> {
  // A RedisShake the killed run started still syncs (and holds its config open): stopped first,
  // if it is still that process (pid, start time, host and command line all match).
  const shake = s.store.getState<ShakeRecord>(id, 'sync');
  let notStopped: string[] = [];
  if (shake?.pid) {
    const r = await stopLeftoverShake(shake, (l) => console.log(`  ${l}`));
    if (r === 'stopped') {
      s.store.note(id, undefined, 'STOP-REDIS-SHAKE', [`pid ${shake.pid}`, 'abort command']);
      console.log(`  cleanup: stopped RedisShake (pid ${shake.pid}) left by the run`);
    }
    if (r === 'not-ours')
      notStopped = [
        `RedisShake pid ${shake.pid} may still run on host ${shake.host}: stop it there (it keeps writing to the target)`,
      ];
  }
  const cleanup = new Cleanup({
    get: (key) => s.store.getState(id, key),
    set: (key, value) => s.store.setState(id, key, value),
  });
  if (cleanup.items().length === 0) return notStopped;
  let env;
  try {
    env = s.env(s.inventory(inventoryFile), 'read-write', s.store);
  } catch (err) {
    console.error(`  cannot load the inventory ${inventoryFile} (${messageOf(err)}): only local files are removed`);
  }
  s.store.attach(id);
  const r = await cleanup.walk(env, ['local-dir', 'host-dir', 'config']);
  s.store.attach(undefined);
  for (const l of r.done) console.log(`  cleanup: ${l}${/^set /.test(l) ? ' (sent to Redis, journaled)' : ''}`);
  return [...notStopped, ...r.left];
}

program
  .command('abort <runId>')
  .description(
    'give up an unfinished run and release its clusters; removes what it left behind (temporary files, staging directories) and sets back the settings it changed for a sync',
  )
  .option(
    '--force',
    'the run is recorded as executing on another host: abort it anyway (make sure that process is gone first)',
  )
  .action(async (id: string, o: { force?: boolean }) => {
    const s = Session.from(globals());
    try {
      const run = unfinishedRun(s.store, id, s.stateDir, o.force, 'abort');
      s.store.note(id, undefined, 'OPERATOR-ABORT', [o.force ? 'abort command, --force' : 'abort command']);
      // What the run left behind, from its cleanup registry. The one thing sent to Redis: a
      // setting the run changed (a scan sync's notify-keyspace-events) is set back, journaled.
      const left = await undoLeftovers(s, id, run.inventoryFile);
      s.store.setRunStatus(id, 'aborted', 'aborted by the operator (abort command)');
      console.log(`run ${id} aborted; its clusters are free`);
      if (left.length) {
        for (const l of left) console.error(`  not cleaned up: ${l}`);
        exitCode = EXIT.failed;
      }
    } finally {
      await s.close();
    }
  });

program
  .command('runs')
  .description('list runs')
  .option('--json', 'output JSON')
  .action((o: { json?: boolean }) => {
    const s = Session.from(globals());
    try {
      const runs = s.store.listRuns();
      console.log(
        o.json
          ? JSON.stringify(
              runs.map(({ planJson, snapshotJson, ...r }) => r),
              null,
              2,
            )
          : renderRuns(runs),
      );
    } finally {
      void s.close();
    }
  });

program
  .command('status [runId]')
  .description(
    'what a run is doing now: the step in progress, its figures (bar, rate, ETA, lag) and how old they are; ' +
      'reads the state database only, read-only (default: the newest unfinished run, else the newest)',
  )
  .option('--watch', 'refresh until the run ends (exit 0 only if it succeeded)')
  .option('--interval <s>', 'seconds between refreshes with --watch', '2')
  .option('--json', 'output JSON (with --watch: one object per change, one per line)')
  .action(async (id: string | undefined, o: StatusFlags) => {
    exitCode = await statusCommand(stateDirFrom(globals().stateDir), id, o);
  });

program
  .command('show <runId>')
  .description('a run: steps with status and timings, outputs, and the audit log')
  .option('--json', 'output JSON')
  .option('--reads', 'also list the read-only commands (INFO, CLUSTER NODES polling) in the audit log')
  .action((id: string, o: { json?: boolean; reads?: boolean }) => {
    const s = Session.from(globals());
    try {
      const run = s.store.getRun(id);
      if (!run)
        throw usageError('E_RUN_UNKNOWN', `no run ${id} in ${s.stateDir}`, 'list runs with `redis-runbook runs`');
      const steps = s.store.steps(id);
      const audit = s.store.audit(id);
      const nodeLogs = new NodeLogStore(s.store).list(id);
      if (o.json) {
        const { snapshotJson, planJson, ...r } = run;
        console.log(
          JSON.stringify(
            { run: r, plan: JSON.parse(planJson), steps, findings: s.store.findings(id), audit, nodeLogs },
            null,
            2,
          ),
        );
      } else console.log(renderShow(run, steps, audit, o.reads, s.store.findings(id), nodeLogs));
    } finally {
      void s.close();
    }
  });

program
  .command('report <runId>')
  .description(
    'a run as a page to file: timeline, what each step measured, slot maps before and after, commands, node logs',
  )
  .option('--html <file>', 'write a self-contained HTML page (works offline, prints, reads on a phone)')
  .option('--md <file>', 'write the same as Markdown')
  .action((id: string, o: { html?: string; md?: string }) => reportCommand(id, { ...o, stateDir: globals().stateDir }));

const sandbox = program.command('sandbox').description('local Redis clusters on loopback for the demo and tests');
const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw usageError('E_USAGE', `${name} must be a non-negative integer, got \`${v}\``, `pass e.g. ${name} 3`);
  return n;
};
sandbox
  .command('up')
  .description(
    'start a `source` cluster (and a `target` with --target-masters) with mixed data; prints the inventory path',
  )
  .option('--name <name>', 'sandbox name', 'demo')
  .option('--masters <n>', 'source masters', int('--masters'), 3)
  .option('--replicas <n>', 'replicas per master', int('--replicas'), 1)
  .option('--target-masters <n>', 'also start an empty target cluster with N masters', int('--target-masters'))
  .option('--keys <n>', 'keys of mixed types to load into source', int('--keys'), 10000)
  .option('--seed-target', 'load the target with the same keys as the source (to try `verify`)')
  .option('--base-port <p>', 'first port (target uses base+100)', int('--base-port'), 7000)
  .option('--node-timeout <ms>', 'cluster-node-timeout', int('--node-timeout'), 2000)
  .option(
    '--ssh',
    "also start a loopback sshd (port base+99) and reach the nodes' host through it, as the file-copy runbooks do with real hosts",
  )
  .option('--aof', 'appendonly yes on every node (for the AOF copy)')
  .option(
    '--tls',
    'nodes serve TLS only (cluster bus and replication too), with a CA made for the sandbox; the inventory gets `tls:`',
  )
  .option(
    '--hosts <n>',
    'spread the nodes over N simulated hosts (2..8): network namespaces with their own address and sshd, behind a bridge (needs root)',
    int('--hosts'),
  )
  .option(
    '--source-server <build>',
    'the server the source runs: a build name (a <name>/bin/ in $REDIS_RUNBOOK_BUILDS) ' +
      'or a path to redis-server/valkey-server; default redis-server on PATH',
  )
  .option('--target-server <build>', 'the server the target runs (as --source-server)')
  .option(
    '--direct-copy',
    'with --hosts: let every host copy files straight to every other over ssh (inventory `copyTo:`), instead of through this machine',
  )
  .action(
    async (o: {
      name: string;
      masters: number;
      replicas: number;
      targetMasters?: number;
      seedTarget?: boolean;
      keys: number;
      basePort: number;
      nodeTimeout: number;
      ssh?: boolean;
      aof?: boolean;
      tls?: boolean;
      hosts?: number;
      directCopy?: boolean;
      sourceServer?: string;
      targetServer?: string;
    }) => {
      if (o.seedTarget && o.targetMasters === undefined)
        throw usageError('E_USAGE', '--seed-target needs a target cluster', 'add --target-masters N');
      if (o.masters < 1 || o.masters > 16)
        throw usageError('E_USAGE', `--masters must be 1..16, got ${o.masters}`, 'pass --masters 3');
      const stateDir = stateDirFrom(globals().stateDir);
      for (const n of prepareStateDir(stateDir)) console.error(`note: ${n}`);
      const info = await sandboxUp({
        stateDir,
        name: o.name,
        masters: o.masters,
        replicas: o.replicas,
        targetMasters: o.targetMasters,
        seedTarget: o.seedTarget,
        keys: o.keys,
        basePort: o.basePort,
        nodeTimeoutMs: o.nodeTimeout,
        ssh: o.ssh,
        aof: o.aof,
        tls: o.tls,
        hosts: o.hosts,
        directCopy: o.directCopy,
        sourceServer: o.sourceServer,
        targetServer: o.targetServer,
        onProgress: (l) => console.error(l),
      });
      // Progress went to stderr; stdout is the inventory path alone, for scripts: INV=$(redis-runbook sandbox up)
      console.log(info.inventoryPath);
    },
  );
sandbox
  .command('down')
  .description('stop a sandbox and delete its files')
  .option('--name <name>', 'sandbox name', 'demo')
  .action(async (o: { name: string }) => {
    const r = await sandboxDown(stateDirFrom(globals().stateDir), o.name);
    console.log(`sandbox ${o.name}: stopped ${r.stopped} nodes, files removed`);
  });
sandbox
  .command('status')
  .description('sandboxes and how many of their nodes answer')
  .option('--json', 'output JSON')
  .action(async (o: { json?: boolean }) => {
    const st = await sandboxStatus(stateDirFrom(globals().stateDir));
    if (o.json) return void console.log(JSON.stringify(st, null, 2));
    if (!st.length) return void console.log('no sandbox');
    console.log(
      table(
        ['SANDBOX', 'CLUSTER', 'SERVER', 'PORTS', 'RUNNING', 'INVENTORY'],
        st.flatMap((s) =>
          s.clusters.map((c) => [
            s.name,
            c.name,
            c.server ? `${c.server.flavor} ${c.server.version}` : 'redis-server',
            `${c.ports[0]}-${c.ports[c.ports.length - 1]}`,
            `${c.running}/${c.ports.length}`,
            s.inventoryPath,
          ]),
        ),
      ),
    );
  });

function fail(err: unknown): void {
  if (err instanceof RunbookError) console.error(`redis-runbook: ${err.describe()}`);
  else console.error(`redis-runbook: ${messageOf(err)}`);
  if (process.argv.includes('--debug') && err instanceof Error) console.error(err.stack);
  process.exitCode = exitCodeFor(err);
}

// An error that escapes (a timer, an event handler) is reported like any other: one line, no stack.
process.on('uncaughtException', (err) => {
  fail(err);
  process.exit(process.exitCode ?? 1);
});
process.on('unhandledRejection', (err) => {
  fail(err);
  process.exit(process.exitCode ?? 1);
});

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
    process.exitCode = exitCode;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') {
      process.exitCode = 0;
      return;
    }
    // `commander.help` is the help shown for no command at all (`redis-runbook`, `redis-runbook sandbox`):
    // a usage error, so that a script that lost its arguments does not "succeed".
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      process.exitCode = EXIT.usage;
      return;
    }
    fail(err);
  }
}

await main();
// Exit now: a lingering handle (a prompt, a timer) must not keep a finished command alive.
// But first let stdout and stderr drain: on a pipe they are asynchronous, and exiting
// with output still queued cut `show --json` of a long run at 64 KiB.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
process.exit(process.exitCode ?? 0);
