import { basename } from 'node:path';
import { PACKS } from '../policy/packs';
import type { RuleStatus } from '../policy/policy-rule';
import { esc } from './esc';
import { countsText } from './markdown';
import type { StackReport } from './report';

const STATUS_TEXT: Record<RuleStatus, string> = { pass: 'pass', fail: 'FAIL', warning: 'warning', suppressed: 'suppressed', 'not-applicable': 'not applicable' };
const code = (v: unknown) => `<code>${esc(v)}</code>`;
const list = (items: readonly string[]) => (items.length ? `<ul>\n${items.map((i) => `<li>${i}</li>`).join('\n')}\n</ul>` : '');

/**
 * One stack's page (the fleet summary links here): the same content as its Markdown report, as
 * HTML. Every value is escaped: stack names, companies, findings and reasons are data.
 * `referenceHref`: the domain reference's page from this page (inside the report folder), or
 * undefined when no reference could be copied (requirements are then named, not linked).
 */
export function renderStackHtml(r: StackReport, referenceHref: string | undefined): string {
  const t = r.tenant;
  const facts: [string, string][] = t
    ? [
      ['Tenant', `${esc(t.slug)} (${code(t.id)}), status ${esc(t.status)}`],
      ['Company', esc(t.company)],
      ['Model, plan', `${esc(t.model)}, ${esc(t.plan)}`],
      ['Region, data residency', `${esc(t.region)}, ${esc(t.dataResidency)}`],
      ['Compliance flags', esc((['hipaa', 'pci', 'soc2', 'gdpr'] as const).filter((f) => t.compliance[f]).join(', ') || 'none')],
    ]
    : [['Platform stack', `shared clusters of ${esc(r.region)}`]];
  const e = r.evidence;
  facts.push(
    ['Packs applied', esc(r.packs.join(', '))],
    ['Rules', esc(countsText(r.totals))],
    ['Live evidence', esc(!e.collected ? 'not collected (no --control-plane-url or --pool-url)' : e.errors.length ? 'incomplete' : e.problems.length ? `${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}` : 'ok')],
    ['Result', `<b class="status ${esc(r.status)}" data-field="status">${esc(r.status.toUpperCase())}</b>`],
  );

  const packs = r.packs.map((pack) => {
    const p = PACKS[pack];
    const rules = r.rules.filter((x) => x.pack === pack);
    const requirement = (section: string, anchor: string) => (referenceHref ? `<a href="${esc(`${referenceHref}#${anchor}`)}">${esc(section)}</a>` : esc(section));
    const rows = rules.map((rule) => `<tr class="${esc(rule.status)}" data-rule="${esc(rule.id)}"><td>${code(rule.id)}</td><td>${esc(rule.level)}</td><td class="status ${esc(rule.status)}">${esc(STATUS_TEXT[rule.status])}</td><td>${rule.checked}</td><td>${requirement(rule.reference.section, rule.reference.anchor)}</td><td>${esc(rule.explanation)}</td></tr>`);
    const findings = rules.flatMap((rule) => rule.findings.map((f) => `<span class="${rule.level === 'error' ? 'fail' : 'warning'}">${rule.level}</span> ${code(rule.id)} at ${code(f.path)}: ${esc(f.message)}`));
    return `<h3>${esc(pack)}: ${esc(p.title)}</h3>
<p>Applies to ${esc(p.appliesTo)}. ${esc(countsText(r.byPack[pack]!))}.</p>
<table class="rules" data-pack="${esc(pack)}"><thead><tr><th>Rule</th><th>Level</th><th>Status</th><th>Checked</th><th>Requirement</th><th>What it requires</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
${findings.length ? `<p>Findings:</p>\n${list(findings)}` : ''}`;
  });

  const suppressions = r.suppressions.length
    ? `<p>Findings accepted on purpose, each with the reason given where it was declared (the registry entry's <code>compliance.suppressions</code>, or <code>PolicySuppressions</code> on a construct).</p>
<table id="suppressions"><thead><tr><th>Rule</th><th>Construct</th><th>Reason</th><th>Declared in</th><th>Finding</th></tr></thead>
<tbody>
${r.suppressions.map((s) => `<tr><td>${code(s.rule)}</td><td>${code(s.path)}</td><td>${esc(s.reason)}</td><td>${esc(s.source)}</td><td>${esc(s.finding)}</td></tr>`).join('\n')}
</tbody></table>`
    : '<p>None: every finding counts.</p>';

  const evidence: string[] = [];
  if (!e.collected) evidence.push(`<p>${r.kind === 'tenant' ? 'Not collected: run with <code>--control-plane-url</code> (and <code>--pool-url</code> for pool tenants) to add the data plane\'s evidence.' : 'None: platform stacks have configuration evidence only.'}</p>`);
  if (e.errors.length) evidence.push(list(e.errors.map((x) => `could not collect: ${esc(x)}`)));
  if (e.problems.length) evidence.push(`<p>Problems:</p>\n<ul id="evidence-problems">\n${e.problems.map((x) => `<li class="fail">${esc(x)}</li>`).join('\n')}\n</ul>`);
  const cp = e.controlPlane;
  if (cp) {
    const log = cp.auditLog;
    evidence.push('<h3>Control plane</h3>', list([
      `Registered: ${cp.registered ? esc(`yes (${cp.record!.model}, ${cp.record!.plan}, ${cp.record!.region}, status ${cp.record!.status})`) : '<b>no</b>'}`,
      esc(`Audit log: ${log.entries} entries${log.firstAt ? ` from ${log.firstAt} to ${log.lastAt}` : ''}; append-only enforced (ownership, privileges, hash chain): ${log.appendOnly ? 'yes' : `no (${log.appendOnlyProblems.join('; ')})`}${log.chain?.head ? `; chain head ${log.chain.head.seq}:${log.chain.head.hash}` : ''}; hook runs audited: ${log.hookRunsAudited} of ${log.hookRuns}`),
      ...(Object.keys(log.actions).length ? [esc(`Audited actions: ${Object.entries(log.actions).map(([a, n]) => `${a} ×${n}`).join(', ')}`)] : []),
      ...(cp.hooks.length ? [esc(`Latest hook runs: ${cp.hooks.map((h) => `${h.hook} ${h.status} at ${h.finishedAt}`).join('; ')}`)] : []),
    ]));
    evidence.push(cp.migrations.length
      ? `<table><thead><tr><th>Migration target</th><th>Kind</th><th>Version</th><th>Status</th><th>Updated</th></tr></thead><tbody>\n${cp.migrations.map((m) => `<tr><td>${code(m.target)}</td><td>${esc(m.kind)}</td><td>${esc(m.version)}</td><td>${esc(m.status)}${m.error ? `: ${esc(m.error)}` : ''}</td><td>${esc(m.updatedAt)}</td></tr>`).join('\n')}\n</tbody></table>`
      : '<p>No migration state recorded for the tenant.</p>');
  }
  const pool = e.pool;
  if (pool) {
    evidence.push(`<h3>Pool database ${code(pool.database)}</h3>`, list([
      esc(`RLS audit (${pool.rls.generatedAt}, application role ${pool.rls.appRole}): ${pool.rls.ok ? 'clean' : 'problems found'}; tables with tenant_id: ${pool.rls.tables.join(', ') || 'none'}${pool.rls.views.length ? `; views over them: ${pool.rls.views.join(', ')}` : ''}`),
      esc(`Pool coverage: shared (read-only, no tenant data): ${pool.rls.shared.join(', ') || 'none'}; ${pool.rls.uncovered.length ? `neither tenant nor shared: ${pool.rls.uncovered.join(', ')}` : 'every relation is a tenant table or shared'}${pool.rls.warnings.length ? `; warnings: ${pool.rls.warnings.join('; ')}` : ''}`),
      esc(`Migrations: ${pool.migrations.stateTable ? `version ${pool.migrations.version} (${pool.migrations.applied.map((m) => `${m.version} ${m.name}`).join(', ')})` : 'no state table'}`),
      esc(`Erasure path (GDPR): ${pool.erasure.statements.length ? pool.erasure.statements.join('; ') : 'no table holds tenant rows'}`),
    ]));
  }

  const title = `Compliance report: ${r.stack}${t ? ` (${t.company})` : ''}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1b1f23; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }
p.meta { color: #57606a; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.pass { color: #2e7d32; } .fail { color: #c62828; font-weight: 600; } .warning { color: #ef6c00; } .suppressed { color: #8d6e00; } .not-applicable { color: #8c959f; }
b.status.incomplete { color: #ef6c00; }
a { color: #0969da; }
</style>
</head>
<body>
<p class="meta"><a href="../index.html">Fleet summary</a> · <a href="${esc(basename(r.files.markdown))}">Markdown</a> · <a href="${esc(basename(r.files.json))}">JSON</a></p>
<h1>${esc(title)}</h1>
<p class="meta">Generated ${esc(r.generatedAt)} by <code>tenancy compliance report</code> from the registry and a synthesis of the stack (the configuration Terraform applies).</p>
<table id="facts"><tbody>
${facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('\n')}
</tbody></table>
<h2>Rules</h2>
${packs.join('\n')}
<h2>Suppressions</h2>
${suppressions}
<h2>Live evidence</h2>
${evidence.join('\n')}
<h2>Reading this report</h2>
<p>Each rule checks the synthesized configuration of this stack, the last step before Terraform applies it: a failing rule also fails <code>cdktf synth</code>, so a deployed stack passed every rule that was not suppressed when it was deployed. "Not applicable" means the stack has nothing the rule checks (e.g. no database of its own); such rules are neither passed nor failed. A live-evidence problem fails the stack like a failed rule.</p>
</body>
</html>
`;
}
