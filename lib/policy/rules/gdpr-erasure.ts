import type { IConstruct } from 'constructs';
import { BridgeTenant } from '../../bridge-tenant';
import { tenantNames } from '../../naming';
import { PoolTenant } from '../../pool-tenant';
import { SiloTenant } from '../../silo-tenant';
import { tenancyConstructs } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * GDPR-ERASE-1: the erasure path of the tenant's model exists and reaches only the tenant:
 * silo: its database, master secret and credentials are encrypted with a key of its own stack
 * that can be scheduled for deletion (destroying the stack and the key erases the instance and,
 * cryptographically, every snapshot and retained backup); bridge: all of its data is schema
 * tenant_<slug> (DROP SCHEMA … CASCADE); pool: every row carries its tenant id (DELETE … WHERE
 * tenant_id = id, over the tables the RLS audit lists).
 */
export const GdprErasureRule: PolicyRule = {
  id: 'GDPR-ERASE-1',
  pack: 'gdpr',
  explanation: "the right to erasure: all data of one tenant can be deleted cleanly (silo: drop the database and its key; bridge: DROP SCHEMA tenant_x CASCADE; pool: DELETE WHERE tenant_id = ?)",
  level: 'error',
  requirement: REFERENCE.gdpr,
  check(node: IConstruct, ctx: PolicyContext) {
    if (node !== ctx.stack || ctx.scope !== 'tenant') return undefined;
    const placed = tenancyConstructs(ctx);
    if (placed.length === 0) return 'no SiloTenant, BridgeTenant or PoolTenant in the stack: nothing records where the tenant\'s data is, so no erasure path can be shown';
    const problems: string[] = [];
    for (const t of placed) {
      if (ctx.tenant && t.slug !== ctx.tenant.slug) problems.push(`${t.node.path} places tenant ${t.slug}, not ${ctx.tenant.slug}`);
      if (t instanceof SiloTenant) {
        const db = ctx.config(t.database.instance) ?? {};
        const key = ctx.referenced(db.kms_key_id, 'aws_kms_key');
        if (!key) problems.push(`${t.node.path}: the database is not encrypted with a key of this stack, so its snapshots and retained backups cannot be erased with it`);
        else {
          if (typeof key.config.deletion_window_in_days !== 'number') problems.push(`${key.address} has no deletion window: schedule its deletion to erase every copy`);
          const secretKey = ctx.referenced(ctx.config(t.appCredentials)?.kms_key_id, 'aws_kms_key');
          if (secretKey?.address !== key.address) problems.push(`${t.node.path}: the application credentials are not encrypted with the database's key`);
        }
      } else if (t instanceof BridgeTenant) {
        if (t.schemaName !== tenantNames(t.slug).schema) problems.push(`${t.node.path}: schema ${t.schemaName} is not the tenant's own tenant_<slug> schema, so DROP SCHEMA would not reach exactly its data`);
      } else if (t instanceof PoolTenant) {
        if (ctx.tenant && t.tenantId !== ctx.tenant.id.toLowerCase()) problems.push(`${t.node.path}: rows are keyed by ${t.tenantId}, not the tenant id ${ctx.tenant.id}`);
      }
    }
    return problems.length ? problems : true;
  },
};
