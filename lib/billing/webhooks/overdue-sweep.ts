import type { Pool } from 'pg';
import { inTransaction } from '../../control-plane/transaction';
import { changeTenantStatus } from './tenant-status-change';

/**
 * Suspends every `past_due` tenant whose grace period (platform.yaml billing.pastDueGraceDays,
 * counted from the failed payment the webhook reported) is over at `now`: status `suspended`
 * through the tenant-status path (audited, routers evict it), `suspended_at` recorded so that a
 * later paid invoice lifts this suspension — and only a suspension billing made. Runs after
 * every webhook event and periodically in `tenancy webhooks serve`; safe to run anywhere, any
 * number of times (each tenant is locked and re-checked).
 */
export async function suspendOverdueTenants(pool: Pool, options: { now?: Date; actor?: string } = {}): Promise<string[]> {
  const now = options.now ?? new Date();
  const actor = options.actor ?? 'stripe-webhook';
  const due = await pool.query<{ tenant_id: string }>(
    `SELECT b.tenant_id::text FROM tenancy.tenant_billing b JOIN tenancy.tenants t ON t.id = b.tenant_id
      WHERE t.status = 'past_due' AND b.grace_until <= $1 ORDER BY b.grace_until`,
    [now],
  );
  const suspended: string[] = [];
  for (const { tenant_id: id } of due.rows) {
    const done = await inTransaction(pool, async (c) => {
      // The tenant row first, then its billing row: the order the webhook handler locks them in.
      const tenant = await c.query(`SELECT 1 FROM tenancy.tenants WHERE id = $1 AND status = 'past_due' FOR UPDATE`, [id]);
      if (!tenant.rowCount) return false;
      const row = await c.query('SELECT grace_until, past_due_since FROM tenancy.tenant_billing WHERE tenant_id = $1 AND grace_until <= $2 FOR UPDATE', [id, now]);
      if (!row.rowCount) return false;
      const { grace_until: graceUntil, past_due_since: since } = row.rows[0];
      await c.query('UPDATE tenancy.tenant_billing SET suspended_at = $2 WHERE tenant_id = $1', [id, now]);
      return changeTenantStatus(c, actor, id, ['past_due'], 'suspended', { reason: 'payment overdue: grace period ended', past_due_since: since, grace_until: graceUntil });
    });
    if (done) suspended.push(id);
  }
  return suspended;
}
