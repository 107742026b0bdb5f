import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { commitStaged, discardStaged, stagingDir } from '../app/atomic-outdir';
import { REFERENCE_FILE, REFERENCE_PATH_FROM_REPO } from '../policy/reference';
import type { Registry } from '../registry/load-registry';
import { evaluateCompliance } from './evaluate';
import { collectEvidence, type EvidenceOptions } from './evidence';
import { renderFleetHtml } from './html';
import { renderStackMarkdown } from './markdown';
import { buildReports, type ComplianceReports } from './report';

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
 * directory), adds live evidence when connections are given, and writes per stack a Markdown and a
 * JSON report, plus fleet.json and index.html. The directory is replaced only once everything is
 * written.
 */
export async function writeComplianceReport(options: ComplianceReportOptions = {}): Promise<ComplianceReportResult> {
  const root = resolve(options.root ?? process.cwd());
  const outDir = resolve(root, options.outDir ?? 'compliance-report');
  const evaluation = evaluateCompliance({ root, registry: options.registry, tenants: options.tenants, now: options.now });
  const live = evaluation.stacks.filter((s) => s.tenant).map((s) => s.tenant!);
  const evidence = options.controlPlaneUrl || options.pools?.length ? await collectEvidence(live, options, options.now) : undefined;
  const reports = buildReports(evaluation, evidence);

  const referenceAbs = join(root, REFERENCE_PATH_FROM_REPO);
  const files: [string, string][] = [];
  for (const r of reports.stacks) {
    // Links to the reference work from the report's final place when the project has the reference (docs/reference in this repository).
    const reference = existsSync(referenceAbs) ? relative(dirname(join(outDir, r.files.markdown)), referenceAbs).split('\\').join('/') : REFERENCE_FILE;
    files.push([r.files.markdown, renderStackMarkdown(r, reference)], [r.files.json, `${JSON.stringify(r, null, 2)}\n`]);
  }
  files.push(['fleet.json', `${JSON.stringify(reports.fleet, null, 2)}\n`], ['index.html', renderFleetHtml(reports.fleet)]);

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
