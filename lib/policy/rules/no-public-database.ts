import type { IConstruct } from 'constructs';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import type { PolicyRule } from '../policy-rule';

/** TENANCY-RDS-1: no tenant or shared database has a public address. */
export const NoPublicDatabaseRule: PolicyRule = {
  id: 'TENANCY-RDS-1',
  explanation: 'tenant data is reachable only from the cluster workloads, never from the internet',
  level: 'error',
  check(node: IConstruct) {
    if ((node instanceof DbInstance || node instanceof RdsClusterInstance) && node.publiclyAccessibleInput !== false) {
      return 'publiclyAccessible must be false';
    }
    return undefined;
  },
};
