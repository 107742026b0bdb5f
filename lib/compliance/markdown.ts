import { PACKS } from '../policy/packs';
import type { RuleStatus } from '../policy/policy-rule';
import type { StatusCounts } from './evaluate';
import type { StackReport } from './report';

/** Text of a Markdown table cell: one line, pipes escaped. */
const cell = (v: unknown) => String(v ?? '').replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
const code = (v: string) => `\`${v.replace(/`/g, "'")}\``;

const STATUS_TEXT: Record<RuleStatus, string> = { pass: 'pass', fail: '**FAIL**', warning: 'warning', suppressed: 'suppressed', 'not-applicable': 'not applicable' };

/** "12 pass, 1 fail, 2 suppressed" (zeros left out, except pass). */
export function countsText(c: StatusCounts): string {
  const parts = [`${c.pass} pass`];
  if (c.fail) parts.push(`${c.fail} fail`);
  if (c.warning) parts.push(`${c.warning} warning${c.warning === 1 ? '' : 's'}`);
  if (c.suppressed) parts.push(`${c.suppressed} suppressed`);
  if (c.notApplicable) parts.push(`${c.notApplicable} not applicable`);
  return parts.join(', ');
}

/**
 * One stack's report for people (auditors, the tenant's account team): what applies, each rule
 * with its outcome and requirement, the suppressions with their reasons, the live evidence.
 * `referencePath`: the domain reference from where the file is written (links to requirements).
 */
export function renderStackMarkdown(r: StackReport, referencePath: string): string {
  const out: string[] = [];
  const t = r.tenant;
  out.push(`# Compliance report: ${r.stack}${t ? ` (${t.company})` : ''}`, '');
  out.push(`Generated ${r.generatedAt} by \`tenancy compliance report\` from the registry and a synthesis of the stack (the configuration Terraform applies).`, '');
  out.push('| | |', '|---|---|');
  if (t) {
    out.push(`| Tenant | ${cell(t.slug)} (${code(t.id)}), status ${cell(t.status)} |`);
    out.push(`| Company | ${cell(t.company)} |`);
    out.push(`| Model, plan | ${t.model}, ${t.plan} |`);
    out.push(`| Region, data residency | ${t.region}, ${t.dataResidency} |`);
    out.push(`| Compliance flags | ${(['hipaa', 'pci', 'soc2', 'gdpr'] as const).filter((f) => t.compliance[f]).join(', ') || 'none'} |`);
  } else {
    out.push(`| Platform stack | shared clusters of ${r.region} |`);
  }
  out.push(`| Packs applied | ${r.packs.join(', ')} |`);
  out.push(`| Rules | ${countsText(r.totals)} |`);
  out.push(`| Live evidence | ${!r.evidence.collected ? 'not collected (no --control-plane-url or --pool-url)' : r.evidence.errors.length ? 'incomplete' : r.evidence.problems.length ? `${r.evidence.problems.length} problem(s)` : 'ok'} |`);
  out.push(`| **Result** | **${r.status.toUpperCase()}** |`, '');

  out.push('## Rules', '');
  for (const pack of r.packs) {
    const p = PACKS[pack];
    out.push(`### ${pack}: ${p.title}`, '', `Applies to ${p.appliesTo}. ${countsText(r.byPack[pack]!)}.`, '');
    out.push('| Rule | Level | Status | Checked | Requirement | What it requires |', '|---|---|---|---|---|---|');
    for (const rule of r.rules.filter((x) => x.pack === pack)) {
      out.push(`| ${code(rule.id)} | ${rule.level} | ${STATUS_TEXT[rule.status]} | ${rule.checked} | [${cell(rule.reference.section)}](${referencePath}#${rule.reference.anchor}) | ${cell(rule.explanation)} |`);
    }
    const findings = r.rules.filter((x) => x.pack === pack).flatMap((rule) => rule.findings.map((f) => ({ rule, f })));
    if (findings.length) {
      out.push('', 'Findings:', '');
      for (const { rule, f } of findings) out.push(`- ${rule.level === 'error' ? '**error**' : 'warning'} ${code(rule.id)} at ${code(f.path)}: ${f.message}`);
    }
    out.push('');
  }

  out.push('## Suppressions', '');
  if (r.suppressions.length === 0) out.push('None: every finding counts.', '');
  else {
    out.push('Findings accepted on purpose, each with the reason given where it was declared (the registry entry\'s `compliance.suppressions`, or `PolicySuppressions` on a construct).', '');
    out.push('| Rule | Construct | Reason | Declared in | Finding |', '|---|---|---|---|---|');
    for (const s of r.suppressions) out.push(`| ${code(s.rule)} | ${code(s.path)} | ${cell(s.reason)} | ${s.source} | ${cell(s.finding)} |`);
    out.push('');
  }

  out.push('## Live evidence', '');
  const e = r.evidence;
  if (!e.collected) out.push(r.kind === 'tenant' ? 'Not collected: run with `--control-plane-url` (and `--pool-url` for pool tenants) to add the data plane\'s evidence.' : 'None: platform stacks have configuration evidence only.', '');
  for (const err of e.errors) out.push(`- could not collect: ${err}`);
  if (e.errors.length) out.push('');
  if (e.problems.length) {
    out.push('Problems:', '');
    for (const p of e.problems) out.push(`- **${p}**`);
    out.push('');
  }
  const cp = e.controlPlane;
  if (cp) {
    out.push('### Control plane', '');
    out.push(`- Registered: ${cp.registered ? `yes (${cp.record!.model}, ${cp.record!.plan}, ${cp.record!.region}, status ${cp.record!.status})` : '**no**'}`);
    const log = cp.auditLog;
    out.push(`- Audit log: ${log.entries} entries${log.firstAt ? ` from ${log.firstAt} to ${log.lastAt}` : ''}; append-only enforced (ownership, privileges, hash chain): ${log.appendOnly ? 'yes' : `**no** (${log.appendOnlyProblems.join('; ')})`}${log.chain?.head ? `; chain head ${log.chain.head.seq}:${log.chain.head.hash}` : ''}; hook runs audited: ${log.hookRunsAudited} of ${log.hookRuns}`);
    if (Object.keys(log.actions).length) out.push(`- Audited actions: ${Object.entries(log.actions).map(([a, n]) => `${a} ×${n}`).join(', ')}`);
    if (cp.hooks.length) out.push(`- Latest hook runs: ${cp.hooks.map((h) => `${h.hook} ${h.status} at ${h.finishedAt}`).join('; ')}`);
    out.push('');
    if (cp.migrations.length) {
      out.push('| Migration target | Kind | Version | Status | Updated |', '|---|---|---|---|---|');
      for (const m of cp.migrations) out.push(`| ${code(m.target)} | ${m.kind} | ${m.version} | ${m.status}${m.error ? `: ${cell(m.error)}` : ''} | ${m.updatedAt} |`);
    } else out.push('No migration state recorded for the tenant.');
    out.push('');
  }
  const pool = e.pool;
  if (pool) {
    out.push(`### Pool database ${code(pool.database)}`, '');
    out.push(`- RLS audit (${pool.rls.generatedAt}, application role ${code(pool.rls.appRole)}): ${pool.rls.ok ? 'clean' : '**problems found**'}; tables with tenant_id: ${pool.rls.tables.map(code).join(', ') || 'none'}${pool.rls.views.length ? `; views over them: ${pool.rls.views.map(code).join(', ')}` : ''}`);
    out.push(`- Pool coverage: shared (read-only, no tenant data): ${pool.rls.shared.map(code).join(', ') || 'none'}; ${pool.rls.uncovered.length ? `**neither tenant nor shared: ${pool.rls.uncovered.map(code).join(', ')}**` : 'every relation is a tenant table or shared'}${pool.rls.warnings.length ? `; warnings: ${pool.rls.warnings.join('; ')}` : ''}`);
    out.push(`- Migrations: ${pool.migrations.stateTable ? `version ${pool.migrations.version} (${pool.migrations.applied.map((m) => `${m.version} ${m.name}`).join(', ')})` : '**no state table**'}`);
    out.push(`- Erasure path (GDPR): ${pool.erasure.statements.length ? pool.erasure.statements.map(code).join('; ') : 'no table holds tenant rows'}`, '');
  }

  out.push('## Reading this report', '');
  out.push('Each rule checks the synthesized configuration of this stack, the last step before Terraform applies it: a failing rule also fails `cdktf synth`, so a deployed stack passed every rule that was not suppressed when it was deployed. "Not applicable" means the stack has nothing the rule checks (e.g. no database of its own). The JSON file beside this one holds the same data for tools.', '');
  return out.join('\n');
}
