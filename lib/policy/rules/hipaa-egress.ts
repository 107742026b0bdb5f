import type { IConstruct } from 'constructs';
import { regulatedEgressCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** HIPAA-K8S-1: a HIPAA tenant's namespace reaches only its database (private networks, PostgreSQL port) and the cluster DNS. */
export const HipaaEgressRule: PolicyRule = {
  id: 'HIPAA-K8S-1',
  pack: 'hipaa',
  explanation: 'PHI can leave the namespace only towards its database: no partner or internet destination a compromised pod could send it to',
  level: 'error',
  requirement: REFERENCE.hipaa,
  check: (node: IConstruct, ctx: PolicyContext) => regulatedEgressCheck(ctx, node),
};
