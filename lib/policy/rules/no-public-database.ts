import type { IConstruct } from 'constructs';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** TENANCY-RDS-1: no tenant or shared database has a public address. */
export const NoPublicDatabaseRule: PolicyRule = {
  id: 'TENANCY-RDS-1',
  pack: 'tenancy',
  explanation: 'tenant data is reachable only from the cluster workloads, never from the internet',
  level: 'error',
  requirement: REFERENCE.compliance,
  check(node: IConstruct, ctx: PolicyContext) {
    const type = ctx.typeOf(node);
    if (type !== 'aws_db_instance' && type !== 'aws_rds_cluster_instance') return undefined;
    return ctx.config(node)!.publicly_accessible === false ? true : 'publiclyAccessible must be false';
  },
};
