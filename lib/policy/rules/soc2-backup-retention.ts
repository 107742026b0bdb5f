import type { IConstruct } from 'constructs';
import { PLAN_PROFILES } from '../../plans';
import { backupRetentionCheck, planOf, SHARED_MIN_BACKUP_RETENTION_DAYS } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * SOC2-RDS-2: automated backups are kept at least as long as the tenant's plan promises (its
 * silo backup retention); shared clusters at least the smallest plan's.
 */
export const BackupRetentionRule: PolicyRule = {
  id: 'SOC2-RDS-2',
  pack: 'soc2',
  explanation: "recovery points are kept as long as the tenant's plan promises (lib/plans.ts), so a restore can meet the commitment auditors test",
  level: 'error',
  requirement: REFERENCE.soc2,
  check(node: IConstruct, ctx: PolicyContext) {
    return backupRetentionCheck(ctx, node, (type) => {
      const plan = planOf(ctx);
      const profile = plan ? PLAN_PROFILES[plan as keyof typeof PLAN_PROFILES] : undefined;
      return type === 'aws_db_instance' && ctx.scope === 'tenant' && profile ? profile.silo.backupRetentionDays : SHARED_MIN_BACKUP_RETENTION_DAYS;
    });
  },
};
