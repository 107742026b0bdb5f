import type { IConstruct } from 'constructs';
import { REGULATED_MIN_BACKUP_RETENTION_DAYS, regulatedRetentionCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** HIPAA-RDS-2: the tenant's database keeps at least 30 days of backups and cannot be deleted by accident. */
export const HipaaRetentionRule: PolicyRule = {
  id: 'HIPAA-RDS-2',
  pack: 'hipaa',
  explanation: `PHI stays recoverable: at least ${REGULATED_MIN_BACKUP_RETENTION_DAYS} days of backups whatever the plan, and deletion protection that only offboarding lifts`,
  level: 'error',
  requirement: REFERENCE.hipaa,
  check: (node: IConstruct, ctx: PolicyContext) => regulatedRetentionCheck(ctx, node),
};
