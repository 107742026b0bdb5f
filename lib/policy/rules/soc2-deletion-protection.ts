import type { IConstruct } from 'constructs';
import { deletionProtectionCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** SOC2-RDS-1: databases refuse deletion and keep a final snapshot. */
export const DeletionProtectionRule: PolicyRule = {
  id: 'SOC2-RDS-1',
  pack: 'soc2',
  explanation: "one mistaken destroy must not lose a tenant's data: deletion protection on, and a final snapshot when a database is deleted on purpose",
  level: 'error',
  requirement: REFERENCE.soc2,
  check: (node: IConstruct, ctx: PolicyContext) => deletionProtectionCheck(ctx, node),
};
