import type { Plan, PlanReport, StepInstance } from '../engine/plan.js';
import { planRefused } from '../engine/plan.js';
import type { Condition } from '../engine/step-contract.js';
import { TOOL_VERSION } from '../version.js';
import { countSlots } from '../redis/slots.js';
import { cell, code, codeCell, fmtBytes, fmtCount, fmtDuration, mdTable } from './md.js';
import { beforeClusters, predictAfter, rangesText, type ClusterAfter, type Prediction } from './plan-after.js';
import type { ClusterBefore } from './plan-before.js';
import { estimateData, estimateStep, totalText, DEFAULTS, type StepEstimate } from './estimate.js';
import type { MeasuredRates } from './plan-rates.js';
import { rollbackAdvice } from './rollback.js';

/**
 * The plan as a Markdown document for a change ticket or a pull request:
 * what runs, against what, what it destroys, what the clusters look like
 * before and after, how long it may take, how to undo each step, and the
 * command that runs exactly this plan. Pure: everything comes in as data.
 */
export interface PlanDocument {
  report: PlanReport;
  /** The runbook's one-line summary. */
  summary?: string;
  /** The clusters as read while planning (keys, memory, lag); the plan's structure alone without. */
  before?: Record<string, ClusterBefore>;
  measured?: MeasuredRates;
  /** Where the plan was saved (`plan --out`): the run command names it. */
  planFile?: string;
  /** The state dir whose key sealed it: the plan runs only with it. */
  stateDir?: string;
}

const shortId = (id: string) => id.slice(0, 8);

export function renderPlanMarkdown(d: PlanDocument): string {
  const p = d.report.plan;
  const before = beforeClusters(p, d.before);
  const prediction = predictAfter(p, d.before);
  const estimates = stepEstimates(p, prediction, before, d.measured ?? { kindMs: {} });
  const out: string[] = [`# Plan: ${p.runbook}`, ''];
  if (d.summary) out.push(`> ${d.summary.replace(/\n/g, ' ')}`, '');
  out.push(...identity(d), '');
  out.push('## Before', '');
  for (const c of Object.values(before)) out.push(...beforeSection(c), '');
  out.push('## Steps', '');
  p.steps.forEach((s, i) => out.push(...stepSection(s, i, d.report, estimates.get(s.id)), ''));
  if (p.omitted?.length) {
    out.push('Not in this plan:', '');
    for (const o of p.omitted) out.push(`- ${code(o.id)}: ${o.reason}`);
    out.push('');
  }
  out.push('## After (predicted)', '');
  for (const c of prediction.clusters) out.push(...afterSection(c), '');
  out.push(...durationSection(p, estimates), '');
  out.push(...verdict(d), '');
  return out.join('\n');
}

function identity(d: PlanDocument): string[] {
  const p = d.report.plan;
  const params = Object.entries(p.params).map(([k, v]) => code(`${k}=${v}`));
  const seal = p.seal
    ? `HMAC-SHA256 ${code(p.seal.mac)} with this state dir's key ${code(p.seal.keyId)}`
    : 'none: not saved (`plan --out FILE` saves and seals it)';
  const rows: string[][] = [
    ['Runbook', `${codeCell(p.runbook)} (definition SHA-256 ${codeCell(p.runbookHash.slice(0, 16))})`],
    ['Parameters', cell(params.join(', ') || '(none)')],
    ['Plan id', codeCell(p.id)],
    ['Plan file', d.planFile ? codeCell(d.planFile) : 'not saved'],
    ['Seal', cell(seal)],
    [
      'Inventory',
      codeCell(p.inventoryFile) + (p.inventoryDigest ? ` (SHA-256 ${codeCell(p.inventoryDigest.slice(0, 16))})` : ''),
    ],
    ['Made', cell(`${p.createdAt} by redis-runbook ${p.toolVersion ?? '(unrecorded version)'}`)],
    [
      'Topology fingerprints',
      cell(
        Object.entries(p.clusters)
          .map(([n, c]) => `${n} ${code(c.fingerprint)}`)
          .join(', '),
      ),
    ],
  ];
  if (p.toolVersion !== TOOL_VERSION)
    rows.push(['Note', cell(`rendered by redis-runbook ${TOOL_VERSION}, which will not run this plan`)]);
  return mdTable(['', ''], rows);
}

function beforeSection(c: ClusterBefore): string[] {
  const byId = new Map(c.nodes.map((n) => [n.id, n]));
  const masters = c.nodes.filter((n) => n.role === 'master');
  const num = (v: number | undefined, f: (x: number) => string) => (v === undefined ? 'unknown' : f(v));
  const out = [
    `### Cluster ${code(c.cluster)}`,
    '',
    `Read live while planning, ${c.takenAt}; topology fingerprint ${code(c.fingerprint)}.`,
    '',
    ...mdTable(
      ['Master', 'Node id', 'Slots', 'Slot count', 'Keys', 'Used memory', 'Replicas'],
      masters.map((m) => [
        codeCell(m.address) + (m.reachable ? '' : ' (unreachable)'),
        codeCell(shortId(m.id)),
        cell(rangesText(m.slots) || 'none'),
        String(countSlots(m.slots)),
        num(m.keys, fmtCount),
        num(m.usedMemory, fmtBytes) + (m.aofBytes !== undefined ? ` (AOF ${fmtBytes(m.aofBytes)})` : ''),
        String(c.nodes.filter((r) => r.masterId === m.id).length),
      ]),
    ),
  ];
  const replicas = c.nodes.filter((n) => n.role === 'replica');
  if (replicas.length) {
    out.push('', `Replicas of ${code(c.cluster)}:`, '');
    out.push(
      ...mdTable(
        ['Replica', 'Node id', 'Master', 'Link', 'Lag (bytes)'],
        replicas.map((r) => [
          codeCell(r.address) + (r.reachable ? '' : ' (unreachable)'),
          codeCell(shortId(r.id)),
          codeCell(byId.get(r.masterId ?? '')?.address ?? r.masterId ?? '?'),
          r.linkUp === undefined ? 'unknown' : r.linkUp ? 'up' : '**down**',
          num(r.lagBytes, fmtCount),
        ]),
      ),
    );
  }
  return out;
}

function stepSection(s: StepInstance, i: number, r: PlanReport, e: StepEstimate | undefined): string[] {
  const out = [`### ${i + 1}. ${code(s.id)}: ${s.title.replace(/\n/g, ' ')}`, ''];
  if (s.destructive) out.push(`> **DESTRUCTIVE**: ${s.destructive.replace(/\n/g, ' ')}`, '');
  out.push(`Kind ${code(s.kind)}.`, '');
  if (s.commands.length)
    out.push(
      ...mdTable(
        ['Node', 'Command', 'When'],
        s.commands.map((c) => [cell(c.target), codeCell(c.command), cell(c.when ?? 'always')]),
      ),
      '',
    );
  else out.push('Sends no command.', '');
  out.push(...conditions(r.preconditions[s.id]), '');
  if (e)
    out.push(`Expected duration (estimate): ${e.ms === undefined ? 'unknown' : fmtDuration(e.ms)}. ${e.basis}.`, '');
  out.push(`Rollback: ${rollbackAdvice(s, r.plan)}`);
  return out;
}

function conditions(cs: Condition[] | undefined): string[] {
  if (!cs?.length) return ['Preconditions: none.'];
  return mdTable(
    ['Precondition', 'Result', 'Reason'],
    cs.map((c) => [cell(c.name), c.ok ? 'PASS' : '**FAIL**', cell(c.reason)]),
  );
}

function afterSection(c: ClusterAfter): string[] {
  const head = `### Cluster ${code(c.cluster)}`;
  if (!c.predicted) return [head, '', `Cannot be predicted from the plan: ${c.reason}.`];
  const out = [
    head,
    '',
    ...mdTable(
      ['Master', 'Node id', 'Slots', 'Slot count', 'Keys (estimate)', 'Replicas', 'Change'],
      c.masters.map((m) => [
        codeCell(m.address),
        codeCell(shortId(m.id)),
        cell(rangesText(m.ranges) || 'none'),
        String(m.slots),
        m.keys === undefined ? 'unknown' : `~${fmtCount(m.keys)}`,
        cell(m.replicas.join(', ') || 'none'),
        cell(m.change || 'unchanged'),
      ]),
    ),
  ];
  if (c.gone.length || c.notes.length) out.push('');
  for (const g of c.gone) out.push(`- ${g}`);
  for (const n of c.notes) out.push(`- ${n}`);
  return out;
}

function stepEstimates(
  p: Plan,
  pred: Prediction,
  before: Record<string, ClusterBefore>,
  measured: MeasuredRates,
): Map<string, StepEstimate> {
  const out = new Map<string, StepEstimate>();
  for (const s of p.steps) {
    const data = dataOf(s, before);
    out.set(s.id, estimateData(s, data, measured) ?? estimateStep(s, pred.effects[s.id], p, measured));
  }
  return out;
}

/** The data a step works on: its cluster's (or source's) keys and bytes as read while planning. */
function dataOf(s: StepInstance, before: Record<string, ClusterBefore>) {
  const a = (s.args ?? {}) as Record<string, unknown>;
  const c = before[String(a.source ?? a.cluster ?? '')];
  const masters = c?.nodes.filter((n) => n.role === 'master' && n.slots.length) ?? [];
  const known = masters.length > 0 && masters.every((m) => m.keys !== undefined);
  const aof = masters.length > 0 && masters.every((m) => m.aofBytes !== undefined);
  return {
    keys: known ? masters.reduce((t, m) => t + m.keys!, 0) : undefined,
    bytes: known ? masters.reduce((t, m) => t + (aof ? m.aofBytes! : (m.usedMemory ?? 0)), 0) : undefined,
    bytesBasis: aof ? 'AOF size (aof_current_size)' : 'used_memory, a stand-in for the file size',
  };
}

function durationSection(p: Plan, est: Map<string, StepEstimate>): string[] {
  const all = p.steps.map((s) => est.get(s.id)!);
  return [
    '## Expected duration (estimate)',
    '',
    ...mdTable(
      ['Step', 'Estimate', 'Basis'],
      all.map((e) => [codeCell(e.stepId), e.ms === undefined ? 'unknown' : fmtDuration(e.ms), cell(e.basis)]),
    ),
    '',
    `Total: ${totalText(all)}.`,
    '',
    `Every figure here is an estimate. Rates marked "measured" come from earlier runs in this state ` +
      `dir; the others are this version's conservative defaults (src/report/estimate.ts), ` +
      `e.g. ${fmtCount(DEFAULTS.slotKeysPerSec.value)} ` +
      `keys/s for slot moves and ${fmtBytes(DEFAULTS.copyBytesPerSec.value)}/s for file copies.`,
  ];
}

function verdict(d: PlanDocument): string[] {
  const r = d.report;
  const failed = Object.entries(r.preconditions).flatMap(([id, cs]) =>
    cs.filter((c) => !c.ok).map((c) => `${code(id)}: ${c.name}`),
  );
  const total = Object.values(r.preconditions).reduce((n, cs) => n + cs.length, 0);
  const sd = d.stateDir ? `--state-dir ${d.stateDir} ` : '';
  const run = d.planFile
    ? `Run exactly this plan with ${code(`redis-runbook ${sd}run --plan ${d.planFile}`)} ` +
      '(same state dir: the seal is checked, and the plan runs once).'
    : `To run exactly this plan, save it with ${code(
        `redis-runbook ${sd}plan ${r.plan.runbook} --inventory ${r.plan.inventoryFile}${Object.entries(r.plan.params)
          .map(([k, v]) => ` --param ${k}=${v}`)
          .join('')} --out plan.json`,
      )}, review plan.md, then run ${code(`redis-runbook ${sd}run --plan plan.json`)}.`;
  return [
    '## Verdict',
    '',
    planRefused(r)
      ? `**${failed.length} of ${total} preconditions FAIL** (${failed.join(', ')}): a run would be refused.`
      : `**All ${total} preconditions PASS.** Nothing was changed: a plan only reads.`,
    '',
    run,
  ];
}
