import type { IConstruct } from 'constructs';
import { siloModelCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** HIPAA-SILO-1: a HIPAA tenant's data is in its own database (silo), never on the shared bridge or pool clusters. */
export const HipaaSiloRule: PolicyRule = {
  id: 'HIPAA-SILO-1',
  pack: 'hipaa',
  explanation: 'PHI must be isolatable for the Business Associate Agreement: a dedicated database per tenant, which auditors strongly prefer',
  level: 'error',
  requirement: REFERENCE.hipaa,
  check: (node: IConstruct, ctx: PolicyContext) => siloModelCheck(ctx, node, 'HIPAA'),
};
