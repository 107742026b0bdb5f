import type Stripe from 'stripe';
import { DEFAULT_USAGE_CATALOG, USAGE_DIMENSIONS, type UsageCatalog, type UsageDimension } from './meters';
import { BillingConfigError, type PriceRef } from './plan-prices';

/**
 * Which metered price bills each usage dimension on a tenant's subscription (meters.ts): a price
 * named by lookup key or id, like the plans' (plan-prices.ts). `null`: the dimension is metered
 * (usage recorded on its meter, visible per customer) but not invoiced — no item is attached.
 * Every subscription carries the plan's licensed price plus one item per non-null dimension.
 */
export type UsagePrices = Readonly<Record<UsageDimension, PriceRef | null>>;

/** The usage-price mapping of a usage catalog (by lookup key). */
export function usagePricesOf(usage: UsageCatalog): UsagePrices {
  return Object.fromEntries(USAGE_DIMENSIONS.map((d) => [d, usage[d] ? { lookupKey: usage[d]!.lookupKey } : null])) as unknown as UsagePrices;
}

/** The metered prices the catalog set-up creates (DEFAULT_USAGE_CATALOG), by lookup key. */
export const DEFAULT_USAGE_PRICES: UsagePrices = usagePricesOf(DEFAULT_USAGE_CATALOG);

/** Usage metered but never invoiced: subscriptions get no metered items. */
export const NO_USAGE_PRICES: UsagePrices = usagePricesOf({ api_calls: null, storage_gb: null, active_seats: null });

export function checkUsagePrices(prices: UsagePrices): UsagePrices {
  for (const dimension of USAGE_DIMENSIONS) {
    if (!(dimension in prices)) throw new BillingConfigError(`usage prices: no entry for dimension ${dimension} (use null to meter it without invoicing it)`);
  }
  const unknown = Object.keys(prices).filter((d) => !(USAGE_DIMENSIONS as readonly string[]).includes(d));
  if (unknown.length > 0) throw new BillingConfigError(`usage prices: unknown dimension ${unknown.join(', ')} (dimensions: ${USAGE_DIMENSIONS.join(', ')})`);
  return prices;
}

/** A dimension's metered price as subscriptions use it. */
export interface MeteredPrice {
  readonly dimension: UsageDimension;
  readonly id: string;
  readonly lookupKey: string | null;
  /** The Billing Meter the price bills: at most one item per meter on a subscription. */
  readonly meter: string;
  readonly currency: string;
  readonly interval: string;
  readonly intervalCount: number;
}

/**
 * Resolves the usage dimensions to their metered prices, once per instance (one post-apply run):
 * an active, recurring, metered price with a meter is required for every non-null dimension —
 * a missing one fails naming it (run the catalog set-up, or map the dimension to null), rather
 * than subscribing tenants whose usage would silently never be invoiced.
 */
export class UsagePriceResolver {
  private pending?: Promise<readonly MeteredPrice[]>;

  constructor(private readonly stripe: Stripe, private readonly prices: UsagePrices = DEFAULT_USAGE_PRICES) {
    checkUsagePrices(prices);
  }

  /** The metered prices to attach, in USAGE_DIMENSIONS order (empty when every dimension is null). */
  resolve(): Promise<readonly MeteredPrice[]> {
    if (!this.pending) {
      this.pending = this.fetchAll();
      this.pending.catch(() => (this.pending = undefined));
    }
    return this.pending;
  }

  private async fetchAll(): Promise<readonly MeteredPrice[]> {
    const out: MeteredPrice[] = [];
    for (const dimension of USAGE_DIMENSIONS) {
      const ref = this.prices[dimension];
      if (ref) out.push(await this.fetch(dimension, ref));
    }
    return out;
  }

  private async fetch(dimension: UsageDimension, ref: PriceRef): Promise<MeteredPrice> {
    let price: Stripe.Price | undefined;
    if ('lookupKey' in ref) {
      price = (await this.stripe.prices.list({ lookup_keys: [ref.lookupKey], active: true, limit: 1 })).data[0];
      if (!price) {
        throw new BillingConfigError(
          `usage dimension ${dimension}: no active Stripe price with lookup_key ${JSON.stringify(ref.lookupKey)} (run the catalog set-up, ensureCatalog, or map the dimension to null to meter it without invoicing it)`,
        );
      }
    } else {
      price = await this.stripe.prices.retrieve(ref.priceId);
      if (!price.active) throw new BillingConfigError(`usage dimension ${dimension}: Stripe price ${price.id} is archived (inactive)`);
    }
    if (price.type !== 'recurring' || !price.recurring) throw new BillingConfigError(`usage dimension ${dimension}: Stripe price ${price.id} is not recurring`);
    if (price.recurring.usage_type !== 'metered' || !price.recurring.meter) {
      throw new BillingConfigError(`usage dimension ${dimension}: Stripe price ${price.id} is not a metered price on a Billing Meter (recurring.usage_type metered, recurring.meter)`);
    }
    return {
      dimension,
      id: price.id,
      lookupKey: price.lookup_key,
      meter: price.recurring.meter,
      currency: price.currency,
      interval: price.recurring.interval,
      intervalCount: price.recurring.interval_count,
    };
  }
}
