import type { IConstruct } from 'constructs';
import { tenantOwnKeyCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * HIPAA-RDS-1: the tenant's database (storage, master secret, Performance Insights) and its
 * secrets are encrypted with the tenant's own KMS key, in its stack, with rotation.
 */
export const HipaaOwnKeyRule: PolicyRule = {
  id: 'HIPAA-RDS-1',
  pack: 'hipaa',
  explanation: "encryption at rest with the tenant's own key scopes a breach notification to one tenant, and deleting the key erases every copy",
  level: 'error',
  requirement: REFERENCE.hipaa,
  check: (node: IConstruct, ctx: PolicyContext) => tenantOwnKeyCheck(ctx, node),
};
