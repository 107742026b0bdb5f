import Stripe from 'stripe';
import { fixedClock, stripeError, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';

/**
 * Billing Meters on the local Stripe server, through the official SDK (stripe@23):
 * `stripe.billing.meters.*`, `stripe.billing.meterEvents.create`,
 * `stripe.billing.meters.listEventSummaries`, metered prices and metered subscription items.
 * Every test uses its own API key (its own empty account); the clock is fixed at T0
 * (2026-01-15 12:00:00 UTC, on an hour and day... boundary of the hour).
 */
const clock = fixedClock();
const mock = useStripeMock({ clock });
const HOUR = 3600;
const DAY = 86_400;
beforeEach(() => clock.set(T0));

async function account(formula: 'sum' | 'count' | 'last' = 'sum', eventName = 'tenancy.api_calls') {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  const meter = await stripe.billing.meters.create({ display_name: 'API calls', event_name: eventName, default_aggregation: { formula } });
  const customer = await stripe.customers.create({ name: 'Initech' });
  return { key, stripe, meter, customer };
}

function usage(customer: string, value: string, extra: Partial<Stripe.Billing.MeterEventCreateParams> = {}): Stripe.Billing.MeterEventCreateParams {
  return { event_name: 'tenancy.api_calls', payload: { stripe_customer_id: customer, value }, ...extra };
}

describe('meters', () => {
  it('creates a meter with Stripe defaults, retrieves and lists it', async () => {
    const { stripe, meter } = await account();
    expect(meter).toMatchObject({
      object: 'billing.meter',
      display_name: 'API calls',
      event_name: 'tenancy.api_calls',
      default_aggregation: { formula: 'sum' },
      customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
      value_settings: { event_payload_key: 'value' },
      event_time_window: null,
      status: 'active',
      status_transitions: { deactivated_at: null },
      livemode: false,
      created: T0,
    });
    expect(meter.id).toMatch(/^mtr_test_[A-Za-z0-9]{32}$/);
    expect(await stripe.billing.meters.retrieve(meter.id)).toEqual(meter);
    const seats = await stripe.billing.meters.create({
      display_name: 'Seats', event_name: 'tenancy.active_seats', default_aggregation: { formula: 'last' },
      customer_mapping: { event_payload_key: 'customer', type: 'by_id' }, value_settings: { event_payload_key: 'seats' },
    });
    expect(seats).toMatchObject({ customer_mapping: { event_payload_key: 'customer' }, value_settings: { event_payload_key: 'seats' } });
    const all = await stripe.billing.meters.list({ limit: 1 });
    expect(all.data.map((m) => m.id)).toEqual([seats.id]);
    expect(all.has_more).toBe(true);
    const next = await stripe.billing.meters.list({ limit: 1, starting_after: seats.id });
    expect(next.data.map((m) => m.id)).toEqual([meter.id]);
    expect(next.has_more).toBe(false);
  });

  it('refuses a second meter with the same event_name, even after the first is deactivated', async () => {
    const { stripe, meter } = await account();
    const again = () => stripe.billing.meters.create({ display_name: 'Other', event_name: 'tenancy.api_calls', default_aggregation: { formula: 'count' } });
    const e = await stripeError(again);
    expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(e).toMatchObject({ statusCode: 400, param: 'event_name', code: 'resource_already_exists' });
    expect(e.message).toMatch(/event_name 'tenancy\.api_calls' already exists/);
    const deactivated = await stripe.billing.meters.deactivate(meter.id);
    expect(deactivated).toMatchObject({ status: 'inactive', status_transitions: { deactivated_at: T0 } });
    expect((await stripeError(again)).code).toBe('resource_already_exists');
    expect((await stripe.billing.meters.list({ status: 'active' })).data).toEqual([]);
    expect((await stripe.billing.meters.reactivate(meter.id)).status).toBe('active');
  });

  it.each<[string, (s: Stripe) => Promise<unknown>, { status: number; code?: string; param: string }]>([
    ['a missing default_aggregation', (s) => s.billing.meters.create({ display_name: 'x', event_name: 'e' } as any), { status: 400, code: 'parameter_missing', param: 'default_aggregation' }],
    ['an unknown formula', (s) => s.billing.meters.create({ display_name: 'x', event_name: 'e', default_aggregation: { formula: 'max' } }), { status: 400, param: 'default_aggregation[formula]' }],
    ['a customer mapping other than by_id', (s) => s.billing.meters.create({ display_name: 'x', event_name: 'e', default_aggregation: { formula: 'sum' }, customer_mapping: { event_payload_key: 'c', type: 'by_email' as any } }), { status: 400, param: 'customer_mapping[type]' }],
    ['an event_name over 100 characters', (s) => s.billing.meters.create({ display_name: 'x', event_name: 'e'.repeat(101), default_aggregation: { formula: 'sum' } }), { status: 400, param: 'event_name' }],
    ['an unknown meter id (404)', (s) => s.billing.meters.retrieve('mtr_test_missing'), { status: 404, code: 'resource_missing', param: 'id' }],
  ])('rejects %s', async (_name, call, expected) => {
    const e = await stripeError(() => call(stripeFor(mock(), testKey())));
    expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(e.raw).toMatchObject({ type: 'invalid_request_error', param: expected.param });
    expect(e.statusCode).toBe(expected.status);
    if (expected.code) expect(e.code).toBe(expected.code);
  });
});

describe('meter events', () => {
  it('accepts an event and returns the billing.meter_event; the server records it', async () => {
    const { key, stripe, customer } = await account();
    const event = await stripe.billing.meterEvents.create(usage(customer.id, '42', { identifier: 'tenant-1:api_calls:2026-01-15T11', timestamp: T0 - 60 }));
    expect(event).toEqual({
      object: 'billing.meter_event',
      created: T0,
      event_name: 'tenancy.api_calls',
      identifier: 'tenant-1:api_calls:2026-01-15T11',
      livemode: false,
      payload: { stripe_customer_id: customer.id, value: '42' },
      timestamp: T0 - 60,
    });
    const generated = await stripe.billing.meterEvents.create(usage(customer.id, '1'));
    expect(generated.identifier).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(generated.timestamp).toBe(T0);
    expect(mock().meterEvents(key).map((e) => [e.identifier, e.payload.value])).toEqual([['tenant-1:api_calls:2026-01-15T11', '42'], [generated.identifier, '1']]);
  });

  it('refuses a second event with the same identifier (Stripe: 400, not retryable) and counts it once', async () => {
    const { key, stripe, meter, customer } = await account();
    const params = usage(customer.id, '5', { identifier: 'tenant-1:api_calls:2026-01-15T11', timestamp: T0 - HOUR });
    await stripe.billing.meterEvents.create(params);
    for (const retry of [params, { ...params, payload: { ...params.payload, value: '6' } }]) {
      const e = await stripeError(() => stripe.billing.meterEvents.create(retry));
      expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(e.statusCode).toBe(400);
      expect(e.message).toBe('An event already exists with identifier tenant-1:api_calls:2026-01-15T11.');
      expect(e.headers?.['stripe-should-retry']).toBe('false');
    }
    // Another account (API key) has its own identifiers.
    const other = await account();
    await other.stripe.billing.meterEvents.create(usage(other.customer.id, '1', { identifier: 'tenant-1:api_calls:2026-01-15T11' }));

    const summaries = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: T0 - DAY / 2, end_time: T0 + HOUR });
    expect(summaries.data.map((s) => s.aggregated_value)).toEqual([5]);
    expect(mock().meterEvents(key)).toHaveLength(1);
  });

  it('lets an identifier be used again once 24 hours have passed since its first use', async () => {
    const { key, stripe, customer } = await account();
    await stripe.billing.meterEvents.create(usage(customer.id, '1', { identifier: 'x' }));
    clock.set(T0 + DAY - 1);
    expect((await stripeError(() => stripe.billing.meterEvents.create(usage(customer.id, '1', { identifier: 'x' })))).message).toMatch(/already exists with identifier x/);
    clock.set(T0 + DAY);
    await stripe.billing.meterEvents.create(usage(customer.id, '1', { identifier: 'x' }));
    expect(mock().meterEvents(key)).toHaveLength(2);
  });

  it.each<[string, (c: string) => Stripe.Billing.MeterEventCreateParams, { code: string; param: string; message: RegExp }]>([
    ['an event_name without meter', (c) => usage(c, '1', { event_name: 'tenancy.nothing' }), { code: 'no_meter', param: 'event_name', message: /No active meter was found for event_name 'tenancy\.nothing'/ }],
    ['a payload without the customer key', () => ({ event_name: 'tenancy.api_calls', payload: { value: '1' } }), { code: 'meter_event_no_customer_defined', param: 'payload[stripe_customer_id]', message: /missing the customer key 'stripe_customer_id'/ }],
    ['an unknown customer', () => usage('cus_missing', '1'), { code: 'meter_event_customer_not_found', param: 'payload[stripe_customer_id]', message: /No such customer: 'cus_missing'/ }],
    ['a payload without the value key', (c) => ({ event_name: 'tenancy.api_calls', payload: { stripe_customer_id: c } }), { code: 'meter_event_invalid_value', param: 'payload[value]', message: /missing the value key 'value'/ }],
    ['a non-numeric value', (c) => usage(c, 'ten'), { code: 'meter_event_invalid_value', param: 'payload[value]', message: /must be a number\. Received 'ten'/ }],
    ['a value with more than 15 digits', (c) => usage(c, '1234567890123456'), { code: 'meter_event_value_too_many_digits', param: 'payload[value]', message: /at most 15 digits/ }],
    ['a timestamp more than 35 days old', (c) => usage(c, '1', { timestamp: T0 - 35 * DAY - 1 }), { code: 'timestamp_too_far_in_past', param: 'timestamp', message: /more than 35 days in the past/ }],
    ['a timestamp more than 5 minutes ahead', (c) => usage(c, '1', { timestamp: T0 + 301 }), { code: 'timestamp_in_future', param: 'timestamp', message: /more than 5 minutes in the future/ }],
  ])('refuses %s with Stripe\'s meter event error code, and records nothing', async (_name, params, expected) => {
    const { key, stripe, customer } = await account();
    const e = await stripeError(() => stripe.billing.meterEvents.create(params(customer.id)));
    expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(e.statusCode).toBe(400);
    expect(e.raw).toMatchObject({ type: 'invalid_request_error', code: expected.code, param: expected.param });
    expect(e.message).toMatch(expected.message);
    expect(mock().meterEvents(key)).toEqual([]);
  });

  it('accepts the limits themselves: exactly 35 days old, exactly 5 minutes ahead, decimals, a deleted customer is refused', async () => {
    const { key, stripe, customer } = await account();
    await stripe.billing.meterEvents.create(usage(customer.id, '1', { timestamp: T0 - 35 * DAY }));
    await stripe.billing.meterEvents.create(usage(customer.id, '2.5', { timestamp: T0 + 300 }));
    expect(mock().meterEvents(key)).toHaveLength(2);
    await stripe.customers.del(customer.id);
    expect((await stripeError(() => stripe.billing.meterEvents.create(usage(customer.id, '1')))).code).toBe('meter_event_customer_not_found');
  });

  it('refuses events for a deactivated meter (archived_meter) and accepts them again after reactivation', async () => {
    const { stripe, meter, customer } = await account();
    await stripe.billing.meters.deactivate(meter.id);
    expect((await stripeError(() => stripe.billing.meterEvents.create(usage(customer.id, '1')))).code).toBe('archived_meter');
    await stripe.billing.meters.reactivate(meter.id);
    await stripe.billing.meterEvents.create(usage(customer.id, '1'));
  });

  it('uses the meter\'s own payload keys; a count meter reads no value', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    await stripe.billing.meters.create({
      display_name: 'Requests', event_name: 'requests', default_aggregation: { formula: 'count' },
      customer_mapping: { event_payload_key: 'customer', type: 'by_id' },
    });
    const customer = await stripe.customers.create({});
    await stripe.billing.meterEvents.create({ event_name: 'requests', payload: { customer: customer.id } });
    const e = await stripeError(() => stripe.billing.meterEvents.create({ event_name: 'requests', payload: { stripe_customer_id: customer.id } }));
    expect(e.raw).toMatchObject({ code: 'meter_event_no_customer_defined', param: 'payload[customer]' });
  });
});

describe('meter event summaries', () => {
  it('sums exactly per hour window (newest first, empty windows left out), per customer', async () => {
    const { stripe, meter, customer } = await account();
    const other = await stripe.customers.create({ name: 'Hooli' });
    const day = T0 - (T0 % DAY); // 2026-01-15 00:00 UTC
    const sent: [number, string][] = [[day + 0, '3'], [day + 59 * 60, '4'], [day + HOUR, '10'], [day + 5 * HOUR + 1, '7'], [day + 11 * HOUR + 3599, '1']];
    for (const [timestamp, value] of sent) await stripe.billing.meterEvents.create(usage(customer.id, value, { timestamp }));
    await stripe.billing.meterEvents.create(usage(other.id, '1000', { timestamp: day + 1 }));

    const hourly = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: day, end_time: day + 12 * HOUR, value_grouping_window: 'hour' });
    expect(hourly.data.map((s) => [s.start_time - day, s.end_time - day, s.aggregated_value])).toEqual([
      [11 * HOUR, 12 * HOUR, 1],
      [5 * HOUR, 6 * HOUR, 7],
      [HOUR, 2 * HOUR, 10],
      [0, HOUR, 7],
    ]);
    expect(hourly.data[0]).toMatchObject({ object: 'billing.meter_event_summary', meter: meter.id, livemode: false });
    expect(hourly.data[0].id).toMatch(/^mtrusg_test_/);

    // Pagination with stable ids.
    const page1 = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: day, end_time: day + 12 * HOUR, value_grouping_window: 'hour', limit: 3 });
    expect(page1.has_more).toBe(true);
    const page2 = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: day, end_time: day + 12 * HOUR, value_grouping_window: 'hour', limit: 3, starting_after: page1.data[2].id });
    expect([...page1.data, ...page2.data]).toEqual(hourly.data);
    const all: number[] = [];
    for await (const s of stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: day, end_time: day + 12 * HOUR, value_grouping_window: 'hour', limit: 1 })) all.push(s.aggregated_value);
    expect(all).toEqual([1, 7, 10, 7]);

    // No window: one summary over the range; end_time is exclusive.
    const whole = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: day, end_time: day + 11 * HOUR });
    expect(whole.data.map((s) => [s.start_time, s.end_time, s.aggregated_value])).toEqual([[day, day + 11 * HOUR, 24]]);
    const daily = await stripe.billing.meters.listEventSummaries(meter.id, { customer: other.id, start_time: day - DAY, end_time: day + DAY, value_grouping_window: 'day' });
    expect(daily.data.map((s) => [s.start_time, s.aggregated_value])).toEqual([[day, 1000]]);
  });

  it('aggregates count and last (the latest event by timestamp)', async () => {
    const counted = await account('count');
    const latest = await account('last');
    for (const { stripe, customer } of [counted, latest]) {
      for (const [ts, v] of [[T0 - 30, '5'], [T0 - 50, '9'], [T0 - 10, '2'], [T0 - 40, '8']] as const) {
        await stripe.billing.meterEvents.create(usage(customer.id, v, { timestamp: ts }));
      }
    }
    const range = { start_time: T0 - HOUR, end_time: T0 + HOUR };
    expect((await counted.stripe.billing.meters.listEventSummaries(counted.meter.id, { customer: counted.customer.id, ...range })).data[0].aggregated_value).toBe(4);
    expect((await latest.stripe.billing.meters.listEventSummaries(latest.meter.id, { customer: latest.customer.id, ...range })).data[0].aggregated_value).toBe(2);
  });

  it.each<[string, Partial<Stripe.Billing.MeterListEventSummariesParams>, string, RegExp]>([
    ['a start not on a minute', { start_time: T0 + 30, end_time: T0 + HOUR }, 'start_time', /minute boundaries/],
    ['an hour window with an end not on the hour', { start_time: T0, end_time: T0 + 90 * 60, value_grouping_window: 'hour' }, 'end_time', /hour boundaries for value_grouping_window=hour/],
    ['a day window starting at noon', { start_time: T0, end_time: T0 + 12 * HOUR, value_grouping_window: 'day' }, 'start_time', /UTC day/],
    ['an end before the start', { start_time: T0, end_time: T0 - HOUR }, 'end_time', /end_time must be after start_time/],
    ['an unknown window', { start_time: T0, end_time: T0 + HOUR, value_grouping_window: 'minute' }, 'value_grouping_window', /must be one of day, or hour/],
  ])('rejects %s', async (_name, range, param, message) => {
    const { stripe, meter, customer } = await account();
    const e = await stripeError(() => stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, ...range } as Stripe.Billing.MeterListEventSummariesParams));
    expect(e).toMatchObject({ statusCode: 400, param });
    expect(e.message).toMatch(message);
  });

  it('requires the customer and times, and a known customer', async () => {
    const { stripe, meter } = await account();
    expect((await stripeError(() => stripe.billing.meters.listEventSummaries(meter.id, { start_time: T0, end_time: T0 + HOUR } as any))).raw).toMatchObject({ code: 'parameter_missing', param: 'customer' });
    expect((await stripeError(() => stripe.billing.meters.listEventSummaries(meter.id, { customer: 'cus_missing', start_time: T0, end_time: T0 + HOUR }))).raw).toMatchObject({ code: 'resource_missing', param: 'customer' });
  });
});

describe('metered prices and subscription items', () => {
  it('creates a metered price on a meter; refuses one without meter, a meter on a licensed price, an unknown or inactive meter', async () => {
    const { stripe, meter } = await account();
    const price = await stripe.prices.create({ currency: 'usd', unit_amount: 2, product_data: { name: 'API calls' }, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } });
    expect(price.recurring).toMatchObject({ usage_type: 'metered', meter: meter.id, interval: 'month' });
    expect((await stripe.prices.list({ recurring: { meter: meter.id } as any })).data.map((p) => p.id)).toEqual([price.id]);

    const base = { currency: 'usd', unit_amount: 2, product_data: { name: 'x' } };
    expect((await stripeError(() => stripe.prices.create({ ...base, recurring: { interval: 'month', usage_type: 'metered' } }))).raw).toMatchObject({ param: 'recurring[meter]' });
    expect((await stripeError(() => stripe.prices.create({ ...base, recurring: { interval: 'month', meter: meter.id } }))).raw).toMatchObject({ param: 'recurring[meter]' });
    expect((await stripeError(() => stripe.prices.create({ ...base, recurring: { interval: 'month', usage_type: 'metered', meter: 'mtr_test_missing' } }))).raw).toMatchObject({ code: 'resource_missing', param: 'recurring[meter]' });
    await stripe.billing.meters.deactivate(meter.id);
    expect((await stripeError(() => stripe.prices.create({ ...base, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } }))).raw).toMatchObject({ param: 'recurring[meter]' });
  });

  it('subscribes to a metered price without quantity (billed in arrears: nothing on the first invoice) and refuses a quantity', async () => {
    const { stripe, meter } = await account();
    const plan = await stripe.prices.create({ currency: 'usd', unit_amount: 2900, product_data: { name: 'Starter' }, recurring: { interval: 'month' } });
    const calls = await stripe.prices.create({ currency: 'usd', unit_amount: 2, product_data: { name: 'API calls' }, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } });
    const customer = await stripe.customers.create({ payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });

    const e = await stripeError(() => stripe.subscriptions.create({ customer: customer.id, items: [{ price: plan.id }, { price: calls.id, quantity: 1 }] }));
    expect(e.raw).toMatchObject({ type: 'invalid_request_error', param: 'items[1][quantity]' });
    expect(e.message).toMatch(/Quantity should not be specified where usage_type is `metered`/);

    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: plan.id }, { price: calls.id }], expand: ['latest_invoice'] });
    expect(sub.status).toBe('active');
    const [planItem, meteredItem] = sub.items.data;
    expect(planItem.quantity).toBe(1);
    expect(meteredItem).not.toHaveProperty('quantity');
    expect(meteredItem.price.recurring).toMatchObject({ usage_type: 'metered', meter: meter.id });
    expect(meteredItem.plan).toMatchObject({ usage_type: 'metered', meter: meter.id });
    expect((sub.latest_invoice as Stripe.Invoice).amount_due).toBe(2900);

    // A plan change prorates the licensed item only.
    const pro = await stripe.prices.create({ currency: 'usd', unit_amount: 9900, product_data: { name: 'Pro' }, recurring: { interval: 'month' } });
    const preview = await stripe.invoices.createPreview({ customer: customer.id, subscription: sub.id, subscription_details: { items: [{ id: planItem.id, price: pro.id }], proration_date: T0 + 10 * DAY } });
    expect(preview.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => l.pricing?.price_details?.price)).toEqual([plan.id, pro.id]);
    expect((await stripeError(() => stripe.subscriptions.update(sub.id, { items: [{ id: meteredItem.id, quantity: 3 }] }))).raw).toMatchObject({ param: 'items[0][quantity]' });
  });

  it('takes a metered price as a Checkout line item without quantity', async () => {
    const { key, stripe, meter } = await account();
    const plan = await stripe.prices.create({ currency: 'usd', unit_amount: 2900, product_data: { name: 'Starter' }, recurring: { interval: 'month' } });
    const calls = await stripe.prices.create({ currency: 'usd', unit_amount: 2, product_data: { name: 'API calls' }, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } });
    const customer = await stripe.customers.create({});
    const session = await stripe.checkout.sessions.create({ mode: 'subscription', customer: customer.id, line_items: [{ price: plan.id, quantity: 1 }, { price: calls.id }], success_url: 'https://example.com/ok' });
    expect(session.amount_total).toBe(2900);
    const done = mock().completeCheckoutSession(key, session.id);
    const sub = await stripe.subscriptions.retrieve(done.subscription);
    expect(sub.items.data.map((i) => i.price.id)).toEqual([plan.id, calls.id]);
    expect((await stripeError(() => stripe.checkout.sessions.create({ mode: 'subscription', customer: customer.id, line_items: [{ price: calls.id, quantity: 2 }], success_url: 'https://example.com/ok' }))).raw).toMatchObject({ param: 'line_items[0][quantity]' });
  });
});
