import type { IConstruct } from 'constructs';
import { Aspects, TerraformStack, type IAspect } from 'cdktf';
import { StackInspector } from './inspect';
import type { PolicyFinding, PolicyRule, RuleResult, SuppressedFinding, TenantProfile } from './policy-rule';
import { PolicyGate } from './policy-gate';
import { normalizePath, PolicySuppressions, suppressionCovers, type Suppression } from './suppressions';

export interface PolicyOptions {
  /** The tenant the stack belongs to; rules that need it (plan minimums, residency) read it. */
  readonly tenant?: TenantProfile;
  /** `platform` for the shared stacks. @default "tenant" */
  readonly scope?: 'tenant' | 'platform';
  /** Registry suppressions (`compliance.suppressions` of the tenant). */
  readonly suppressions?: readonly Suppression[];
}

/** Id of the check on suppressions themselves (a warning: a suppression that matches nothing is stale). */
export const STALE_SUPPRESSION_RULE_ID = 'TENANCY-SUPPRESS-1';

const aspectsByStack = new WeakMap<TerraformStack, PolicyAspect[]>();

/**
 * Runs policy rules over every construct of one stack. Added per stack, because cdktf 0.21
 * never runs aspects added to the App. Errors become a validation of the stack (or, for the
 * stacks of `buildStacks`, of the whole app: see PolicyGate), so synth fails with every finding
 * listed; warnings are kept for the caller to print; suppressed findings are kept with their
 * reasons for the compliance report.
 */
export class PolicyAspect implements IAspect {
  private readonly active: PolicyFinding[] = [];
  private readonly suppressedFindings: SuppressedFinding[] = [];
  private readonly checked = new Map<string, number>();
  private readonly visited = new Set<string>();
  private readonly usedSuppressions = new Set<Suppression>();
  private context?: StackInspector;

  constructor(
    readonly rules: readonly PolicyRule[],
    readonly options: PolicyOptions = {},
  ) {
    for (const [i, s] of (options.suppressions ?? []).entries()) PolicySuppressions.validate(s, `compliance.suppressions[${i}]`);
  }

  /** Adds the aspect and its validation to `stack`. */
  static applyTo(stack: TerraformStack, rules: readonly PolicyRule[], options: PolicyOptions = {}): PolicyAspect {
    const aspect = new PolicyAspect(rules, options);
    Aspects.of(stack).add(aspect);
    aspectsByStack.set(stack, [...(aspectsByStack.get(stack) ?? []), aspect]);
    stack.node.addValidation({
      // Under a PolicyGate (the stacks of buildStacks) the app lists the errors of every stack at once.
      validate: () => {
        if (PolicyGate.covers(stack)) return [];
        const errors = aspect.errors().map(formatFinding);
        if (errors.length) aspect.context?.discardShared(); // the synth stops here: nothing takes the configuration
        return errors;
      },
    });
    return aspect;
  }

  /** The policy aspects added to a stack. */
  static of(stack: TerraformStack): readonly PolicyAspect[] {
    return aspectsByStack.get(stack) ?? [];
  }

  visit(node: IConstruct): void {
    const path = node.node.path;
    if (this.visited.has(path)) return; // a second synth of the same tree adds nothing
    this.visited.add(path);
    const context = this.contextFor(node);
    for (const rule of this.rules) {
      let result;
      try {
        result = rule.check(node, context);
      } catch (e) {
        result = `the check could not run: ${(e as Error).message}`;
      }
      if (result === undefined || result === null || result === false) continue;
      this.checked.set(rule.id, (this.checked.get(rule.id) ?? 0) + 1);
      if (result === true) continue;
      const messages = typeof result === 'string' ? [result] : [...(result as readonly string[])];
      for (const message of messages) this.record(rule, node, `${message} (${rule.explanation})`);
    }
  }

  /** Findings that count (not suppressed): errors and warnings, including stale suppressions. */
  get findings(): PolicyFinding[] {
    return [...this.active, ...this.staleSuppressions()];
  }

  /** Findings a suppression turned off, with the reasons. */
  get suppressed(): readonly SuppressedFinding[] {
    return this.suppressedFindings;
  }

  errors(): PolicyFinding[] {
    return this.active.filter((f) => f.level === 'error');
  }

  warnings(): PolicyFinding[] {
    return this.findings.filter((f) => f.level === 'warning');
  }

  /** Each rule's outcome on the stack. */
  results(): RuleResult[] {
    const findings = this.findings;
    return this.rules.map((rule) => {
      const mine = findings.filter((f) => f.ruleId === rule.id);
      const suppressed = this.suppressedFindings.filter((f) => f.ruleId === rule.id);
      // The check on suppressions runs over the registry suppressions, not over constructs.
      const checked = (this.checked.get(rule.id) ?? 0) + (rule.id === STALE_SUPPRESSION_RULE_ID ? (this.options.suppressions?.length ?? 0) : 0);
      const status = mine.some((f) => f.level === 'error')
        ? 'fail'
        : mine.length > 0
          ? 'warning'
          : suppressed.length > 0
            ? 'suppressed'
            : checked > 0
              ? 'pass'
              : 'not-applicable';
      return { rule, status, checked, findings: mine, suppressed };
    });
  }

  /** The outcome of one rule. */
  result(ruleId: string): RuleResult | undefined {
    return this.results().find((r) => r.rule.id === ruleId);
  }

  private contextFor(node: IConstruct): StackInspector {
    if (!this.context) {
      this.context = new StackInspector(TerraformStack.of(node), this.options.scope ?? 'tenant', this.options.tenant, true);
    }
    return this.context;
  }

  private record(rule: PolicyRule, node: IConstruct, message: string): void {
    const stack = TerraformStack.of(node).node.id;
    const finding: PolicyFinding = { ruleId: rule.id, level: rule.level, path: node.node.path, stack, message };
    const fromRegistry = (this.options.suppressions ?? []).find((s) => s.rule === rule.id && suppressionCovers(s.path, stack, node.node.path));
    if (fromRegistry) {
      this.usedSuppressions.add(fromRegistry);
      this.suppressedFindings.push({ ...finding, reason: fromRegistry.reason.trim(), source: 'registry' });
      return;
    }
    const onConstruct = PolicySuppressions.covering(node, rule.id);
    if (onConstruct) {
      this.suppressedFindings.push({ ...finding, reason: onConstruct.suppression.reason, source: 'construct' });
      return;
    }
    this.active.push(finding);
  }

  /** Registry suppressions that matched no finding: stale, or a typo in the rule or path. */
  private staleSuppressions(): PolicyFinding[] {
    if (!this.context) return [];
    const stack = this.context.stack.node.id;
    const known = new Set(this.rules.map((r) => r.id));
    return (this.options.suppressions ?? [])
      .filter((s) => !this.usedSuppressions.has(s))
      .map((s) => ({
        ruleId: STALE_SUPPRESSION_RULE_ID,
        level: 'warning' as const,
        path: normalizePath(s.path, stack) ? `${stack}/${normalizePath(s.path, stack)}` : stack,
        stack,
        message: known.has(s.rule)
          ? `suppression of ${s.rule} at ${JSON.stringify(s.path)} matches no finding: remove it (a suppression that suppresses nothing hides the next real finding)`
          : `suppression of ${s.rule} at ${JSON.stringify(s.path)}: no rule ${s.rule} applies to this stack`,
      }));
  }
}

/** One finding as one line: rule id, stack and construct path (the path starts with the stack), message. */
export function formatFinding(f: PolicyFinding): string {
  return `[${f.ruleId}] ${f.path}: ${f.message}`;
}
