import type { IConstruct } from 'constructs';
import { encryptionAtRestCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** SOC2-RDS-3: database storage is encrypted with a customer-managed KMS key that rotates. */
export const EncryptionAtRestRule: PolicyRule = {
  id: 'SOC2-RDS-3',
  pack: 'soc2',
  explanation: 'data at rest is encrypted with a customer-managed KMS key, whose use CloudTrail records and whose rotation is on',
  level: 'error',
  requirement: REFERENCE.soc2,
  check: (node: IConstruct, ctx: PolicyContext) => encryptionAtRestCheck(ctx, node),
};
