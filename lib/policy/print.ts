import type { TerraformStack } from 'cdktf';
import { PolicyAspect } from './policy-aspect';

/**
 * Prints the policy warnings and the suppressed findings (with their reasons) of synthesized
 * stacks to stderr: errors fail the synth instead (PolicyViolationError).
 */
export function printPolicyNotes(stacks: { readonly platform: readonly TerraformStack[]; readonly tenants: readonly TerraformStack[] }, out: { write(text: string): unknown } = process.stderr): void {
  for (const stack of [...stacks.platform, ...stacks.tenants]) {
    for (const aspect of PolicyAspect.of(stack)) {
      for (const w of aspect.warnings()) out.write(`warning [${w.ruleId}] ${w.path}: ${w.message}\n`);
      for (const s of aspect.suppressed) out.write(`suppressed [${s.ruleId}] ${s.path} (${s.source}): ${s.reason}\n`);
    }
  }
}
