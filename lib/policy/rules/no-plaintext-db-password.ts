import type { IConstruct } from 'constructs';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** TENANCY-SECRET-1: database master passwords are managed by RDS, never written in configuration. */
export const NoPlaintextDbPasswordRule: PolicyRule = {
  id: 'TENANCY-SECRET-1',
  pack: 'tenancy',
  explanation: 'a master password in Terraform configuration ends up in the synthesized JSON and the plan; let RDS manage it in Secrets Manager',
  level: 'error',
  requirement: REFERENCE.provisioning,
  check(node: IConstruct, ctx: PolicyContext) {
    const type = ctx.typeOf(node);
    if (type !== 'aws_db_instance' && type !== 'aws_rds_cluster') return undefined;
    const c = ctx.config(node)!;
    const password = type === 'aws_db_instance' ? c.password : c.master_password;
    if (password !== undefined || c.manage_master_user_password !== true) return 'set manageMasterUserPassword and no password';
    return true;
  },
};
