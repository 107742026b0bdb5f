import type { IConstruct } from 'constructs';
import { Aspects, TerraformStack, type IAspect } from 'cdktf';
import type { PolicyFinding, PolicyRule } from './policy-rule';

/**
 * Runs policy rules over every construct of one stack. Added per stack, because cdktf 0.21
 * never runs aspects added to the App. Errors become a validation of the stack, so synth
 * fails with every finding listed; warnings are kept for the caller to print.
 */
export class PolicyAspect implements IAspect {
  readonly findings: PolicyFinding[] = [];

  constructor(private readonly rules: readonly PolicyRule[]) {}

  /** Adds the aspect and its validation to `stack`. */
  static applyTo(stack: TerraformStack, rules: readonly PolicyRule[]): PolicyAspect {
    const aspect = new PolicyAspect(rules);
    Aspects.of(stack).add(aspect);
    stack.node.addValidation({
      validate: () => aspect.findings.filter((f) => f.level === 'error').map((f) => `[${f.ruleId}] ${f.path}: ${f.message}`),
    });
    return aspect;
  }

  visit(node: IConstruct): void {
    for (const rule of this.rules) {
      const message = rule.check(node);
      if (message !== undefined) {
        this.findings.push({ ruleId: rule.id, level: rule.level, path: node.node.path, message: `${message} (${rule.explanation})` });
      }
    }
  }
}
