import type { IConstruct } from 'constructs';
import type { TerraformStack } from 'cdktf';

export type PolicyLevel = 'error' | 'warning';

/**
 * Compliance packs. `tenancy` (isolation the Kubernetes multi-tenancy benchmark asks for and the
 * platform baseline) and `soc2` apply to every stack; `hipaa`, `pci` and `gdpr` follow the
 * tenant's compliance flags.
 */
export const PACK_NAMES = ['tenancy', 'soc2', 'hipaa', 'pci', 'gdpr'] as const;
export type PackName = (typeof PACK_NAMES)[number];

/** Where in the domain reference (multi-tenant-saas-reference.md) a rule's requirement is written. */
export interface Requirement {
  /** The heading, as written in the reference. */
  readonly section: string;
  /** Its anchor (GitHub's slug of the heading): stable as long as the heading is. */
  readonly anchor: string;
}

/** What the rules know about the tenant a stack belongs to (a registry entry has all of it). */
export interface TenantProfile {
  readonly id: string;
  readonly slug: string;
  readonly plan: string;
  readonly model: string;
  readonly region: string;
  readonly dataResidency: string;
  readonly compliance: { readonly hipaa: boolean; readonly pci: boolean; readonly soc2: boolean; readonly gdpr: boolean };
}

/** Resolved view of the stack a rule runs in (see lib/policy/inspect.ts). */
export interface PolicyContext {
  readonly stack: TerraformStack;
  /** `tenant`: one tenant's stack; `platform`: the shared side of a region. */
  readonly scope: 'tenant' | 'platform';
  /** The tenant of a tenant stack, when known (always, for stacks built by TenantStack). */
  readonly tenant?: TenantProfile;
  /** Terraform type of a resource, data source or provider (`aws_db_instance`, `helm`), else undefined. */
  typeOf(node: IConstruct): string | undefined;
  /**
   * The configuration Terraform will get for a resource, data source or provider: snake_case
   * attributes, tokens resolved (references as "${type.name.attr}"), escape-hatch overrides
   * included. Undefined for other constructs.
   */
  config(node: IConstruct): Record<string, any> | undefined;
  /** Every element of the stack of a Terraform type, with its configuration. */
  elements(type: string): readonly { readonly node: IConstruct; readonly address: string; readonly config: Record<string, any> }[];
  /** The element a reference such as "${aws_kms_key.key_1A2B.arn}" points to, when it is in this stack. */
  referenced(expression: unknown, type: string): { readonly node: IConstruct; readonly address: string; readonly config: Record<string, any> } | undefined;
  /**
   * The values a helm_release installs: its values documents merged like Helm does (maps merge,
   * later wins), then its `set`, `set_list` and `set_sensitive` entries. Undefined for other constructs.
   */
  releaseValues(node: IConstruct): Record<string, any> | undefined;
  /** Which of the project's charts a helm_release installs. */
  releaseChart(node: IConstruct): 'tenant-platform' | 'tenant-app' | 'other' | undefined;
}

/**
 * What a check says about one construct: undefined when the rule does not apply to it, true when
 * it applies and complies, a reason (or several) when it breaks the rule.
 */
export type CheckResult = undefined | void | boolean | string | readonly string[];

/** One guardrail, in the cdk-nag manner: an id, why it matters, where it is required, and a check of one construct. */
export interface PolicyRule {
  /** Stable id, e.g. "HIPAA-SILO-1"; suppressions and reports name it. */
  readonly id: string;
  /** The pack it belongs to. @default "tenancy" */
  readonly pack?: PackName;
  /** One line: what is required and why. */
  readonly explanation: string;
  /** Errors fail the synth; warnings are printed. */
  readonly level: PolicyLevel;
  /** Where the domain reference requires it. */
  readonly requirement?: Requirement;
  /** Checks one construct of the stack (the aspect visits all of them, the stack itself first). */
  check(node: IConstruct, context: PolicyContext): CheckResult;
}

/** A rule broken by one construct. */
export interface PolicyFinding {
  readonly ruleId: string;
  readonly level: PolicyLevel;
  /** The construct's path, starting with the stack's id (e.g. "tenant-acme/namespace/release"). */
  readonly path: string;
  /** The stack's id. */
  readonly stack: string;
  readonly message: string;
}

/** A finding that a suppression turned off, with the reason given for it. */
export interface SuppressedFinding extends PolicyFinding {
  readonly reason: string;
  /** Where the suppression was declared: the registry entry, or the construct (PolicySuppressions). */
  readonly source: 'registry' | 'construct';
}

export type RuleStatus = 'pass' | 'fail' | 'warning' | 'suppressed' | 'not-applicable';

/** A rule's outcome on one stack. */
export interface RuleResult {
  readonly rule: PolicyRule;
  readonly status: RuleStatus;
  /** Constructs the rule applied to. */
  readonly checked: number;
  readonly findings: readonly PolicyFinding[];
  readonly suppressed: readonly SuppressedFinding[];
}
