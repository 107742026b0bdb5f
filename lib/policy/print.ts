import type { TerraformStack } from 'cdktf';
import { PolicyAspect } from './policy-aspect';

/**
 * Prints the policy warnings and the suppressed findings (with their reasons) of synthesized
 * stacks to stderr: errors fail the synth instead (PolicyViolationError).
 */
export function printPolicyNotes(stacks: { readonly platform: readonly TerraformStack[]; readonly tenants: readonly TerraformStack[] }, out: { write(text: string): unknown } = process.stderr): void {
  printPolicyNoteLines(policyNoteLines(stacks), out);
}

/** The lines printPolicyNotes prints, as data (a parallel synthesis gathers them from its processes). */
export function policyNoteLines(stacks: { readonly platform: readonly TerraformStack[]; readonly tenants: readonly TerraformStack[] }): string[] {
  const lines: string[] = [];
  for (const stack of [...stacks.platform, ...stacks.tenants]) {
    for (const aspect of PolicyAspect.of(stack)) {
      for (const w of aspect.warnings()) lines.push(`warning [${w.ruleId}] ${w.path}: ${w.message}`);
      for (const s of aspect.suppressed) lines.push(`suppressed [${s.ruleId}] ${s.path} (${s.source}): ${s.reason}`);
    }
  }
  return lines;
}

export function printPolicyNoteLines(lines: readonly string[], out: { write(text: string): unknown } = process.stderr): void {
  for (const line of lines) out.write(`${line}\n`);
}
