import type { IConstruct } from 'constructs';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import type { PolicyRule } from '../policy-rule';

/** TENANCY-SECRET-1: database master passwords are managed by RDS, never written in configuration. */
export const NoPlaintextDbPasswordRule: PolicyRule = {
  id: 'TENANCY-SECRET-1',
  explanation: 'a master password in Terraform configuration ends up in the synthesized JSON and the plan; let RDS manage it in Secrets Manager',
  level: 'error',
  check(node: IConstruct) {
    const password =
      node instanceof DbInstance ? node.passwordInput : node instanceof RdsCluster ? node.masterPasswordInput : undefined;
    if (!(node instanceof DbInstance || node instanceof RdsCluster)) return undefined;
    if (password !== undefined || node.manageMasterUserPasswordInput !== true) return 'set manageMasterUserPassword and no password';
    return undefined;
  },
};
