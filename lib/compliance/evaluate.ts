import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { App } from 'cdktf';
import { withoutCreationStackTraces } from '../app/creation-stack-traces';
import { packOf, packsOfAspect } from '../policy/packs';
import { PACK_NAMES, type PackName, type RuleResult, type RuleStatus } from '../policy/policy-rule';
import { REFERENCE_FILE, requirementHref } from '../policy/reference';
import { loadRegistry, type Registry } from '../registry/load-registry';
import type { Tenant } from '../registry/tenant-schema';
import { buildStacks } from '../../stacks/build-stacks';
import { selectStacks } from '../../stacks/select-tenants';
import type { PlatformStack } from '../../stacks/platform-stack';
import type { TenantStack } from '../../stacks/tenant-stack';

/** One rule's outcome on one stack, as the reports show it. */
export interface RuleOutcome {
  readonly id: string;
  readonly pack: PackName;
  readonly level: 'error' | 'warning';
  readonly explanation: string;
  /** The requirement in the domain reference (multi-tenant-saas-reference.md). */
  readonly reference: { readonly section: string; readonly anchor: string; readonly href: string };
  readonly status: RuleStatus;
  /** Constructs the rule applied to. */
  readonly checked: number;
  readonly findings: readonly { readonly path: string; readonly message: string }[];
  readonly suppressed: readonly { readonly path: string; readonly message: string; readonly reason: string; readonly source: 'registry' | 'construct' }[];
}

export interface StatusCounts {
  pass: number;
  fail: number;
  warning: number;
  suppressed: number;
  notApplicable: number;
}

/** The policy side of one stack's compliance: the packs applied and every rule's outcome. */
export interface StackCompliance {
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  /** The registry entry of a tenant stack. */
  readonly tenant?: Tenant;
  /** The region of a platform stack. */
  readonly region?: string;
  readonly packs: readonly PackName[];
  readonly rules: readonly RuleOutcome[];
  readonly totals: StatusCounts;
  readonly byPack: Partial<Record<PackName, StatusCounts>>;
}

export interface ComplianceEvaluation {
  readonly generatedAt: string;
  readonly registry: Registry;
  readonly stacks: readonly StackCompliance[];
}

export interface EvaluateOptions {
  /** Project root holding platform.yaml and tenants/. @default process.cwd() */
  readonly root?: string;
  /** An already loaded registry. @default loadRegistry({ root }) */
  readonly registry?: Registry;
  /** Only these tenants (slugs or ids), without the platform stacks. @default every live tenant and the platform stacks */
  readonly tenants?: readonly string[];
  /** The report's timestamp. @default now */
  readonly now?: Date;
}

export const emptyCounts = (): StatusCounts => ({ pass: 0, fail: 0, warning: 0, suppressed: 0, notApplicable: 0 });
const COUNT_KEY: Record<RuleStatus, keyof StatusCounts> = { pass: 'pass', fail: 'fail', warning: 'warning', suppressed: 'suppressed', 'not-applicable': 'notApplicable' };

/**
 * Synthesizes the registry's stacks into a temporary directory (never cdktf.out), with the
 * compliance packs as aspects, and collects every rule's outcome per stack, failed ones included:
 * unlike `synthesize`, policy errors do not stop it (the report lists them).
 */
export function evaluateCompliance(options: EvaluateOptions = {}): ComplianceEvaluation {
  const root = resolve(options.root ?? process.cwd());
  const registry = options.registry ?? loadRegistry({ root });
  const selection = selectStacks(registry, options.tenants?.length ? options.tenants.join(',') : undefined);
  const outdir = mkdtempSync(join(tmpdir(), 'tenancy-compliance-'));
  const restoreStackTraces = withoutCreationStackTraces();
  try {
    // skipValidation: the aspects run and record every finding; nothing throws on them.
    const app = new App({ outdir, skipValidation: true });
    const stacks = buildStacks(app, registry, selection);
    app.synth();
    return {
      generatedAt: (options.now ?? new Date()).toISOString(),
      registry,
      stacks: [...stacks.tenants.map((s) => stackCompliance(s, 'tenant')), ...stacks.platform.map((s) => stackCompliance(s, 'platform'))],
    };
  } finally {
    restoreStackTraces();
    rmSync(outdir, { recursive: true, force: true });
  }
}

function stackCompliance(stack: TenantStack | PlatformStack, kind: 'tenant' | 'platform'): StackCompliance {
  const rules = stack.policy.results().map(outcome);
  const byPack: Partial<Record<PackName, StatusCounts>> = {};
  const totals = emptyCounts();
  for (const r of rules) {
    (byPack[r.pack] ??= emptyCounts())[COUNT_KEY[r.status]] += 1;
    totals[COUNT_KEY[r.status]] += 1;
  }
  const packs = packsOfAspect(stack.policy);
  return {
    stack: stack.node.id,
    kind,
    ...(kind === 'tenant' ? { tenant: (stack as TenantStack).tenant } : { region: stack.node.id.replace(/^platform-/, '') }),
    packs: PACK_NAMES.filter((p) => packs.includes(p)),
    rules,
    totals,
    byPack,
  };
}

function outcome(r: RuleResult): RuleOutcome {
  const requirement = r.rule.requirement ?? { section: 'Compliance and Data Isolation', anchor: 'compliance-and-data-isolation' };
  return {
    id: r.rule.id,
    pack: packOf(r.rule),
    level: r.rule.level,
    explanation: r.rule.explanation,
    reference: { ...requirement, href: requirementHref(requirement, REFERENCE_FILE) },
    status: r.status,
    checked: r.checked,
    findings: r.findings.map((f) => ({ path: f.path, message: withoutExplanation(f.message, r.rule.explanation) })),
    suppressed: r.suppressed.map((s) => ({ path: s.path, message: withoutExplanation(s.message, r.rule.explanation), reason: s.reason, source: s.source })),
  };
}

/** Findings carry the rule's explanation for the synth output; the reports show it once per rule. */
const withoutExplanation = (message: string, explanation: string) => (message.endsWith(` (${explanation})`) ? message.slice(0, -explanation.length - 3) : message);
