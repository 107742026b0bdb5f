import type { IConstruct } from 'constructs';
import { PoolTenant } from '../../pool-tenant';
import { tenancyConstructs } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * GDPR-ERASE-2 (warning): a GDPR tenant on the pool model is erased by DELETE … WHERE tenant_id
 * over every shared table, which the reference calls error-prone: the compliance report lists the
 * tables the RLS audit found (with --pool-url); bridge or silo make erasure one statement.
 */
export const GdprPoolErasureRule: PolicyRule = {
  id: 'GDPR-ERASE-2',
  pack: 'gdpr',
  explanation: 'erasure from the pool is a DELETE across every table with tenant_id, error-prone as tables are added; bridge (DROP SCHEMA) or silo (drop the database) erase in one step',
  level: 'warning',
  requirement: REFERENCE.gdpr,
  check(node: IConstruct, ctx: PolicyContext) {
    if (node instanceof PoolTenant) return `tenant ${node.slug} is on the pool: erasure is DELETE … WHERE tenant_id = '${node.tenantId}' in every pool table (see the RLS audit in the compliance report); consider bridge or silo`;
    if (node === ctx.stack && ctx.scope === 'tenant' && tenancyConstructs(ctx).some((t) => !(t instanceof PoolTenant))) return true;
    return undefined;
  },
};
