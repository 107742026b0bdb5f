import type { IConstruct } from 'constructs';
import { TerraformStack } from 'cdktf';
import { formatFinding, PolicyAspect } from './policy-aspect';
import type { PolicyFinding } from './policy-rule';

/** Synthesis stopped by policy errors; `findings` lists every one of them, across all stacks. */
export class PolicyViolationError extends Error {
  constructor(readonly findings: readonly PolicyFinding[]) {
    const stacks = new Set(findings.map((f) => f.stack));
    super(
      `Policy check failed: ${findings.length} error${findings.length === 1 ? '' : 's'} in ${stacks.size} stack${stacks.size === 1 ? '' : 's'} ` +
        `([rule] stack/construct path: finding):\n${findings.map((f) => `  ${formatFinding(f)}`).join('\n')}`,
    );
    this.name = 'PolicyViolationError';
  }
}

const gates = new WeakMap<IConstruct, PolicyGate>();

/**
 * Fails the synth of a whole app once, with the policy errors of every stack, instead of at the
 * first stack with an error (cdktf synthesizes stacks one by one and a stack's validation stops
 * it). The stacks' aspects all run first; then the app's validation throws a PolicyViolationError
 * listing every error with its rule id, stack and construct path. Stacks outside a gated app keep
 * failing on their own validation.
 */
export class PolicyGate {
  private constructor(private readonly app: IConstruct) {}

  /** Gates `app` (idempotent). */
  static attach(app: IConstruct): PolicyGate {
    let gate = gates.get(app);
    if (!gate) {
      const created = new PolicyGate(app);
      gate = created;
      gates.set(app, created);
      app.node.addValidation({ validate: () => created.validate() });
    }
    return gate;
  }

  /** Whether a stack's policy errors are reported by a gate of its app. */
  static covers(stack: TerraformStack): boolean {
    const scope = stack.node.scope;
    return scope !== undefined && gates.has(scope);
  }

  /** The error findings of every stack of the app. */
  errors(): PolicyFinding[] {
    return this.app.node
      .findAll()
      .filter((c): c is TerraformStack => TerraformStack.isStack(c))
      .flatMap((stack) => PolicyAspect.of(stack).flatMap((a) => a.errors()));
  }

  private validate(): string[] {
    const errors = this.errors();
    if (errors.length > 0) throw new PolicyViolationError(errors);
    return [];
  }
}
