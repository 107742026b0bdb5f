import type { Pool } from 'pg';

/**
 * A tenant's billing as the Stripe webhooks last synced it (tenancy.tenant_billing, migration
 * 0010), for `tenancy status`: the subscription's status and plan, the dunning clock, and a
 * mismatch between the plan the registry gives the tenant and the plan Stripe bills.
 */
export interface BillingStatusView {
  readonly subscriptionStatus: string | null;
  /** The plan of the subscription's price ('free': the subscription ended; null: the price maps to no plan). */
  readonly stripePlan: string | null;
  readonly stripePrice: string | null;
  readonly pastDueSince: string | null;
  readonly graceUntil: string | null;
  readonly suspendedAt: string | null;
  /** Why the registry's plan and Stripe's differ; null when they agree. */
  readonly planMismatch: string | null;
  readonly syncedAt: string;
}

interface Row {
  tenant_id: string; subscription_status: string | null; stripe_plan: string | null; stripe_price: string | null;
  past_due_since: Date | null; grace_until: Date | null; suspended_at: Date | null; synced_at: Date;
}

/** The billing views of these tenants (registry plan by tenant id); none before migration 0010. */
export async function billingStatuses(pool: Pool, plans: ReadonlyMap<string, string>): Promise<Map<string, BillingStatusView>> {
  const out = new Map<string, BillingStatusView>();
  if (plans.size === 0) return out;
  const present = await pool.query<{ present: boolean }>(`SELECT to_regclass('tenancy.tenant_billing') IS NOT NULL AS present`);
  if (!present.rows[0].present) return out;
  const rows = (await pool.query<Row>(
    `SELECT tenant_id::text, subscription_status, stripe_plan, stripe_price, past_due_since, grace_until, suspended_at, synced_at
       FROM tenancy.tenant_billing WHERE tenant_id = ANY($1::uuid[])`,
    [[...plans.keys()]],
  )).rows;
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  for (const r of rows) {
    const plan = plans.get(r.tenant_id)!;
    const planMismatch = r.stripe_plan === null
      ? `Stripe bills price ${r.stripe_price ?? '(none)'}, which is no plan's; the registry says ${plan}`
      : r.stripe_plan !== plan ? `the registry says ${plan}, Stripe bills ${r.stripe_plan}` : null;
    out.set(r.tenant_id, {
      subscriptionStatus: r.subscription_status, stripePlan: r.stripe_plan, stripePrice: r.stripe_price,
      pastDueSince: iso(r.past_due_since), graceUntil: iso(r.grace_until), suspendedAt: iso(r.suspended_at), planMismatch, syncedAt: r.synced_at.toISOString(),
    });
  }
  return out;
}
