import type { IConstruct } from 'constructs';
import { databaseParameters, isDatabase, isOn } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** Days of log retention that count as "kept for the audit period" (0 = never expire). */
export const MIN_LOG_RETENTION_DAYS = 365;

/**
 * SOC2-LOG-1: databases log who connected and when (log_connections, log_disconnections) and
 * export the PostgreSQL log to CloudWatch, where it is kept at least a year.
 */
export const AccessLoggingRule: PolicyRule = {
  id: 'SOC2-LOG-1',
  pack: 'soc2',
  explanation: 'auditors ask who accessed which tenant data and when: connections are logged and the logs outlive the audit period',
  level: 'error',
  requirement: REFERENCE.soc2,
  check(node: IConstruct, ctx: PolicyContext) {
    if (ctx.typeOf(node) === 'aws_cloudwatch_log_group') {
      const c = ctx.config(node)!;
      if (typeof c.name !== 'string' || !c.name.startsWith('/aws/rds/')) return undefined;
      const days = c.retention_in_days;
      return days === undefined || days === 0 || days >= MIN_LOG_RETENTION_DAYS ? true : `${c.name} keeps logs ${days} days; keep them at least ${MIN_LOG_RETENTION_DAYS}`;
    }
    if (!isDatabase(ctx, node)) return undefined;
    const c = ctx.config(node)!;
    const problems: string[] = [];
    if (!(Array.isArray(c.enabled_cloudwatch_logs_exports) && c.enabled_cloudwatch_logs_exports.includes('postgresql'))) problems.push('the postgresql log is not exported to CloudWatch (enabled_cloudwatch_logs_exports)');
    const { group, parameters } = databaseParameters(ctx, node);
    for (const p of ['log_connections', 'log_disconnections']) if (!isOn(parameters.get(p))) problems.push(`${group ?? 'the parameter group'} does not set ${p} = 1`);
    return problems.length ? problems : true;
  },
};
