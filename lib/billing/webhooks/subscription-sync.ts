import type { PoolClient } from 'pg';
import type Stripe from 'stripe';
import { appendAudit } from '../../control-plane/transaction';
import { PLANS } from '../../registry/tenant-schema';
import type { PlanPrices } from '../plan-prices';
import { changeTenantStatus } from './tenant-status-change';

/** A tenant as the webhook handler locked it (SELECT … FOR UPDATE). */
export interface LockedTenant {
  readonly id: string;
  readonly slug: string;
  readonly status: string;
  readonly plan: string;
  readonly stripe_subscription_id: string | null;
}

export interface SyncContext {
  readonly c: PoolClient;
  readonly stripe: Stripe;
  readonly prices: PlanPrices;
  readonly graceDays: number;
  readonly now: Date;
  readonly actor: string;
  readonly event: Stripe.Event;
}

const ENDED = new Set(['canceled', 'incomplete_expired']);
const DELINQUENT = new Set(['past_due', 'unpaid']);
const IN_GOOD_STANDING = new Set(['active', 'trialing']);

/** The plan a price bills, by the plan/price mapping (lookup key or id); null for none. */
export function planOfPrice(prices: PlanPrices, price: { id: string; lookup_key: string | null } | undefined): string | null {
  if (!price) return null;
  for (const plan of PLANS) {
    const ref = prices[plan];
    if (ref && ('priceId' in ref ? ref.priceId === price.id : ref.lookupKey === price.lookup_key)) return plan;
  }
  return null;
}

/** A subscription as Stripe has it now; undefined when Stripe no longer knows it. */
export async function currentSubscription(stripe: Stripe, id: string): Promise<Stripe.Subscription | undefined> {
  try {
    return await stripe.subscriptions.retrieve(id);
  } catch (e) {
    if ((e as { code?: string; statusCode?: number }).code === 'resource_missing' && (e as { statusCode?: number }).statusCode === 404) return undefined;
    throw e;
  }
}

/**
 * Brings the control plane in line with the tenant's subscription as Stripe has it NOW (fetched
 * here, not taken from the event): whatever order events arrive in, and however late, the state
 * applied is the latest, and applying it again changes nothing. The tenant row is locked by the
 * caller before the fetch, so two events of one tenant fetch and apply one after the other.
 *
 * - Which subscription: the recorded one; another is adopted (recorded, audited) only while none
 *   is recorded or the recorded one has ended — an event about an old subscription changes nothing.
 * - tenancy.tenant_billing: status, price, plan of the price ('free' once it ended).
 * - Dunning: past_due/unpaid moves an active tenant to `past_due` with a grace period of
 *   `graceDays` from now (the sweep suspends it after); active/trialing moves a `past_due`
 *   tenant, or one billing suspended, back to `active`. Provisioning, offboarding and offboarded
 *   tenants, and suspensions made by anything else, are never touched.
 */
export async function syncSubscription(ctx: SyncContext, tenant: LockedTenant, subscriptionId: string): Promise<Record<string, unknown>> {
  const { c, event } = ctx;
  const sub = await currentSubscription(ctx.stripe, subscriptionId);
  if (!sub) return { subscription: subscriptionId, ignored: 'the subscription no longer exists in Stripe' };
  const recorded = tenant.stripe_subscription_id;
  if (recorded !== sub.id) {
    if (recorded !== null) {
      const current = await currentSubscription(ctx.stripe, recorded);
      if (current && !ENDED.has(current.status)) return { subscription: sub.id, ignored: `not the tenant's subscription (${recorded} is)` };
    }
    if (ENDED.has(sub.status)) return { subscription: sub.id, ignored: `an ended subscription the tenant does not have recorded` };
    await c.query('UPDATE tenancy.tenants SET stripe_subscription_id = $2, updated_at = now() WHERE id = $1', [tenant.id, sub.id]);
    await appendAudit(c, ctx.actor, 'tenant.stripe_subscription', tenant.id, { subscription: sub.id, previous: recorded, source: 'stripe-webhook', event: event.id });
  }
  // The plan's price is the one licensed item (the others bill metered usage), wherever it sits;
  // none or several: no plan (stripe_price NULL), shown as a mismatch by `tenancy status`.
  const licensed = sub.items.data.filter((i) => i.price.recurring?.usage_type !== 'metered');
  const price = licensed.length === 1 ? licensed[0].price : undefined;
  const ended = ENDED.has(sub.status);
  const stripePlan = ended ? 'free' : planOfPrice(ctx.prices, price);
  const billing = await c.query<{ suspended_at: Date | null; grace_until: Date | null }>(
    `INSERT INTO tenancy.tenant_billing AS b (tenant_id, subscription_id, subscription_status, stripe_plan, stripe_price, last_event_id, synced_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant_id) DO UPDATE SET subscription_id = EXCLUDED.subscription_id, subscription_status = EXCLUDED.subscription_status,
          stripe_plan = EXCLUDED.stripe_plan, stripe_price = EXCLUDED.stripe_price, last_event_id = EXCLUDED.last_event_id, synced_at = EXCLUDED.synced_at
     RETURNING suspended_at, grace_until`,
    [tenant.id, sub.id, sub.status, stripePlan, price?.id ?? null, event.id, ctx.now],
  );
  const why = { subscription: sub.id, subscription_status: sub.status, event: event.id, event_type: event.type };
  let status = tenant.status;
  if (DELINQUENT.has(sub.status)) {
    const grace = await c.query<{ grace_until: Date }>(
      `UPDATE tenancy.tenant_billing SET past_due_since = COALESCE(past_due_since, $2), grace_until = COALESCE(grace_until, $2 + make_interval(days => $3))
        WHERE tenant_id = $1 RETURNING grace_until`,
      [tenant.id, ctx.now, ctx.graceDays],
    );
    if (await changeTenantStatus(c, ctx.actor, tenant.id, ['active'], 'past_due', { reason: 'payment failed', grace_until: grace.rows[0].grace_until, ...why })) status = 'past_due';
  } else if (IN_GOOD_STANDING.has(sub.status)) {
    const suspendedByBilling = billing.rows[0].suspended_at !== null;
    await c.query('UPDATE tenancy.tenant_billing SET past_due_since = NULL, grace_until = NULL, suspended_at = NULL WHERE tenant_id = $1', [tenant.id]);
    const from = suspendedByBilling ? ['past_due', 'suspended'] : ['past_due'];
    if (await changeTenantStatus(c, ctx.actor, tenant.id, from, 'active', { reason: 'payment recovered', ...why })) status = 'active';
  }
  return { subscription: sub.id, subscription_status: sub.status, price: price?.id ?? null, trial_end: sub.trial_end, stripe_plan: stripePlan, tenant_status: status };
}
