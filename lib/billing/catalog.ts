import type Stripe from 'stripe';
import { PLANS, type Plan } from '../registry/tenant-schema';
import { billingKeys } from './idempotency-keys';
import { DEFAULT_USAGE_CATALOG, ensureUsageCatalog, type UsageCatalog } from './meters';
import type { PlanPrices } from './plan-prices';

/**
 * Creates the plans' products and prices in a Stripe account that lacks them — for test mode
 * and the local server; in live mode prices are usually managed in the Dashboard. A price is
 * found by its lookup key; an existing one is never changed (Stripe prices are immutable: to
 * change an amount create a new price and move the lookup key with transfer_lookup_key).
 */
export interface CatalogPrice {
  readonly lookupKey: string;
  readonly productName: string;
  /** Minor units (cents). */
  readonly unitAmount: number;
  readonly currency: string;
  readonly interval: 'day' | 'week' | 'month' | 'year';
}

export type Catalog = Readonly<Record<Plan, CatalogPrice | null>>;

export const DEFAULT_CATALOG: Catalog = {
  free: null,
  starter: { lookupKey: 'tenancy_starter_monthly', productName: 'Tenancy Starter', unitAmount: 4900, currency: 'usd', interval: 'month' },
  pro: { lookupKey: 'tenancy_pro_monthly', productName: 'Tenancy Pro', unitAmount: 19900, currency: 'usd', interval: 'month' },
  enterprise: { lookupKey: 'tenancy_enterprise_monthly', productName: 'Tenancy Enterprise', unitAmount: 99900, currency: 'usd', interval: 'month' },
};

export interface CatalogEntry {
  readonly plan: Plan;
  readonly priceId: string;
  readonly created: boolean;
  /** The existing price differs from the catalog (amount, currency or interval); it was left as is. */
  readonly differs: boolean;
}

/**
 * The plans' prices (returned), then the usage meters and their metered prices (meters.ts
 * ensureUsageCatalog, which returns what it found or created).
 */
export async function ensureCatalog(stripe: Stripe, catalog: Catalog = DEFAULT_CATALOG, usage: UsageCatalog = DEFAULT_USAGE_CATALOG): Promise<CatalogEntry[]> {
  const out: CatalogEntry[] = [];
  for (const plan of PLANS) {
    const want = catalog[plan];
    if (!want) continue;
    const [existing] = (await stripe.prices.list({ lookup_keys: [want.lookupKey], active: true, limit: 1 })).data;
    if (existing) {
      const differs = existing.unit_amount !== want.unitAmount || existing.currency !== want.currency || existing.recurring?.interval !== want.interval;
      out.push({ plan, priceId: existing.id, created: false, differs });
      continue;
    }
    const product = await stripe.products.create({ name: want.productName, metadata: { tenancy_plan: plan } }, { idempotencyKey: billingKeys.catalogProduct(want.lookupKey) });
    const params: Stripe.PriceCreateParams = {
      product: product.id,
      currency: want.currency,
      unit_amount: want.unitAmount,
      recurring: { interval: want.interval },
      lookup_key: want.lookupKey,
      metadata: { tenancy_plan: plan },
    };
    const price = await stripe.prices.create(params, { idempotencyKey: billingKeys.catalogPrice(want.lookupKey, params) });
    out.push({ plan, priceId: price.id, created: true, differs: false });
  }
  await ensureUsageCatalog(stripe, usage);
  return out;
}

/** The plan → price mapping of a catalog (by lookup key). */
export function planPricesOf(catalog: Catalog): PlanPrices {
  return Object.fromEntries(PLANS.map((plan) => [plan, catalog[plan] ? { lookupKey: catalog[plan]!.lookupKey } : null])) as unknown as PlanPrices;
}
