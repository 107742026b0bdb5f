import type { PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * TENANCY-SUPPRESS-1 (warning): every registry suppression matches a finding. The policy aspect
 * itself reports the stale ones after all constructs were checked (a suppression can only be
 * known unused at the end); this entry gives the check its id, level and place in the packs.
 */
export const StaleSuppressionRule: PolicyRule = {
  id: 'TENANCY-SUPPRESS-1',
  pack: 'tenancy',
  explanation: 'a suppression that matches no finding (fixed, moved, or a typo) would silently hide the next real finding at that place',
  level: 'warning',
  requirement: REFERENCE.compliance,
  check() {
    return undefined;
  },
};
