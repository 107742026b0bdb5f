import type { IConstruct } from 'constructs';
import { tenantOwnKeyCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * PCI-RDS-1: the tenant's database (storage, master secret, Performance Insights) and its secrets
 * are encrypted with the tenant's own KMS key, in its stack, with rotation.
 */
export const PciOwnKeyRule: PolicyRule = {
  id: 'PCI-RDS-1',
  pack: 'pci',
  explanation: "stored cardholder data is protected with keys of the tenant's own, rotated, so no other entity's key (or its compromise) can read it",
  level: 'error',
  requirement: REFERENCE.pci,
  check: (node: IConstruct, ctx: PolicyContext) => tenantOwnKeyCheck(ctx, node),
};
