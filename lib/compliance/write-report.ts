import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { commitStaged, discardStaged, stagingDir } from '../app/atomic-outdir';
import { REFERENCE_FILE } from '../policy/reference';
import type { Registry } from '../registry/load-registry';
import { evaluateCompliance } from './evaluate';
import { collectEvidence, type EvidenceOptions } from './evidence';
import { renderFleetHtml } from './html';
import { renderStackMarkdown } from './markdown';
import { findReferenceSource, REFERENCE_HTML, REFERENCE_MD, renderReferenceHtml } from './reference-html';
import { buildReports, type ComplianceReports } from './report';
import { renderStackHtml } from './stack-html';

export interface ComplianceReportOptions extends EvidenceOptions {
  /** Project root (platform.yaml, tenants/). @default process.cwd() */
  readonly root?: string;
  /** An already loaded registry. @default loadRegistry({ root }) */
  readonly registry?: Registry;
  /** Directory to write to (replaced as a whole). @default <root>/compliance-report */
  readonly outDir?: string;
  /** Only these tenants (slugs or ids). @default every live tenant and the platform stacks */
  readonly tenants?: readonly string[];
  readonly now?: Date;
}

export interface ComplianceReportResult extends ComplianceReports {
  readonly outDir: string;
  /** Files written, relative to outDir. */
  readonly files: readonly string[];
}

/**
 * `tenancy compliance report`: synthesizes the registry with the compliance packs (in a temporary
 * directory), adds live evidence when connections are given, and writes per stack an HTML page, a
 * Markdown and a JSON report, plus fleet.json, index.html and the domain reference (so the folder is
 * self-contained: every link resolves inside it). The directory is replaced only once everything is
 * written.
 */
export async function writeComplianceReport(options: ComplianceReportOptions = {}): Promise<ComplianceReportResult> {
  const root = resolve(options.root ?? process.cwd());
  const outDir = resolve(root, options.outDir ?? 'compliance-report');
  const evaluation = evaluateCompliance({ root, registry: options.registry, tenants: options.tenants, now: options.now });
  const live = evaluation.stacks.filter((s) => s.tenant).map((s) => s.tenant!);
  const evidence = options.controlPlaneUrl || options.pools?.length ? await collectEvidence(live, options, options.now) : undefined;
  const reports = buildReports(evaluation, evidence);

  // The reference travels inside the folder, so requirement links work wherever the folder goes.
  const referenceSource = findReferenceSource(root);
  const files: [string, string][] = [];
  if (referenceSource) {
    const markdown = readFileSync(referenceSource, 'utf8');
    files.push([REFERENCE_MD, markdown], [REFERENCE_HTML, renderReferenceHtml(markdown)]);
  }
  for (const r of reports.stacks) {
    const fromStack = (file: string) => relative(dirname(r.files.markdown), file).split('\\').join('/');
    files.push(
      [r.files.html, renderStackHtml(r, referenceSource ? fromStack(REFERENCE_HTML) : undefined)],
      [r.files.markdown, renderStackMarkdown(r, referenceSource ? fromStack(REFERENCE_MD) : REFERENCE_FILE)],
      [r.files.json, `${JSON.stringify(r, null, 2)}\n`],
    );
  }
  files.push(['fleet.json', `${JSON.stringify(reports.fleet, null, 2)}\n`], ['index.html', renderFleetHtml(reports.fleet, { withReference: referenceSource !== undefined })]);

  mkdirSync(dirname(outDir), { recursive: true });
  const staged = stagingDir(outDir);
  try {
    for (const [file, text] of files) {
      mkdirSync(dirname(join(staged, file)), { recursive: true });
      writeFileSync(join(staged, file), text);
    }
    commitStaged(staged, outDir);
  } catch (e) {
    discardStaged(staged);
    throw e;
  }
  return { ...reports, outDir, files: files.map(([f]) => f) };
}
