import { PACKS } from '../policy/packs';
import { PACK_NAMES, type PackName } from '../policy/policy-rule';
import { emptyCounts, type ComplianceEvaluation, type RuleOutcome, type StackCompliance, type StatusCounts } from './evaluate';
import type { ControlPlaneEvidence, FleetEvidence, PoolEvidence } from './evidence';

export const REPORT_FORMAT_VERSION = 1;

/** pass: every applied rule passed (or was suppressed) and the live evidence shows no problem; fail: a rule failed or the evidence shows a problem; incomplete: evidence could not be collected. */
export type ReportStatus = 'pass' | 'fail' | 'incomplete';

/** The report of one stack (a tenant's, or a region's platform stack), as JSON for tools. */
export interface StackReport {
  readonly report: 'tenancy compliance report';
  readonly formatVersion: typeof REPORT_FORMAT_VERSION;
  readonly generatedAt: string;
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly tenant?: {
    readonly id: string;
    readonly slug: string;
    readonly company: string;
    readonly plan: string;
    readonly model: string;
    readonly region: string;
    readonly dataResidency: string;
    readonly status: string;
    readonly compliance: { readonly hipaa: boolean; readonly pci: boolean; readonly soc2: boolean; readonly gdpr: boolean };
  };
  readonly region: string;
  readonly packs: readonly PackName[];
  readonly status: ReportStatus;
  readonly totals: StatusCounts;
  readonly byPack: Partial<Record<PackName, StatusCounts>>;
  readonly rules: readonly RuleOutcome[];
  /** Every suppressed finding with its reason (also under its rule). */
  readonly suppressions: readonly { readonly rule: string; readonly path: string; readonly reason: string; readonly source: 'registry' | 'construct'; readonly finding: string }[];
  readonly evidence: {
    readonly collected: boolean;
    readonly controlPlane?: ControlPlaneEvidence;
    readonly pool?: PoolEvidence;
    readonly problems: readonly string[];
    readonly errors: readonly string[];
  };
  /** Where the reports of this stack are, relative to the report directory (html: the page the fleet summary links to). */
  readonly files: StackFiles;
}

/** The files of one stack's report, relative to the report directory. */
export interface StackFiles { readonly html: string; readonly markdown: string; readonly json: string }

/** One row of the fleet summary. */
export interface FleetRow {
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly slug?: string;
  readonly company?: string;
  readonly model?: string;
  readonly plan?: string;
  readonly region: string;
  readonly packs: readonly PackName[];
  readonly byPack: Partial<Record<PackName, StatusCounts>>;
  readonly totals: StatusCounts;
  /** not-collected, ok, problems (count), or errors. */
  readonly evidence: 'not collected' | 'ok' | 'problems' | 'errors';
  /** Problems the live evidence shows (each fails the stack like a failed rule). */
  readonly evidenceProblems: number;
  readonly status: ReportStatus;
  readonly files: StackFiles;
}

/** The fleet summary, as JSON for tools (index.html shows the same). */
export interface FleetReport {
  readonly report: 'tenancy compliance fleet summary';
  readonly formatVersion: typeof REPORT_FORMAT_VERSION;
  readonly generatedAt: string;
  readonly packs: readonly { readonly name: PackName; readonly title: string; readonly appliesTo: string; readonly rules: readonly string[] }[];
  readonly rows: readonly FleetRow[];
  /** Rule counts over all stacks, plus stacks failing/incomplete and the live-evidence problems of all stacks. */
  readonly totals: StatusCounts & { readonly stacks: number; readonly failing: number; readonly incomplete: number; readonly evidenceProblems: number };
  readonly evidence: { readonly collected: boolean; readonly collectedAt?: string; readonly controlPlane?: string; readonly pools: readonly string[] };
  /** Tenants of the registry without a stack (offboarded), listed so the fleet is complete. */
  readonly withoutStack: readonly string[];
}

export interface ComplianceReports {
  readonly stacks: readonly StackReport[];
  readonly fleet: FleetReport;
}

const filesOf = (s: StackCompliance): StackFiles => {
  const base = s.kind === 'tenant' ? `tenants/${s.tenant!.slug}` : `platform/${s.region}`;
  return { html: `${base}.html`, markdown: `${base}.md`, json: `${base}.json` };
};

/** Builds the per-stack reports and the fleet summary from an evaluation and (optionally) live evidence. */
export function buildReports(evaluation: ComplianceEvaluation, evidence?: FleetEvidence): ComplianceReports {
  const stacks = evaluation.stacks.map((s) => stackReport(s, evaluation.generatedAt, evidence));
  const rows: FleetRow[] = stacks.map((r) => ({
    stack: r.stack,
    kind: r.kind,
    ...(r.tenant ? { slug: r.tenant.slug, company: r.tenant.company, model: r.tenant.model, plan: r.tenant.plan } : {}),
    region: r.region,
    packs: r.packs,
    byPack: r.byPack,
    totals: r.totals,
    evidence: !r.evidence.collected ? 'not collected' : r.evidence.errors.length ? 'errors' : r.evidence.problems.length ? 'problems' : 'ok',
    evidenceProblems: r.evidence.problems.length,
    status: r.status,
    files: r.files,
  }));
  const totals = {
    ...emptyCounts(),
    stacks: rows.length,
    failing: rows.filter((r) => r.status === 'fail').length,
    incomplete: rows.filter((r) => r.status === 'incomplete').length,
    evidenceProblems: rows.reduce((n, r) => n + r.evidenceProblems, 0),
  };
  for (const r of rows) for (const k of Object.keys(r.totals) as (keyof StatusCounts)[]) totals[k] += r.totals[k];
  const live = new Set(evaluation.stacks.filter((s) => s.tenant).map((s) => s.tenant!.slug));
  return {
    stacks,
    fleet: {
      report: 'tenancy compliance fleet summary',
      formatVersion: REPORT_FORMAT_VERSION,
      generatedAt: evaluation.generatedAt,
      packs: PACK_NAMES.map((name) => ({ name, title: PACKS[name].title, appliesTo: PACKS[name].appliesTo, rules: PACKS[name].rules.map((r) => r.id) })),
      rows,
      totals,
      evidence: evidence
        ? { collected: true, collectedAt: evidence.collectedAt, controlPlane: evidence.sources.controlPlane, pools: evidence.sources.pools }
        : { collected: false, pools: [] },
      withoutStack: evaluation.registry.tenants.filter((t) => t.status === 'offboarded' && !live.has(t.slug)).map((t) => t.slug),
    },
  };
}

function stackReport(s: StackCompliance, generatedAt: string, evidence?: FleetEvidence): StackReport {
  const t = s.tenant;
  const live = t && evidence ? evidence.byTenant.get(t.slug) : undefined;
  const problems = live?.problems ?? [];
  const errors = live?.errors ?? [];
  const status: ReportStatus = s.totals.fail > 0 || problems.length > 0 ? 'fail' : errors.length > 0 ? 'incomplete' : 'pass';
  return {
    report: 'tenancy compliance report',
    formatVersion: REPORT_FORMAT_VERSION,
    generatedAt,
    stack: s.stack,
    kind: s.kind,
    ...(t
      ? {
        tenant: {
          id: t.id, slug: t.slug, company: t.company, plan: t.plan, model: t.model, region: t.region, dataResidency: t.dataResidency, status: t.status,
          compliance: { hipaa: t.compliance.hipaa, pci: t.compliance.pci, soc2: t.compliance.soc2, gdpr: t.compliance.gdpr },
        },
      }
      : {}),
    region: t ? t.region : s.region!,
    packs: s.packs,
    status,
    totals: s.totals,
    byPack: s.byPack,
    rules: s.rules,
    suppressions: s.rules.flatMap((r) => r.suppressed.map((x) => ({ rule: r.id, path: x.path, reason: x.reason, source: x.source, finding: x.message }))),
    evidence: {
      collected: live !== undefined,
      ...(live?.controlPlane ? { controlPlane: live.controlPlane } : {}),
      ...(live?.pool ? { pool: live.pool } : {}),
      problems,
      errors,
    },
    files: filesOf(s),
  };
}
