import Stripe from 'stripe';
import { BillingConfigError, DEFAULT_USAGE_CATALOG, ensureCatalog, ensureUsageCatalog, findUsageMeters, meterFor, USAGE_DIMENSIONS, type UsageCatalog } from '../../lib/billing';
import { fixedClock, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';
import { CATALOG } from './helpers';

/**
 * The catalog set-up creates one Billing Meter per usage dimension and one metered price per
 * meter, idempotently like the plan prices (lib/billing/meters.ts, catalog.ts), against the
 * local Stripe server. Every test uses a fresh account.
 */
const clock = fixedClock();
const mock = useStripeMock({ clock });
beforeEach(() => clock.set(T0));

function fresh(options: { maxNetworkRetries?: number } = {}) {
  const key = testKey();
  return { key, stripe: stripeFor(mock(), key, options) };
}

const meteredPrices = (key: string) => mock().objects(key, 'price').filter((p) => p.recurring?.usage_type === 'metered');

describe('usage dimensions', () => {
  it('names a meter event per dimension, with the aggregation that fits it', () => {
    expect(USAGE_DIMENSIONS).toEqual(['api_calls', 'storage_gb', 'active_seats']);
    expect(USAGE_DIMENSIONS.map((d) => [meterFor(d).eventName, meterFor(d).formula, meterFor(d).cadence])).toEqual([
      ['tenancy.api_calls', 'sum', 'hour'],
      ['tenancy.storage_gb', 'sum', 'day'],
      ['tenancy.active_seats', 'last', 'month'],
    ]);
    expect(() => meterFor('bandwidth' as any)).toThrow(/unknown usage dimension "bandwidth"/);
  });
});

describe('ensureCatalog: meters and metered prices', () => {
  it('creates a meter and a metered price per dimension along with the plan prices, and nothing on a rerun', async () => {
    const { key, stripe } = fresh();
    await ensureCatalog(stripe, CATALOG);
    const meters = mock().objects(key, 'billing.meter').reverse();
    expect(meters.map((m) => [m.event_name, m.default_aggregation.formula, m.customer_mapping, m.value_settings.event_payload_key, m.status])).toEqual([
      ['tenancy.api_calls', 'sum', { event_payload_key: 'stripe_customer_id', type: 'by_id' }, 'value', 'active'],
      ['tenancy.storage_gb', 'sum', { event_payload_key: 'stripe_customer_id', type: 'by_id' }, 'value', 'active'],
      ['tenancy.active_seats', 'last', { event_payload_key: 'stripe_customer_id', type: 'by_id' }, 'value', 'active'],
    ]);
    const prices = meteredPrices(key).reverse();
    expect(prices.map((p) => [p.lookup_key, p.unit_amount_decimal, p.unit_amount, p.currency, p.recurring.interval, p.recurring.meter, p.metadata.tenancy_usage_dimension])).toEqual([
      ['tenancy_api_calls_metered', '0.01', null, 'usd', 'month', meters[0].id, 'api_calls'],
      ['tenancy_storage_gb_days_metered', '0.3333', null, 'usd', 'month', meters[1].id, 'storage_gb'],
      ['tenancy_active_seats_metered', '500', 500, 'usd', 'month', meters[2].id, 'active_seats'],
    ]);

    const entries = await ensureUsageCatalog(stripe);
    expect(entries.map((e) => [e.dimension, e.meterId, e.meterCreated, e.meterDiffers, e.priceId, e.priceCreated, e.priceDiffers])).toEqual(
      USAGE_DIMENSIONS.map((d, i) => [d, meters[i].id, false, false, prices[i].id, false, false]),
    );
    await ensureCatalog(stripe, CATALOG);
    expect(mock().objects(key, 'billing.meter')).toHaveLength(3);
    expect(meteredPrices(key)).toHaveLength(3);
    expect(mock().objects(key, 'product')).toHaveLength(3 + 3);
  });

  it('creates each meter and price once when two set-ups run at the same time', async () => {
    const { key } = fresh();
    // Retries as in production: a request racing one with the same idempotency key gets a retryable 409.
    await Promise.all([ensureCatalog(stripeFor(mock(), key, { maxNetworkRetries: 3 }), CATALOG), ensureCatalog(stripeFor(mock(), key, { maxNetworkRetries: 3 }), CATALOG)]);
    expect(mock().objects(key, 'billing.meter').map((m) => m.event_name).sort()).toEqual(['tenancy.active_seats', 'tenancy.api_calls', 'tenancy.storage_gb']);
    expect(meteredPrices(key)).toHaveLength(3);
  });

  it('takes the per-unit amounts from the catalog definition; a dimension without price still gets its meter', async () => {
    const { key, stripe } = fresh();
    const usage: UsageCatalog = { ...DEFAULT_USAGE_CATALOG, api_calls: { ...DEFAULT_USAGE_CATALOG.api_calls!, unitAmountDecimal: '0.002', currency: 'eur' }, storage_gb: null };
    const entries = await ensureUsageCatalog(stripe, usage);
    expect(entries.find((e) => e.dimension === 'storage_gb')).toMatchObject({ priceId: null, meterCreated: true });
    expect(meteredPrices(key).map((p) => [p.lookup_key, p.unit_amount_decimal, p.currency]).sort()).toEqual([
      ['tenancy_active_seats_metered', '500', 'usd'],
      ['tenancy_api_calls_metered', '0.002', 'eur'],
    ]);
    // A changed amount is reported, never applied to the existing (immutable) price.
    const again = await ensureUsageCatalog(stripe);
    expect(again.find((e) => e.dimension === 'api_calls')).toMatchObject({ priceCreated: false, priceDiffers: true });
    expect(again.find((e) => e.dimension === 'storage_gb')).toMatchObject({ priceCreated: true, priceDiffers: false });
  });

  it('adopts an existing meter with the event name, reporting a different aggregation instead of changing it', async () => {
    const { key, stripe } = fresh();
    const own = await stripe.billing.meters.create({ display_name: 'Mine', event_name: 'tenancy.api_calls', default_aggregation: { formula: 'count' } });
    const entries = await ensureUsageCatalog(stripe);
    expect(entries[0]).toMatchObject({ dimension: 'api_calls', meterId: own.id, meterCreated: false, meterDiffers: true });
    expect(mock().objects(key, 'billing.meter').find((m) => m.id === own.id)?.default_aggregation.formula).toBe('count');
  });

  it('stops at a deactivated meter, naming it, and does not reactivate it', async () => {
    const { stripe } = fresh();
    await ensureUsageCatalog(stripe);
    const { api_calls } = await findUsageMeters(stripe);
    await stripe.billing.meters.deactivate(api_calls.meterId);
    await expect(ensureUsageCatalog(stripe)).rejects.toThrow(new RegExp(`usage dimension api_calls: Stripe meter ${api_calls.meterId} \\(event_name tenancy.api_calls\\) is deactivated`));
    await expect(findUsageMeters(stripe)).rejects.toBeInstanceOf(BillingConfigError);
    expect((await stripe.billing.meters.retrieve(api_calls.meterId)).status).toBe('inactive');
  });
});

describe('findUsageMeters', () => {
  it('finds each dimension’s meter id by event name after the set-up, and says what is missing before it', async () => {
    const { stripe } = fresh();
    await expect(findUsageMeters(stripe)).rejects.toThrow(/usage dimension api_calls: no Stripe meter with event_name tenancy.api_calls \(run the catalog set-up: ensureCatalog\)/);
    const entries = await ensureCatalog(stripe, CATALOG).then(() => ensureUsageCatalog(stripe));
    const meters = await findUsageMeters(stripe);
    for (const entry of entries) expect(meters[entry.dimension]).toMatchObject({ meterId: entry.meterId, eventName: entry.eventName, dimension: entry.dimension });
    // The meter takes events under its name, for a customer, and sums them.
    const customer = await stripe.customers.create({});
    await stripe.billing.meterEvents.create({ event_name: meters.api_calls.eventName, payload: { [meters.api_calls.customerKey]: customer.id, [meters.api_calls.valueKey]: '12' }, identifier: 't:api_calls:1', timestamp: T0 - 10 });
    const summary = await stripe.billing.meters.listEventSummaries(meters.api_calls.meterId, { customer: customer.id, start_time: T0 - 3600, end_time: T0 + 3600 });
    expect(summary.data.map((s) => s.aggregated_value)).toEqual([12]);
  });

  it('reads the price amount back as a Decimal through the SDK (unit_amount_decimal)', async () => {
    const { stripe } = fresh();
    await ensureUsageCatalog(stripe);
    const [price] = (await stripe.prices.list({ lookup_keys: ['tenancy_api_calls_metered'] })).data;
    expect(String(price.unit_amount_decimal)).toBe('0.01');
    expect(price.unit_amount).toBeNull();
    expect(Stripe.Decimal.from('0.01').eq(price.unit_amount_decimal as any)).toBe(true);
  });
});
