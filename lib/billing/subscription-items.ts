import type Stripe from 'stripe';
import { BillingConfigError, type PlanPrice } from './plan-prices';
import { BillingError, type BillingContext } from './billing-context';
import type { BillingTenant } from './billing-tenant';
import { billingKeys } from './idempotency-keys';
import type { UsageDimension } from './meters';
import type { MeteredPrice } from './usage-prices';

/**
 * The items of a tenant's subscription: exactly one licensed item, the plan's price (quantity 1;
 * what plan changes swap), plus one metered item per invoiced usage dimension (no quantity: the
 * usage comes from the dimension's Billing Meter). Items are told apart by their price's
 * `recurring.usage_type`, never by position.
 */

/** The subscription's one licensed item (the plan); several or none is a state for a person. */
export function licensedItem(sub: Stripe.Subscription, slug: string): Stripe.SubscriptionItem {
  const licensed = sub.items.data.filter((i) => i.price.recurring?.usage_type !== 'metered');
  if (licensed.length !== 1) {
    throw new BillingError(
      `tenant ${slug}: subscription ${sub.id} has ${licensed.length} licensed items (${licensed.map((i) => i.price.id).join(', ') || 'none'}); ` +
        'tenancy manages one plan price per subscription (plus metered usage items) — remove the others in Stripe, then rerun',
    );
  }
  return licensed[0];
}

/**
 * The metered prices the subscription lacks. A dimension counts as present when an item bills its
 * meter, whatever the price (an older price of the same meter, one an operator attached): a second
 * item on the same meter would invoice the same usage twice.
 */
export function missingMeteredPrices(sub: Stripe.Subscription, metered: readonly MeteredPrice[]): MeteredPrice[] {
  const meters = new Set(sub.items.data.map((i) => i.price.recurring?.meter).filter((m): m is string => typeof m === 'string'));
  return metered.filter((p) => !meters.has(p.meter));
}

/** Stripe bills all items of a subscription on one invoice: one currency, one interval. */
export function checkMeteredPricesFit(plan: PlanPrice, metered: readonly MeteredPrice[]): void {
  for (const p of metered) {
    if (p.currency !== plan.currency || p.interval !== plan.interval || p.intervalCount !== plan.intervalCount) {
      throw new BillingConfigError(
        `usage dimension ${p.dimension}: metered price ${p.id} bills ${p.currency} every ${p.intervalCount} ${p.interval}, plan ${plan.plan}'s price ${plan.id} ` +
          `${plan.currency} every ${plan.intervalCount} ${plan.interval}; a subscription's items need one currency and interval`,
      );
    }
  }
}

/** The create / Checkout items of the metered prices: price only (Stripe refuses a quantity on them). */
export function meteredItems(metered: readonly MeteredPrice[]): { price: string }[] {
  return metered.map((p) => ({ price: p.id }));
}

/**
 * Adds the metered items the subscription lacks (a subscription created before usage billing,
 * or after a dimension got a price), leaving every other item as it is. Nothing is prorated:
 * metered items bill usage in arrears. The key names the subscription and the prices added, so
 * two runs racing add them once (Stripe replays the first response to the second).
 */
export async function ensureMeteredItems(
  ctx: BillingContext,
  tenant: BillingTenant,
  sub: Stripe.Subscription,
  metered: readonly MeteredPrice[],
): Promise<{ subscription: Stripe.Subscription; added: UsageDimension[] }> {
  const missing = missingMeteredPrices(sub, metered);
  if (missing.length === 0) return { subscription: sub, added: [] };
  const params: Stripe.SubscriptionUpdateParams = { items: meteredItems(missing), proration_behavior: 'none' };
  const updated = await ctx.stripe.subscriptions.update(sub.id, params, { idempotencyKey: billingKeys.meteredItemsAdd(tenant.id, sub.id, params) });
  return { subscription: updated, added: missing.map((p) => p.dimension) };
}
