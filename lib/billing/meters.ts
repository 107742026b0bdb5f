import Stripe from 'stripe';
import { fingerprint } from './idempotency-keys';
import { BillingConfigError } from './plan-prices';

/**
 * The usage dimensions billed through Stripe Billing Meters: one meter per dimension (found by its
 * event name, unique per Stripe account) and one metered price per meter, created by the catalog
 * set-up (catalog.ts ensureCatalog) like the plan prices. Usage is reported as meter events
 * `{ event_name, payload: { stripe_customer_id, value }, identifier, timestamp }` (lib/metering).
 *
 * Aggregation per dimension (what a billing period's invoice charges):
 * - api_calls — `sum` of hourly counts: requests are additive.
 * - storage_gb — `sum` of one snapshot a day, i.e. GB-days, priced per GB-day. Storage is a
 *   level, not a flow: `last` would bill only the final snapshot of the period (a tenant that
 *   keeps 1 TB for 29 days and deletes it on day 30 pays nothing), while the sum of daily levels
 *   is the time-weighted usage (GB-days / days in period = the average GB-month S3 itself bills).
 *   A missed day under-bills that day; a rerun cannot double-bill it (identifier per day).
 * - active_seats — `last` of one count a month (users active in the last 30 days). A seat count
 *   is a level reported once per period: with `last` a corrected recount, or a report that lands
 *   in the same billing period as the previous one (periods and report days need not align),
 *   replaces the count instead of adding a second month of seats.
 */
export const USAGE_DIMENSIONS = ['api_calls', 'storage_gb', 'active_seats'] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];

/** Stripe's default payload keys (a meter's customer_mapping / value_settings). */
export const METER_CUSTOMER_KEY = 'stripe_customer_id';
export const METER_VALUE_KEY = 'value';

/** How a dimension is measured and reported; fixed in code because reporting depends on it. */
export interface UsageMeterDefinition {
  readonly dimension: UsageDimension;
  /** The meter's event_name: what meter events name. */
  readonly eventName: string;
  readonly displayName: string;
  readonly formula: 'sum' | 'last';
  /** How often one value is reported per tenant (one meter event per tenant and window). */
  readonly cadence: 'hour' | 'day' | 'month';
  readonly customerKey: typeof METER_CUSTOMER_KEY;
  readonly valueKey: typeof METER_VALUE_KEY;
}

const DEFINITIONS: Readonly<Record<UsageDimension, UsageMeterDefinition>> = {
  api_calls: { dimension: 'api_calls', eventName: 'tenancy.api_calls', displayName: 'Tenancy API calls', formula: 'sum', cadence: 'hour', customerKey: METER_CUSTOMER_KEY, valueKey: METER_VALUE_KEY },
  storage_gb: { dimension: 'storage_gb', eventName: 'tenancy.storage_gb', displayName: 'Tenancy storage (GB-days)', formula: 'sum', cadence: 'day', customerKey: METER_CUSTOMER_KEY, valueKey: METER_VALUE_KEY },
  active_seats: { dimension: 'active_seats', eventName: 'tenancy.active_seats', displayName: 'Tenancy active seats', formula: 'last', cadence: 'month', customerKey: METER_CUSTOMER_KEY, valueKey: METER_VALUE_KEY },
};

/** The meter definition of a usage dimension (event name, aggregation, reporting cadence). */
export function meterFor(dimension: UsageDimension): UsageMeterDefinition {
  const definition = DEFINITIONS[dimension];
  if (!definition) throw new BillingConfigError(`unknown usage dimension ${JSON.stringify(dimension)} (dimensions: ${USAGE_DIMENSIONS.join(', ')})`);
  return definition;
}

/** The metered price of a dimension in the catalog. */
export interface UsagePrice {
  readonly lookupKey: string;
  readonly productName: string;
  /**
   * Per unit (one API call, one GB-day, one seat) in the currency's minor unit (cents); a decimal
   * string because usage is priced below a cent (Stripe: at most 12 decimal places).
   */
  readonly unitAmountDecimal: string;
  readonly currency: string;
  /** The billing period usage is summed over; it must match the plans' interval to share a subscription. */
  readonly interval: 'day' | 'week' | 'month' | 'year';
}

/** `null`: the meter is created (usage is recorded and visible) but not charged. */
export type UsageCatalog = Readonly<Record<UsageDimension, UsagePrice | null>>;

export const DEFAULT_USAGE_CATALOG: UsageCatalog = {
  // $0.10 per 1,000 calls.
  api_calls: { lookupKey: 'tenancy_api_calls_metered', productName: 'Tenancy API calls', unitAmountDecimal: '0.01', currency: 'usd', interval: 'month' },
  // ≈ $0.10 per GB-month (30 GB-days).
  storage_gb: { lookupKey: 'tenancy_storage_gb_days_metered', productName: 'Tenancy storage (GB-days)', unitAmountDecimal: '0.3333', currency: 'usd', interval: 'month' },
  // $5 per active seat a month.
  active_seats: { lookupKey: 'tenancy_active_seats_metered', productName: 'Tenancy active seats', unitAmountDecimal: '500', currency: 'usd', interval: 'month' },
};

export interface UsageCatalogEntry {
  readonly dimension: UsageDimension;
  readonly eventName: string;
  readonly meterId: string;
  readonly meterCreated: boolean;
  /** The existing meter aggregates or maps its payload differently from the definition; left as is. */
  readonly meterDiffers: boolean;
  /** null when the catalog charges nothing for the dimension. */
  readonly priceId: string | null;
  readonly priceCreated: boolean;
  /** The existing price differs (amount, currency, interval or meter); left as is (prices are immutable). */
  readonly priceDiffers: boolean;
}

export const usageCatalogKeys = {
  meter: (eventName: string, params: unknown) => `tenancy:catalog:meter:${eventName}:create:${fingerprint(params)}`,
  product: (lookupKey: string) => `tenancy:catalog:${lookupKey}:product:create`,
  price: (lookupKey: string, params: unknown) => `tenancy:catalog:${lookupKey}:price:create:${fingerprint(params)}`,
};

/**
 * Creates what an account lacks: a meter per dimension (found by event name: Stripe allows one
 * meter per event name, so a rerun or a concurrent run finds it — the create's idempotency key
 * covers two runs racing) and a metered price per meter (found by lookup key). Existing objects
 * are never changed; a difference is reported in the entry. A deactivated meter is an operator's
 * decision: it is not reactivated, and stops the set-up with an error naming it (events for it
 * would be refused).
 */
export async function ensureUsageCatalog(stripe: Stripe, usage: UsageCatalog = DEFAULT_USAGE_CATALOG): Promise<UsageCatalogEntry[]> {
  const meters = await metersByEventName(stripe);
  const out: UsageCatalogEntry[] = [];
  for (const dimension of USAGE_DIMENSIONS) {
    const definition = meterFor(dimension);
    let meter = meters.get(definition.eventName);
    let meterCreated = false;
    if (meter && meter.status !== 'active') {
      throw new BillingConfigError(`usage dimension ${dimension}: Stripe meter ${meter.id} (event_name ${definition.eventName}) is deactivated; reactivate it in Stripe to bill ${dimension}`);
    }
    if (!meter) {
      const params: Stripe.Billing.MeterCreateParams = {
        display_name: definition.displayName,
        event_name: definition.eventName,
        default_aggregation: { formula: definition.formula },
        customer_mapping: { event_payload_key: definition.customerKey, type: 'by_id' },
        value_settings: { event_payload_key: definition.valueKey },
      };
      meter = await stripe.billing.meters.create(params, { idempotencyKey: usageCatalogKeys.meter(definition.eventName, params) });
      meterCreated = true;
    }
    const meterDiffers =
      meter.default_aggregation.formula !== definition.formula ||
      meter.customer_mapping.event_payload_key !== definition.customerKey ||
      meter.value_settings.event_payload_key !== definition.valueKey;

    const want = usage[dimension];
    if (!want) {
      out.push({ dimension, eventName: definition.eventName, meterId: meter.id, meterCreated, meterDiffers, priceId: null, priceCreated: false, priceDiffers: false });
      continue;
    }
    const [existing] = (await stripe.prices.list({ lookup_keys: [want.lookupKey], active: true, limit: 1 })).data;
    if (existing) {
      const priceDiffers =
        existing.unit_amount_decimal === null || !Stripe.Decimal.from(String(existing.unit_amount_decimal)).eq(Stripe.Decimal.from(want.unitAmountDecimal)) ||
        existing.currency !== want.currency || existing.recurring?.interval !== want.interval ||
        existing.recurring?.usage_type !== 'metered' || existing.recurring?.meter !== meter.id;
      out.push({ dimension, eventName: definition.eventName, meterId: meter.id, meterCreated, meterDiffers, priceId: existing.id, priceCreated: false, priceDiffers });
      continue;
    }
    const product = await stripe.products.create({ name: want.productName, metadata: { tenancy_usage_dimension: dimension } }, { idempotencyKey: usageCatalogKeys.product(want.lookupKey) });
    const params: Stripe.PriceCreateParams = {
      product: product.id,
      currency: want.currency,
      unit_amount_decimal: Stripe.Decimal.from(want.unitAmountDecimal),
      recurring: { interval: want.interval, usage_type: 'metered', meter: meter.id },
      lookup_key: want.lookupKey,
      metadata: { tenancy_usage_dimension: dimension },
    };
    // The key's fingerprint is taken over the amount as written (a Decimal holds a bigint, which JSON cannot encode).
    const price = await stripe.prices.create(params, { idempotencyKey: usageCatalogKeys.price(want.lookupKey, { ...params, unit_amount_decimal: want.unitAmountDecimal }) });
    out.push({ dimension, eventName: definition.eventName, meterId: meter.id, meterCreated, meterDiffers, priceId: price.id, priceCreated: true, priceDiffers: false });
  }
  return out;
}

/** A dimension's meter in a Stripe account. */
export interface UsageMeter extends UsageMeterDefinition {
  readonly meterId: string;
}

/**
 * The account's meter of every dimension (by event name), for reporting and reading summaries.
 * Fails with BillingConfigError naming what is missing or deactivated (run the catalog set-up).
 */
export async function findUsageMeters(stripe: Stripe): Promise<Readonly<Record<UsageDimension, UsageMeter>>> {
  const meters = await metersByEventName(stripe);
  const out: Partial<Record<UsageDimension, UsageMeter>> = {};
  for (const dimension of USAGE_DIMENSIONS) {
    const definition = meterFor(dimension);
    const meter = meters.get(definition.eventName);
    if (!meter) throw new BillingConfigError(`usage dimension ${dimension}: no Stripe meter with event_name ${definition.eventName} (run the catalog set-up: ensureCatalog)`);
    if (meter.status !== 'active') throw new BillingConfigError(`usage dimension ${dimension}: Stripe meter ${meter.id} (event_name ${definition.eventName}) is deactivated; it refuses meter events`);
    out[dimension] = { ...definition, meterId: meter.id };
  }
  return out as Record<UsageDimension, UsageMeter>;
}

async function metersByEventName(stripe: Stripe): Promise<Map<string, Stripe.Billing.Meter>> {
  const meters = new Map<string, Stripe.Billing.Meter>();
  for await (const meter of stripe.billing.meters.list({ limit: 100 })) meters.set(meter.event_name, meter);
  return meters;
}
