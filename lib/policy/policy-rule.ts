import type { IConstruct } from 'constructs';

export type PolicyLevel = 'error' | 'warning';

/** One guardrail, in the cdk-nag manner: an id, why it matters, and a check of one construct. */
export interface PolicyRule {
  /** Stable id, e.g. "TENANCY-TAG-1"; suppressions and reports name it. */
  readonly id: string;
  /** One line: what is required and why. */
  readonly explanation: string;
  /** Errors fail the synth; warnings are printed. */
  readonly level: PolicyLevel;
  /** Returns a reason when `node` breaks the rule, undefined when it complies or does not apply. */
  check(node: IConstruct): string | undefined;
}

export interface PolicyFinding {
  readonly ruleId: string;
  readonly level: PolicyLevel;
  readonly path: string;
  readonly message: string;
}
