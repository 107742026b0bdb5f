import { PACK_NAMES, type PackName } from '../policy/policy-rule';
import type { StatusCounts } from './evaluate';
import { esc } from './esc';
import { countsText } from './markdown';
import { REFERENCE_HTML } from './reference-html';
import type { FleetReport, FleetRow } from './report';

export { esc };

const COLORS = { pass: '#2e7d32', suppressed: '#f9a825', warning: '#ef6c00', fail: '#c62828', notApplicable: '#cfd8dc' } as const;
/** The bar's segments, left to right; rules that do not apply are a grey segment of their own (shown, never counted as passed). */
const SEGMENTS = ['pass', 'suppressed', 'warning', 'fail', 'notApplicable'] as const;
const SEGMENT_CLASS: Record<(typeof SEGMENTS)[number], string> = { pass: 'pass', suppressed: 'suppressed', warning: 'warning', fail: 'fail', notApplicable: 'not-applicable' };
const LEGEND: Record<(typeof SEGMENTS)[number], string> = { pass: 'passed', suppressed: 'suppressed', warning: 'warning', fail: 'failed', notApplicable: 'not applicable' };

const rowLabel = (r: FleetRow) => (r.kind === 'tenant' ? r.slug! : r.stack);
const ruleCount = (c: StatusCounts) => SEGMENTS.reduce((n, k) => n + c[k], 0);

/**
 * The chart: one row per stack, one column per pack and one for the live evidence. Each pack cell
 * is a bar split into passed, suppressed, warning, failed and not-applicable rules, all bars on one
 * scale (the largest pack's rule count is the full width), so lengths compare across packs and
 * stacks; a pack not applied to the stack reads "not applicable". The evidence cell counts the
 * live-evidence problems, which fail a stack like a failed rule. Plain SVG, no script.
 */
export function renderChart(fleet: FleetReport): string {
  const labelWidth = 170;
  const colWidth = 175;
  const barWidth = 118;
  const rowHeight = 26;
  const top = 34;
  const width = labelWidth + (PACK_NAMES.length + 1) * colWidth + 10;
  const height = top + fleet.rows.length * rowHeight + 30;
  const scale = Math.max(1, ...fleet.rows.flatMap((r) => r.packs.map((p) => (r.byPack[p] ? ruleCount(r.byPack[p]!) : 0))));
  const evidenceX = labelWidth + PACK_NAMES.length * colWidth;
  const parts: string[] = [];
  parts.push(`<svg id="pack-chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="chart-title" data-scale="${scale}" data-bar-width="${barWidth}">`);
  parts.push('<title id="chart-title">Rules passed, suppressed, warned, failed and not applicable, per pack and stack, and live-evidence problems per stack</title>');
  PACK_NAMES.forEach((p, i) => parts.push(`<text class="col" x="${labelWidth + i * colWidth + barWidth / 2}" y="20" text-anchor="middle">${esc(p)}</text>`));
  parts.push(`<text class="col" x="${evidenceX + barWidth / 2}" y="20" text-anchor="middle">live evidence</text>`);
  fleet.rows.forEach((row, j) => {
    const y = top + j * rowHeight;
    parts.push(`<text class="row${row.status === 'fail' ? ' failing' : ''}" x="${labelWidth - 8}" y="${y + 14}" text-anchor="end">${esc(rowLabel(row))}</text>`);
    PACK_NAMES.forEach((p, i) => {
      const x = labelWidth + i * colWidth;
      const c = row.packs.includes(p) ? row.byPack[p] : undefined;
      if (!c) {
        parts.push(`<text class="na" data-stack="${esc(row.stack)}" data-pack="${p}" x="${x + barWidth / 2}" y="${y + 14}" text-anchor="middle">not applicable</text>`);
        return;
      }
      parts.push(`<g class="bar" data-stack="${esc(row.stack)}" data-pack="${p}" data-pass="${c.pass}" data-fail="${c.fail}" data-warning="${c.warning}" data-suppressed="${c.suppressed}" data-not-applicable="${c.notApplicable}">`);
      parts.push(`<title>${esc(`${rowLabel(row)} · ${p}: ${countsText(c)}`)}</title>`);
      let offset = 0;
      for (const k of SEGMENTS) {
        if (!c[k]) continue;
        const w = (barWidth * c[k]) / scale;
        parts.push(`<rect class="${SEGMENT_CLASS[k]}" x="${(x + offset).toFixed(2)}" y="${y + 3}" width="${w.toFixed(2)}" height="14" fill="${COLORS[k]}"/>`);
        offset += w;
      }
      parts.push(`<text class="count${c.fail ? ' failing' : ''}" x="${(x + offset + 4).toFixed(2)}" y="${y + 14}">${c.fail ? `${c.fail} failed` : `${c.pass + c.suppressed}/${ruleCount(c) - c.notApplicable}`}</text>`);
      parts.push('</g>');
    });
    const n = row.evidenceProblems;
    const evidenceText = row.evidence === 'not collected' ? 'not collected' : row.evidence === 'errors' ? 'incomplete' : n ? `${n} problem${n === 1 ? '' : 's'}` : 'ok';
    parts.push(`<g class="evidence" data-stack="${esc(row.stack)}" data-problems="${n}" data-evidence="${esc(row.evidence)}">`);
    if (n) parts.push(`<rect class="fail" x="${evidenceX}" y="${y + 3}" width="14" height="14" fill="${COLORS.fail}"/>`);
    parts.push(`<text class="${n ? 'failing' : row.evidence === 'ok' ? 'ok' : 'na'}" x="${evidenceX + (n ? 18 : 0)}" y="${y + 14}">${esc(evidenceText)}</text>`);
    parts.push('</g>');
  });
  const legendY = top + fleet.rows.length * rowHeight + 14;
  SEGMENTS.forEach((k, i) => {
    const x = labelWidth + i * 120;
    parts.push(`<rect x="${x}" y="${legendY - 9}" width="10" height="10" fill="${COLORS[k]}"/><text class="legend" x="${x + 14}" y="${legendY}">${LEGEND[k]}</text>`);
  });
  parts.push(`<text class="legend" x="${labelWidth + SEGMENTS.length * 120}" y="${legendY}">full width = ${scale} rules</text>`);
  parts.push('</svg>');
  return parts.join('');
}

const countCell = (p: PackName, row: FleetRow) => {
  const c: StatusCounts | undefined = row.packs.includes(p) ? row.byPack[p] : undefined;
  if (!c) return `<td class="pack na" data-pack="${p}" data-applied="false">not applicable</td>`;
  const cls = c.fail ? 'fail' : c.warning ? 'warning' : c.suppressed ? 'suppressed' : 'pass';
  return `<td class="pack ${cls}" data-pack="${p}" data-applied="true" data-pass="${c.pass}" data-fail="${c.fail}" data-warning="${c.warning}" data-suppressed="${c.suppressed}" data-not-applicable="${c.notApplicable}">${esc(countsText(c))}</td>`;
};

/**
 * The one-page fleet summary: self-contained (inline CSS, inline SVG, no script, no external
 * resource), so it opens from disk or an evidence archive in any browser.
 */
export function renderFleetHtml(fleet: FleetReport, options: { readonly withReference?: boolean } = {}): string {
  const reference = options.withReference ?? true ? `the <a href="${esc(REFERENCE_HTML)}">domain reference</a>` : 'the domain reference';
  const t = fleet.totals;
  const rows = fleet.rows
    .map((r) => `<tr data-stack="${esc(r.stack)}" class="${r.status}">
<td data-field="stack"><a href="${esc(r.files.html)}">${esc(r.stack)}</a></td>
<td data-field="company">${esc(r.company ?? 'shared platform')}</td>
<td data-field="model">${esc(r.model ?? '')}</td>
<td data-field="plan">${esc(r.plan ?? '')}</td>
<td data-field="region">${esc(r.region)}</td>
<td data-field="packs">${esc(r.packs.join(', '))}</td>
${PACK_NAMES.map((p) => countCell(p, r)).join('\n')}
<td data-field="fail">${r.totals.fail}</td>
<td data-field="suppressed">${r.totals.suppressed}</td>
<td data-field="evidence" data-problems="${r.evidenceProblems}">${esc(r.evidence === 'problems' ? `${r.evidenceProblems} problem${r.evidenceProblems === 1 ? '' : 's'}` : r.evidence)}</td>
<td data-field="status" class="status ${r.status}">${esc(r.status)}</td>
</tr>`)
    .join('\n');
  const evidence = fleet.evidence.collected
    ? `Live evidence collected ${esc(fleet.evidence.collectedAt)} from ${esc([fleet.evidence.controlPlane ? `control plane ${fleet.evidence.controlPlane}` : '', ...fleet.evidence.pools.map((p) => `pool ${p}`)].filter(Boolean).join(', '))}.`
    : 'Configuration evidence only (no --control-plane-url or --pool-url was given).';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Compliance fleet summary</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1b1f23; }
h1 { font-size: 22px; margin: 0 0 4px; }
p.meta { color: #57606a; margin: 0 0 16px; }
.totals { display: flex; gap: 12px; margin: 12px 0 20px; flex-wrap: wrap; }
.totals div { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 90px; }
.totals b { display: block; font-size: 20px; }
table { border-collapse: collapse; width: 100%; margin-top: 16px; }
th, td { border-bottom: 1px solid #d8dee4; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.pack.pass { color: ${COLORS.pass}; } td.pack.fail { color: ${COLORS.fail}; font-weight: 600; }
td.pack.suppressed { color: #8d6e00; } td.pack.warning { color: ${COLORS.warning}; } td.na { color: #8c959f; }
td.status.pass { color: ${COLORS.pass}; font-weight: 600; } td.status.fail { color: ${COLORS.fail}; font-weight: 700; } td.status.incomplete { color: ${COLORS.warning}; font-weight: 600; }
tr.fail td[data-field="stack"] { border-left: 4px solid ${COLORS.fail}; }
svg text { font: 12px system-ui, sans-serif; fill: #1b1f23; } svg text.col { font-weight: 600; } svg text.na { fill: #8c959f; } svg text.failing { fill: ${COLORS.fail}; font-weight: 600; } svg text.ok { fill: ${COLORS.pass}; }
a { color: #0969da; }
footer { margin-top: 24px; color: #57606a; font-size: 12px; }
</style>
</head>
<body>
<h1>Compliance fleet summary</h1>
<p class="meta">Generated ${esc(fleet.generatedAt)} by <code>tenancy compliance report</code>. ${evidence}</p>
<div class="totals">
<div><b data-total="stacks">${t.stacks}</b>stacks</div>
<div><b data-total="failing">${t.failing}</b>failing</div>
<div><b data-total="pass">${t.pass}</b>rule passes</div>
<div><b data-total="fail">${t.fail}</b>rule failures</div>
<div><b data-total="evidence-problems">${t.evidenceProblems}</b>live-evidence failures</div>
<div><b data-total="incomplete">${t.incomplete}</b>incomplete</div>
<div><b data-total="suppressed">${t.suppressed}</b>suppressed</div>
<div><b data-total="warning">${t.warning}</b>warnings</div>
<div><b data-total="not-applicable">${t.notApplicable}</b>not applicable</div>
</div>
${renderChart(fleet)}
<table id="fleet-summary">
<thead><tr><th>Stack</th><th>Company</th><th>Model</th><th>Plan</th><th>Region</th><th>Packs</th>${PACK_NAMES.map((p) => `<th data-pack="${p}">${esc(p)}</th>`).join('')}<th>Failed rules</th><th>Suppressed</th><th>Live evidence</th><th>Status</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${fleet.withoutStack.length ? `<p class="meta">Without a stack (offboarded): ${esc(fleet.withoutStack.join(', '))}.</p>` : ''}
<footer>Packs: ${fleet.packs.map((p) => `<b>${esc(p.name)}</b> ${esc(p.title)} (${esc(p.appliesTo)}, ${p.rules.length} rules)`).join('; ')}. Each stack's page (linked) lists every rule with its requirement in ${reference}, the findings, the suppressions with their reasons and the live evidence; the same as Markdown and JSON sits beside it, and fleet.json holds this page's data. The folder is self-contained: every link stays inside it.</footer>
</body>
</html>
`;
}
