import type { PoolClient } from 'pg';
import { appendAudit } from '../../control-plane/transaction';

/**
 * Moves a tenant from one of `from` to `to` on `c` (inside the caller's transaction): the same
 * UPDATE of tenancy.tenants as ControlPlane.setStatus — its trigger (migration 0005) NOTIFYs the
 * routers, which evict the tenant at commit — and the same `tenant.status` audit entry, with why.
 * Nothing happens (false) when the tenant is in no status of `from`.
 */
export async function changeTenantStatus(
  c: PoolClient,
  actor: string,
  tenantId: string,
  from: readonly string[],
  to: string,
  details: Record<string, unknown>,
): Promise<boolean> {
  const r = await c.query('UPDATE tenancy.tenants SET status = $2, updated_at = now() WHERE id = $1 AND status = ANY($3::text[]) AND status <> $2 RETURNING id', [tenantId, to, from]);
  if (!r.rowCount) return false;
  await appendAudit(c, actor, 'tenant.status', tenantId, { status: to, ...details });
  return true;
}
