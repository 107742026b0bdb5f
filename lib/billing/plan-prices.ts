import type Stripe from 'stripe';
import { PLANS, type Plan } from '../registry/tenant-schema';

/**
 * Which Stripe price bills each plan (lib/registry/tenant-schema.ts PLANS). A price is named by
 * its lookup key (recommended: move the key to a new price with transfer_lookup_key to change a
 * plan's price without a deploy) or by id. `null`: the plan has no subscription.
 *
 * Free: no subscription by default — a free tenant still gets a Stripe customer (so upgrading is
 * a subscription away, and the tenant is visible in Stripe), and moving a paid tenant to free
 * cancels its subscription at the end of the paid period. To model free as a $0 subscription
 * instead, map it to a $0 recurring price: it is created like any plan, without a payment method.
 */
export type PriceRef = { readonly lookupKey: string } | { readonly priceId: string };
export type PlanPrices = Readonly<Record<Plan, PriceRef | null>>;

export const DEFAULT_PLAN_PRICES: PlanPrices = {
  free: null,
  starter: { lookupKey: 'tenancy_starter_monthly' },
  pro: { lookupKey: 'tenancy_pro_monthly' },
  enterprise: { lookupKey: 'tenancy_enterprise_monthly' },
};

/** A plan's price as the hooks use it. */
export interface PlanPrice {
  readonly plan: Plan;
  readonly id: string;
  readonly lookupKey: string | null;
  readonly unitAmount: number;
  readonly currency: string;
  readonly interval: string;
  readonly intervalCount: number;
  readonly product: string;
}

export class BillingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BillingConfigError';
  }
}

export function checkPlanPrices(prices: PlanPrices): PlanPrices {
  for (const plan of PLANS) {
    if (!(plan in prices)) throw new BillingConfigError(`plan prices: no entry for plan ${plan} (use null for a plan without subscription)`);
  }
  const unknown = Object.keys(prices).filter((p) => !(PLANS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new BillingConfigError(`plan prices: unknown plan ${unknown.join(', ')} (plans: ${PLANS.join(', ')})`);
  return prices;
}

/**
 * Resolves plans to Stripe prices, once per price per instance (one post-apply run): a
 * recurring, licensed, per-unit, active price is required.
 */
export class PlanPriceResolver {
  private readonly cache = new Map<string, Promise<PlanPrice>>();

  constructor(private readonly stripe: Stripe, private readonly prices: PlanPrices = DEFAULT_PLAN_PRICES) {
    checkPlanPrices(prices);
  }

  /** The plan's price, or null when the plan has no subscription. */
  async resolve(plan: Plan): Promise<PlanPrice | null> {
    const ref = this.prices[plan];
    if (ref === null) return null;
    const cacheKey = 'lookupKey' in ref ? `lookup:${ref.lookupKey}` : `id:${ref.priceId}`;
    let pending = this.cache.get(cacheKey);
    if (!pending) {
      pending = this.fetch(plan, ref);
      this.cache.set(cacheKey, pending);
      pending.catch(() => this.cache.delete(cacheKey));
    }
    return pending;
  }

  private async fetch(plan: Plan, ref: PriceRef): Promise<PlanPrice> {
    let price: Stripe.Price | undefined;
    if ('lookupKey' in ref) {
      const found = await this.stripe.prices.list({ lookup_keys: [ref.lookupKey], active: true, limit: 1 });
      price = found.data[0];
      if (!price) throw new BillingConfigError(`plan ${plan}: no active Stripe price with lookup_key ${JSON.stringify(ref.lookupKey)} (create it, or map the plan to another price)`);
    } else {
      price = await this.stripe.prices.retrieve(ref.priceId);
      if (!price.active) throw new BillingConfigError(`plan ${plan}: Stripe price ${price.id} is archived (inactive)`);
    }
    if (price.type !== 'recurring' || !price.recurring) throw new BillingConfigError(`plan ${plan}: Stripe price ${price.id} is not recurring`);
    if (price.recurring.usage_type !== 'licensed') throw new BillingConfigError(`plan ${plan}: Stripe price ${price.id} is metered; plans need a licensed (per-seat) price`);
    if (price.unit_amount === null) throw new BillingConfigError(`plan ${plan}: Stripe price ${price.id} has no unit_amount (tiered or custom prices are not supported)`);
    return {
      plan,
      id: price.id,
      lookupKey: price.lookup_key,
      unitAmount: price.unit_amount,
      currency: price.currency,
      interval: price.recurring.interval,
      intervalCount: price.recurring.interval_count,
      product: typeof price.product === 'string' ? price.product : price.product.id,
    };
  }
}
