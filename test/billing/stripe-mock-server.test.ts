import Stripe from 'stripe';
import { decodeForm } from '../../lib/testing/stripe-mock';
import { fixedClock, stripeError, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';

/**
 * The local Stripe server against Stripe's documented behaviour, through the official SDK
 * (stripe@23) and, for the wire format itself, raw HTTP. Every test uses its own API key, i.e.
 * its own empty account.
 */
const clock = fixedClock();
const mock = useStripeMock({ clock });
const DAY = 86_400;
beforeEach(() => clock.set(T0));

/** A product with a monthly price (and a lookup key) in a fresh account. */
async function catalog(stripe: Stripe, prices: Record<string, number> = { starter: 2900, pro: 9900 }) {
  const out: Record<string, Stripe.Price> = {};
  for (const [name, amount] of Object.entries(prices)) {
    out[name] = await stripe.prices.create({ currency: 'usd', unit_amount: amount, recurring: { interval: 'month' }, lookup_key: `test_${name}`, product_data: { name } });
  }
  return out;
}

async function customerWithCard(stripe: Stripe, card = 'pm_card_visa') {
  return stripe.customers.create({ payment_method: card, invoice_settings: { default_payment_method: card } });
}

async function raw(method: string, path: string, init: { key?: string | null; body?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? testKey()}`;
  if (init.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(`${mock().url}${path}`, { method, headers, body: init.body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

describe('wire format', () => {
  it.each([
    ['nested keys', 'items[0][price]=price_1&items[0][quantity]=2&metadata[tenant_id]=t1', { items: { '0': { price: 'price_1', quantity: '2' } }, metadata: { tenant_id: 't1' } }],
    ['[] appends', 'expand[]=customer&expand[]=latest_invoice', { expand: ['customer', 'latest_invoice'] }],
    ['percent-encoding and +', 'query=metadata%5B%27tenant_id%27%5D%3A%27a+b%27', { query: "metadata['tenant_id']:'a b'" }],
    ['empty value (unset)', 'metadata=', { metadata: '' }],
  ])('decodes %s', (_name, body, expected) => {
    expect(decodeForm(body)).toEqual(expected);
  });

  it('answers JSON with a request id and the Stripe-Version asked for', async () => {
    const key = testKey();
    const res = await fetch(`${mock().url}/v1/customers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-www-form-urlencoded', 'stripe-version': '2026-10-28.endive' },
      body: 'name=Initech&metadata[tenant_id]=2076941a-0207-46ac-9fc3-25d79442d9ff',
    });
    const json: any = await res.json();
    expect(res.status).toBe(200);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    expect(res.headers.get('stripe-version')).toBe('2026-10-28.endive');
    expect(json).toMatchObject({ object: 'customer', name: 'Initech', metadata: { tenant_id: '2076941a-0207-46ac-9fc3-25d79442d9ff' }, livemode: false });
    expect(json.id).toMatch(/^cus_/);
  });

  it.each([
    ['no API key', null, 401, /You did not provide an API key/],
    ['a malformed key', 'not-a-key', 401, /Invalid API Key provided/],
    ['a live key', 'sk_live_abcdef123456', 401, /test-mode keys only/],
    ['a publishable key', 'pk_test_abcdef123456', 401, /publishable API key/],
  ])('refuses %s', async (_name, key, status, message) => {
    const res = await raw('GET', '/v1/customers', { key: key as string | null });
    expect(res.status).toBe(status);
    expect(res.json.error.type).toBe('invalid_request_error');
    expect(res.json.error.message).toMatch(message);
  });

  it('masks the key it refuses', async () => {
    const res = await raw('GET', '/v1/customers', { key: 'sk_test_bad-key-1234' });
    expect(res.json.error.message).toBe('Invalid API Key provided: sk_test_********1234');
  });

  it('refuses API versions whose shapes it does not return', async () => {
    const res = await raw('GET', '/v1/customers', { headers: { 'stripe-version': '2024-06-20' } });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'mock_not_implemented' });
  });

  it('answers unknown URLs with 404 "Unrecognized request URL"', async () => {
    const res = await raw('GET', '/v1/charges_typo');
    expect(res.status).toBe(404);
    expect(res.json.error.message).toMatch(/^Unrecognized request URL \(GET: \/v1\/charges_typo\)/);
  });

  it('refuses JSON bodies (Stripe takes form encoding only)', async () => {
    const res = await raw('POST', '/v1/customers', { body: '{"name":"x"}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/Content-Type/);
  });

  it('authenticates the SDK with Bearer auth and rejects a wrong key as StripeAuthenticationError', async () => {
    const server = await import('../../lib/testing/stripe-mock').then((m) => m.StripeMockServer.start({ apiKeys: ['sk_test_allowed'] }));
    try {
      await expect(stripeFor(server, 'sk_test_allowed').customers.list()).resolves.toMatchObject({ object: 'list', data: [] });
      const e = await stripeError(() => stripeFor(server, 'sk_test_other').customers.list());
      expect(e).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect(e.statusCode).toBe(401);
    } finally {
      await server.stop();
    }
  });
});

describe('parameter checking (what Stripe rejects)', () => {
  it.each<[string, (s: Stripe) => Promise<unknown>, { status: number; code?: string; param?: string; message?: RegExp }]>([
    ['an unknown top-level parameter', (s) => s.customers.create({ nmae: 'typo' } as any), { status: 400, code: 'parameter_unknown', param: 'nmae', message: /^Received unknown parameter: nmae$/ }],
    ['an unknown nested parameter', (s) => s.prices.create({ currency: 'usd', unit_amount: 1, product_data: { name: 'x', colour: 'red' } } as any), { status: 400, code: 'parameter_unknown', param: 'product_data[colour]' }],
    ['a missing required parameter', (s) => s.prices.create({ unit_amount: 100, product_data: { name: 'x' } } as any), { status: 400, code: 'parameter_missing', param: 'currency', message: /^Missing required param: currency\.$/ }],
    ['a missing nested required parameter', (s) => s.prices.create({ currency: 'usd', unit_amount: 1, product_data: { name: 'x' }, recurring: { interval_count: 1 } } as any), { status: 400, code: 'parameter_missing', param: 'recurring[interval]' }],
    ['a value outside an enum', (s) => s.prices.create({ currency: 'usd', unit_amount: 1, product_data: { name: 'x' }, recurring: { interval: 'monthly' } } as any), { status: 400, param: 'recurring[interval]', message: /must be one of day, week, month, or year/ }],
    ['a non-integer amount', (s) => s.prices.create({ currency: 'usd', unit_amount: '12.5' as any, product_data: { name: 'x' } }), { status: 400, code: 'parameter_invalid_integer', param: 'unit_amount' }],
    ['an empty string where nothing can be unset', (s) => s.customers.create({ name: 'x', email: '' }), { status: 400, code: 'parameter_invalid_empty', param: 'email' }],
    ['an invalid email', (s) => s.customers.create({ email: 'not-an-email' }), { status: 400, code: 'email_invalid', param: 'email' }],
    ['an unknown currency', (s) => s.prices.create({ currency: 'usx', unit_amount: 1, product_data: { name: 'x' } }), { status: 400, param: 'currency', message: /Invalid currency/ }],
    ['an unknown id in the path (404)', (s) => s.customers.retrieve('cus_missing'), { status: 404, code: 'resource_missing', param: 'id', message: /^No such customer: 'cus_missing'$/ }],
    ['an unknown id in the body (400)', (s) => s.subscriptions.create({ customer: 'cus_missing', items: [{ price: 'price_x' }] }), { status: 400, code: 'resource_missing', param: 'customer' }],
    ['more than 10 lookup keys', (s) => s.prices.list({ lookup_keys: Array.from({ length: 11 }, (_, i) => `k${i}`) }), { status: 400, param: 'lookup_keys' }],
    ['a list limit above 100', (s) => s.customers.list({ limit: 101 }), { status: 400, param: 'limit' }],
    ['an expand of a non-expandable field', (s) => s.customers.create({ name: 'x', expand: ['nothing'] }), { status: 400, param: 'expand' }],
    ['a real parameter the mock does not model', (s) => s.customers.create({ tax_exempt: 'exempt' }), { status: 400, code: 'mock_not_implemented', param: 'tax_exempt' }],
  ])('rejects %s', async (_name, call, expected) => {
    const e = await stripeError(() => call(stripeFor(mock(), testKey())));
    expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(e.statusCode).toBe(expected.status);
    expect(e.type).toBe('StripeInvalidRequestError');
    expect(e.raw).toMatchObject({ type: 'invalid_request_error' });
    if (expected.code) expect(e.code).toBe(expected.code);
    if (expected.param) expect(e.param).toBe(expected.param);
    if (expected.message) expect(e.message).toMatch(expected.message);
  });
});

describe('products and prices', () => {
  it('creates prices (with an inline product) and finds them by lookup key', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { starter, pro } = await catalog(stripe);
    expect(starter).toMatchObject({ object: 'price', currency: 'usd', unit_amount: 2900, type: 'recurring', lookup_key: 'test_starter', recurring: { interval: 'month', interval_count: 1, usage_type: 'licensed' } });
    expect(starter.id).toMatch(/^price_/);
    expect(String(starter.product)).toMatch(/^prod_/);
    const product = await stripe.products.retrieve(String(pro.product));
    expect(product).toMatchObject({ object: 'product', name: 'pro', active: true });

    const found = await stripe.prices.list({ lookup_keys: ['test_pro', 'test_enterprise'], active: true, expand: ['data.product'] });
    expect(found.data.map((p) => p.id)).toEqual([pro.id]);
    expect((found.data[0].product as Stripe.Product).name).toBe('pro');
  });

  it('refuses a lookup key another price holds, unless transfer_lookup_key', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { starter } = await catalog(stripe, { starter: 2900 });
    const e = await stripeError(() => stripe.prices.create({ currency: 'usd', unit_amount: 3900, recurring: { interval: 'month' }, lookup_key: 'test_starter', product: String(starter.product) }));
    expect(e.param).toBe('lookup_key');
    expect(e.message).toContain(starter.id);
    const moved = await stripe.prices.create({ currency: 'usd', unit_amount: 3900, recurring: { interval: 'month' }, lookup_key: 'test_starter', transfer_lookup_key: true, product: String(starter.product) });
    expect((await stripe.prices.list({ lookup_keys: ['test_starter'] })).data.map((p) => p.id)).toEqual([moved.id]);
    expect((await stripe.prices.retrieve(starter.id)).lookup_key).toBeNull();
  });

  it.each<[string, Stripe.PriceCreateParams, string | undefined]>([
    ['product and product_data together', { currency: 'usd', unit_amount: 1, product: 'prod_x', product_data: { name: 'x' } }, 'parameters_exclusive'],
    ['neither product nor product_data', { currency: 'usd', unit_amount: 1 }, 'parameter_missing'],
    ['an interval longer than a year', { currency: 'usd', unit_amount: 1, product_data: { name: 'x' }, recurring: { interval: 'month', interval_count: 13 } }, undefined],
    ['a negative amount', { currency: 'usd', unit_amount: -1, product_data: { name: 'x' } }, undefined],
  ])('rejects a price with %s', async (_name, params, code) => {
    const e = await stripeError(() => stripeFor(mock(), testKey()).prices.create(params));
    expect(e.statusCode).toBe(400);
    if (code) expect(e.code).toBe(code);
  });

  it('paginates lists newest first with starting_after', async () => {
    const stripe = stripeFor(mock(), testKey());
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await stripe.products.create({ name: `p${i}` })).id);
    const first = await stripe.products.list({ limit: 2 });
    expect(first.data.map((p) => p.id)).toEqual([ids[4], ids[3]]);
    expect(first.has_more).toBe(true);
    const rest = await stripe.products.list({ limit: 10, starting_after: ids[3] });
    expect(rest.data.map((p) => p.id)).toEqual([ids[2], ids[1], ids[0]]);
    expect(rest.has_more).toBe(false);
  });
});

describe('customers', () => {
  it('merges metadata on update and unsets keys given an empty value', async () => {
    const stripe = stripeFor(mock(), testKey());
    const c = await stripe.customers.create({ name: 'Initech', metadata: { tenant_id: 't-1', plan: 'pro' } });
    const updated = await stripe.customers.update(c.id, { email: 'billing@initech.example', metadata: { plan: '', region: 'us-east-1' } });
    expect(updated.metadata).toEqual({ tenant_id: 't-1', region: 'us-east-1' });
    expect(updated.email).toBe('billing@initech.example');
    expect((await stripe.customers.retrieve(c.id)) as Stripe.Customer).toMatchObject({ email: 'billing@initech.example' });
  });

  it('searches by metadata and email, honouring the search lag', async () => {
    const lagged = await import('../../lib/testing/stripe-mock').then((m) => m.StripeMockServer.start({ clock, searchLagSeconds: 60 }));
    try {
      const stripe = stripeFor(lagged, testKey());
      const c = await stripe.customers.create({ email: 'ops@globex.example', metadata: { tenant_id: 'abc-1' } });
      await stripe.customers.create({ metadata: { tenant_id: 'abc-2' } });
      const query = "metadata['tenant_id']:'abc-1'";
      expect((await stripe.customers.search({ query })).data).toEqual([]);
      clock.advance(60);
      expect((await stripe.customers.search({ query })).data.map((x) => x.id)).toEqual([c.id]);
      expect((await stripe.customers.search({ query: "email:'OPS@globex.example'" })).data.map((x) => x.id)).toEqual([c.id]);
      expect((await stripe.customers.search({ query: "-metadata['tenant_id']:'abc-1'" })).data).toHaveLength(1);
      const e = await stripeError(() => stripe.customers.search({ query: "metadata['tenant_id']:'a' AND email:'b' OR name:'c'" }));
      expect(e.param).toBe('query');
      // Listing is consistent at once (no lag).
      expect((await stripe.customers.list({ email: 'ops@globex.example' })).data.map((x) => x.id)).toEqual([c.id]);
    } finally {
      await lagged.stop();
    }
  });

  it('attaches test cards and only sets an attached payment method as default', async () => {
    const stripe = stripeFor(mock(), testKey());
    const c = await stripe.customers.create({ name: 'x' });
    const other = await customerWithCard(stripe);
    const e = await stripeError(() => stripe.customers.update(c.id, { invoice_settings: { default_payment_method: String(other.invoice_settings.default_payment_method) } }));
    expect(e.param).toBe('invoice_settings[default_payment_method]');
    const pm = await stripe.paymentMethods.attach('pm_card_visa', { customer: c.id });
    expect(pm).toMatchObject({ object: 'payment_method', type: 'card', customer: c.id, card: { brand: 'visa', last4: '4242' } });
    const updated = await stripe.customers.update(c.id, { invoice_settings: { default_payment_method: pm.id } });
    expect(updated.invoice_settings.default_payment_method).toBe(pm.id);
  });

  it('returns deleted customers as { deleted: true } and cancels their subscriptions', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { starter } = await catalog(stripe, { starter: 2900 });
    const c = await customerWithCard(stripe);
    const sub = await stripe.subscriptions.create({ customer: c.id, items: [{ price: starter.id }] });
    await stripe.customers.del(c.id);
    expect(await stripe.customers.retrieve(c.id)).toEqual({ id: c.id, object: 'customer', deleted: true });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('canceled');
    expect((await stripeError(() => stripe.customers.update(c.id, { name: 'y' }))).statusCode).toBe(404);
  });
});

describe('subscriptions', () => {
  type Setup = { card?: string; price: 'starter' | 'free'; params: Partial<Stripe.SubscriptionCreateParams> };
  it.each<[string, Setup, { status?: string; error?: { http: number; type: string; code?: string; message?: RegExp } }]>([
    ['a paid price, card on file', { card: 'pm_card_visa', price: 'starter', params: { payment_behavior: 'error_if_incomplete' } }, { status: 'active' }],
    ['a paid price, no payment method, error_if_incomplete', { price: 'starter', params: { payment_behavior: 'error_if_incomplete' } }, { error: { http: 400, type: 'StripeInvalidRequestError', message: /no attached payment source or default payment method/ } }],
    ['a paid price, declined card, error_if_incomplete', { card: 'pm_card_chargeDeclined', price: 'starter', params: { payment_behavior: 'error_if_incomplete' } }, { error: { http: 402, type: 'StripeCardError', code: 'card_declined' } }],
    ['a paid price, no payment method, default_incomplete', { price: 'starter', params: { payment_behavior: 'default_incomplete' } }, { status: 'incomplete' }],
    ['a paid price, no payment method, default payment_behavior (allow_incomplete)', { price: 'starter', params: {} }, { status: 'incomplete' }],
    ['a trial, no payment method', { price: 'starter', params: { trial_period_days: 14, payment_behavior: 'error_if_incomplete' } }, { status: 'trialing' }],
    ['a $0 price, no payment method', { price: 'free', params: { payment_behavior: 'error_if_incomplete' } }, { status: 'active' }],
    ['pending_if_incomplete on create', { price: 'starter', params: { payment_behavior: 'pending_if_incomplete' } }, { error: { http: 400, type: 'StripeInvalidRequestError' } }],
    ['trial_end and trial_period_days together', { price: 'starter', params: { trial_period_days: 3, trial_end: T0 + 10 * DAY } }, { error: { http: 400, type: 'StripeInvalidRequestError', code: 'parameters_exclusive' } }],
    ['a trial_end in the past', { price: 'starter', params: { trial_end: T0 - 10 } }, { error: { http: 400, type: 'StripeInvalidRequestError' } }],
    ['an unknown payment_behavior', { price: 'starter', params: { payment_behavior: 'charge_later' as any } }, { error: { http: 400, type: 'StripeInvalidRequestError', message: /must be one of/ } }],
  ])('creates with %s', async (_name, setup, expected) => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    const prices = await catalog(stripe, { starter: 2900, free: 0 });
    const customer = setup.card ? await customerWithCard(stripe, setup.card) : await stripe.customers.create({ name: 'x' });
    const call = () => stripe.subscriptions.create({ customer: customer.id, items: [{ price: prices[setup.price].id }], metadata: { tenant_id: 't' }, ...setup.params });
    if (expected.error) {
      const e = await stripeError(call);
      expect(e.statusCode).toBe(expected.error.http);
      expect(e.type).toBe(expected.error.type);
      if (expected.error.code) expect(e.code).toBe(expected.error.code);
      if (expected.error.message) expect(e.message).toMatch(expected.error.message);
      expect(mock().objects(key, 'subscription')).toEqual([]);
      return;
    }
    const sub = await call();
    expect(sub.id).toMatch(/^sub_/);
    expect(sub.status).toBe(expected.status);
    expect(sub.metadata).toEqual({ tenant_id: 't' });
    expect(sub.items.data[0]).toMatchObject({ object: 'subscription_item', price: { id: prices[setup.price].id }, quantity: 1, current_period_start: T0 });
    if (expected.status === 'trialing') {
      expect(sub.trial_end).toBe(T0 + 14 * DAY);
      expect(sub.items.data[0].current_period_end).toBe(T0 + 14 * DAY);
    } else {
      expect(sub.items.data[0].current_period_end).toBe(Date.UTC(2026, 1, 15, 12) / 1000);
    }
    const invoice = await stripe.invoices.retrieve(String(sub.latest_invoice));
    expect(invoice.id).toMatch(/^in_/);
    expect(invoice.status).toBe(expected.status === 'incomplete' ? 'open' : 'paid');
  });

  it.each<[string, (prices: Record<string, Stripe.Price>) => Stripe.SubscriptionCreateParams['items'], { code?: string; param: string }]>([
    ['a misspelt item field', (pr) => [{ prise: pr.starter.id } as any], { code: 'parameter_unknown', param: 'items[0][prise]' }],
    ['an item without a price', () => [{ quantity: 1 }], { code: 'parameter_missing', param: 'items[0][price]' }],
    ['an unknown price', () => [{ price: 'price_nope' }], { code: 'resource_missing', param: 'items[0][price]' }],
    ['a one-time price', (pr) => [{ price: pr.setup.id }], { param: 'items[0][price]' }],
    ['the same price twice', (pr) => [{ price: pr.starter.id }, { price: pr.starter.id }], { param: 'items' }],
  ])('rejects items with %s', async (_name, items, expected) => {
    const stripe = stripeFor(mock(), testKey());
    const prices = await catalog(stripe, { starter: 2900 });
    prices.setup = await stripe.prices.create({ currency: 'usd', unit_amount: 500, product_data: { name: 'setup fee' } });
    const customer = await customerWithCard(stripe);
    const e = await stripeError(() => stripe.subscriptions.create({ customer: customer.id, items: items(prices) }));
    expect(e.statusCode).toBe(400);
    if (expected.code) expect(e.code).toBe(expected.code);
    expect(e.param).toBe(expected.param);
  });

  it('updates an item in place and creates prorations equal to the preview', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { starter, pro } = await catalog(stripe);
    const customer = await customerWithCard(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: starter.id }] });
    const item = sub.items.data[0];
    const prorationDate = T0 + 10 * DAY;
    const preview = await stripe.invoices.createPreview({
      customer: customer.id,
      subscription: sub.id,
      subscription_details: { items: [{ id: item.id, price: pro.id }], proration_behavior: 'create_prorations', proration_date: prorationDate },
    });
    expect(preview.id).toMatch(/^upcoming_in_/);
    const start = item.current_period_start;
    const end = item.current_period_end;
    const credit = -Math.round((2900 * (end - prorationDate)) / (end - start));
    const charge = Math.round((9900 * (end - prorationDate)) / (end - start));
    const prorations = preview.lines.data.filter((l) => l.parent?.subscription_item_details?.proration);
    expect(prorations.map((l) => l.amount)).toEqual([credit, charge]);
    expect(prorations[0].description).toMatch(/^Unused time on starter after 25 Jan 2026$/);
    expect(prorations[1].description).toMatch(/^Remaining time on pro after 25 Jan 2026$/);
    expect(prorations.every((l) => l.period.start === prorationDate && l.period.end === end)).toBe(true);
    const renewal = preview.lines.data.filter((l) => !l.parent?.subscription_item_details?.proration);
    expect(renewal).toHaveLength(1);
    expect(renewal[0]).toMatchObject({ amount: 9900, period: { start: end } });
    expect(renewal[0].pricing?.price_details?.price).toBe(pro.id);
    expect(preview.total).toBe(credit + charge + 9900);
    expect(preview.parent?.subscription_details?.subscription_proration_date).toBe(prorationDate);
    // The preview changed nothing.
    expect((await stripe.subscriptions.retrieve(sub.id)).items.data[0].price.id).toBe(starter.id);

    const updated = await stripe.subscriptions.update(sub.id, { items: [{ id: item.id, price: pro.id }], proration_behavior: 'create_prorations', proration_date: prorationDate });
    expect(updated.id).toBe(sub.id);
    expect(updated.items.data.map((i) => [i.id, i.price.id])).toEqual([[item.id, pro.id]]);
    // The next invoice now holds the same prorations as pending items.
    const next = await stripe.invoices.createPreview({ customer: customer.id, subscription: sub.id });
    expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => l.amount)).toEqual([credit, charge]);
    expect(next.total).toBe(preview.total);
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toHaveLength(1);
  });

  it('creates no prorations with proration_behavior=none, nor while trialing', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { starter, pro } = await catalog(stripe);
    const customer = await customerWithCard(stripe);
    for (const params of [{ proration_behavior: 'none' as const }, {}]) {
      const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: starter.id }], ...('proration_behavior' in params ? {} : { trial_period_days: 7 }) });
      await stripe.subscriptions.update(sub.id, { items: [{ id: sub.items.data[0].id, price: pro.id }], ...params });
      const next = await stripe.invoices.createPreview({ customer: customer.id, subscription: sub.id });
      expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration)).toEqual([]);
    }
  });

  it.each<[string, (ctx: { sub: Stripe.Subscription; other: Stripe.Subscription; pro: Stripe.Price }) => Stripe.SubscriptionUpdateParams, { code?: string; param?: string }]>([
    ['an unknown proration_behavior', ({ sub, pro }) => ({ items: [{ id: sub.items.data[0].id, price: pro.id }], proration_behavior: 'prorate' as any }), { param: 'proration_behavior' }],
    ['a proration_date outside the period', ({ sub, pro }) => ({ items: [{ id: sub.items.data[0].id, price: pro.id }], proration_date: T0 - DAY }), { param: 'proration_date' }],
    ["another subscription's item", ({ other, pro }) => ({ items: [{ id: other.items.data[0].id, price: pro.id }] }), { code: 'resource_missing', param: 'items[0][id]' }],
    ['a misspelt item field', ({ sub, pro }) => ({ items: [{ id: sub.items.data[0].id, price_id: pro.id } as any] }), { code: 'parameter_unknown', param: 'items[0][price_id]' }],
    ['deleting every item', ({ sub }) => ({ items: [{ id: sub.items.data[0].id, deleted: true }] }), { param: 'items' }],
  ])('rejects an update with %s', async (_name, params, expected) => {
    const stripe = stripeFor(mock(), testKey());
    const { starter, pro } = await catalog(stripe);
    const customer = await customerWithCard(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: starter.id }] });
    const other = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: pro.id }] });
    const e = await stripeError(() => stripe.subscriptions.update(sub.id, params({ sub, other, pro })));
    expect(e.statusCode).toBe(400);
    if (expected.code) expect(e.code).toBe(expected.code);
    if (expected.param) expect(e.param).toBe(expected.param);
    expect((await stripe.subscriptions.retrieve(sub.id)).items.data[0].price.id).toBe(starter.id);
  });

  it('cancels, lists canceled ones only when asked, and refuses to change a canceled subscription', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { starter, pro } = await catalog(stripe);
    const customer = await customerWithCard(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: starter.id }] });
    const atEnd = await stripe.subscriptions.update(sub.id, { cancel_at_period_end: true });
    expect(atEnd).toMatchObject({ cancel_at_period_end: true, cancel_at: sub.items.data[0].current_period_end, status: 'active' });
    const canceled = await stripe.subscriptions.cancel(sub.id);
    expect(canceled).toMatchObject({ status: 'canceled', canceled_at: T0, ended_at: T0 });
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toEqual([]);
    expect((await stripe.subscriptions.list({ customer: customer.id, status: 'all' })).data.map((s) => s.id)).toEqual([sub.id]);
    const e = await stripeError(() => stripe.subscriptions.update(sub.id, { items: [{ id: sub.items.data[0].id, price: pro.id }] }));
    expect(e.message).toMatch(/canceled subscription can only update its cancellation_details and metadata/);
    await expect(stripe.subscriptions.update(sub.id, { metadata: { note: 'kept' } })).resolves.toMatchObject({ metadata: { note: 'kept' } });
  });
});

describe('invoices.createPreview', () => {
  it.each<[string, (ctx: { sub: Stripe.Subscription; pro: Stripe.Price; customer: string }) => Stripe.InvoiceCreatePreviewParams, { code?: string; param?: string }]>([
    ['neither customer nor subscription', () => ({}), { code: 'parameter_missing', param: 'customer' }],
    ['a misspelt subscription_details field', ({ sub, pro, customer }) => ({ customer, subscription: sub.id, subscription_details: { items: [{ id: sub.items.data[0].id, prise: pro.id } as any] } }), { code: 'parameter_unknown', param: 'subscription_details[items][0][prise]' }],
    ['the old top-level subscription_items parameter', ({ sub, pro, customer }) => ({ customer, subscription: sub.id, subscription_items: [{ id: sub.items.data[0].id, price: pro.id }] } as any), { code: 'parameter_unknown', param: 'subscription_items' }],
    ['the old top-level subscription_proration_behavior parameter', ({ sub, customer }) => ({ customer, subscription: sub.id, subscription_proration_behavior: 'create_prorations' } as any), { code: 'parameter_unknown', param: 'subscription_proration_behavior' }],
    ['an unknown subscription', ({ customer }) => ({ customer, subscription: 'sub_nope' }), { code: 'resource_missing', param: 'subscription' }],
    ["another customer's subscription", ({ sub }) => ({ customer: 'cus_other', subscription: sub.id }), { code: 'resource_missing', param: 'customer' }],
  ])('rejects %s', async (_name, params, expected) => {
    const stripe = stripeFor(mock(), testKey());
    const { starter, pro } = await catalog(stripe);
    const customer = await customerWithCard(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: starter.id }] });
    const e = await stripeError(() => stripe.invoices.createPreview(params({ sub, pro, customer: customer.id })));
    expect(e.statusCode).toBe(400);
    if (expected.code) expect(e.code).toBe(expected.code);
    if (expected.param) expect(e.param).toBe(expected.param);
  });

  it('previews the first invoice of a new subscription', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { pro } = await catalog(stripe);
    const customer = await stripe.customers.create({ name: 'x' });
    const preview = await stripe.invoices.createPreview({ customer: customer.id, subscription_details: { items: [{ price: pro.id, quantity: 2 }] } });
    expect(preview).toMatchObject({ object: 'invoice', status: 'draft', customer: customer.id, total: 19800, amount_due: 19800 });
    expect(preview.lines.data[0]).toMatchObject({ amount: 19800, quantity: 2, period: { start: T0, end: Date.UTC(2026, 1, 15, 12) / 1000 } });
  });
});

describe('checkout sessions', () => {
  it('creates a subscription-mode session whose completion creates the subscription', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    const { pro } = await catalog(stripe);
    const customer = await stripe.customers.create({ name: 'x' });
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      line_items: [{ price: pro.id, quantity: 1 }],
      success_url: 'https://app.example/billing/done?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.example/billing',
      client_reference_id: 't-1',
      metadata: { tenant_id: 't-1' },
      subscription_data: { metadata: { tenant_id: 't-1', plan: 'pro' }, trial_period_days: 14 },
    });
    expect(session.id).toMatch(/^cs_test_/);
    expect(session).toMatchObject({ object: 'checkout.session', mode: 'subscription', status: 'open', payment_status: 'unpaid', customer: customer.id, subscription: null, amount_total: 0 });
    expect(session.url).toBe(`${mock().url}/c/pay/${session.id}`);
    expect((await fetch(session.url!)).status).toBe(200);
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toEqual([]);

    const completed = mock().completeCheckoutSession(key, session.id);
    expect(completed).toMatchObject({ status: 'complete', payment_status: 'no_payment_required', url: null });
    const sub = await stripe.subscriptions.retrieve(completed.subscription);
    expect(sub).toMatchObject({ status: 'trialing', metadata: { tenant_id: 't-1', plan: 'pro' }, trial_end: T0 + 14 * DAY });
    expect(sub.default_payment_method).toMatch(/^pm_/);
    expect((await stripe.checkout.sessions.list({ customer: customer.id, status: 'complete' })).data.map((s) => s.id)).toEqual([session.id]);
  });

  it('expires open sessions (and after 24 hours by itself)', async () => {
    const stripe = stripeFor(mock(), testKey());
    const { pro } = await catalog(stripe);
    const customer = await stripe.customers.create({ name: 'x' });
    const params: Stripe.Checkout.SessionCreateParams = { mode: 'subscription', customer: customer.id, line_items: [{ price: pro.id, quantity: 1 }], success_url: 'https://app.example/ok' };
    const a = await stripe.checkout.sessions.create(params);
    await expect(stripe.checkout.sessions.expire(a.id)).resolves.toMatchObject({ status: 'expired', url: null });
    expect((await stripeError(() => stripe.checkout.sessions.expire(a.id))).statusCode).toBe(400);
    const b = await stripe.checkout.sessions.create(params);
    clock.advance(DAY);
    expect((await stripe.checkout.sessions.retrieve(b.id)).status).toBe('expired');
  });

  it.each<[string, (pr: { pro: Stripe.Price; once: Stripe.Price }, customer: string) => Stripe.Checkout.SessionCreateParams, { code?: string; param?: string }]>([
    ['no mode', (pr, c) => ({ customer: c, line_items: [{ price: pr.pro.id, quantity: 1 }], success_url: 'https://a.example' }), { code: 'parameter_missing', param: 'mode' }],
    ['an invalid success_url', (pr, c) => ({ mode: 'subscription', customer: c, line_items: [{ price: pr.pro.id, quantity: 1 }], success_url: 'not a url' }), { code: 'url_invalid', param: 'success_url' }],
    ['a line item without quantity', (pr, c) => ({ mode: 'subscription', customer: c, line_items: [{ price: pr.pro.id }], success_url: 'https://a.example' }), { code: 'parameter_missing', param: 'line_items[0][quantity]' }],
    ['only one-time prices', (pr, c) => ({ mode: 'subscription', customer: c, line_items: [{ price: pr.once.id, quantity: 1 }], success_url: 'https://a.example' }), { param: 'line_items' }],
    ['customer and customer_email', (pr, c) => ({ mode: 'subscription', customer: c, customer_email: 'a@b.example', line_items: [{ price: pr.pro.id, quantity: 1 }], success_url: 'https://a.example' }), { code: 'parameters_exclusive' }],
    ['a zero-day trial', (pr, c) => ({ mode: 'subscription', customer: c, line_items: [{ price: pr.pro.id, quantity: 1 }], success_url: 'https://a.example', subscription_data: { trial_period_days: 0 } }), { param: 'subscription_data[trial_period_days]' }],
    ['trial days at the top level', (pr, c) => ({ mode: 'subscription', customer: c, line_items: [{ price: pr.pro.id, quantity: 1 }], success_url: 'https://a.example', trial_period_days: 7 } as any), { code: 'parameter_unknown', param: 'trial_period_days' }],
  ])('rejects a session with %s', async (_name, params, expected) => {
    const stripe = stripeFor(mock(), testKey());
    const { pro } = await catalog(stripe, { pro: 9900 });
    const once = await stripe.prices.create({ currency: 'usd', unit_amount: 100, product_data: { name: 'once' } });
    const customer = await stripe.customers.create({ name: 'x' });
    const e = await stripeError(() => stripe.checkout.sessions.create(params({ pro, once }, customer.id)));
    expect(e.statusCode).toBe(400);
    if (expected.code) expect(e.code).toBe(expected.code);
    if (expected.param) expect(e.param).toBe(expected.param);
  });
});

describe('idempotency keys', () => {
  it('replays the first response for the same key and parameters', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    const a = await stripe.customers.create({ name: 'Initech', metadata: { tenant_id: 't-1' } }, { idempotencyKey: 'tenancy:t-1:customer:create' });
    const b = await stripe.customers.create({ metadata: { tenant_id: 't-1' }, name: 'Initech' }, { idempotencyKey: 'tenancy:t-1:customer:create' });
    expect(b.id).toBe(a.id);
    expect(b.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(a.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(mock().objects(key, 'customer')).toHaveLength(1);
  });

  it('refuses the same key with other parameters or on another endpoint (400 idempotency_error)', async () => {
    const stripe = stripeFor(mock(), testKey());
    await stripe.customers.create({ name: 'Initech' }, { idempotencyKey: 'k1' });
    const changed = await stripeError(() => stripe.customers.create({ name: 'Initrode' }, { idempotencyKey: 'k1' }));
    expect(changed).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(changed.statusCode).toBe(400);
    expect(changed.message).toMatch(/^Keys for idempotent requests can only be used with the same parameters they were first used with/);
    const elsewhere = await stripeError(() => stripe.products.create({ name: 'Initech' }, { idempotencyKey: 'k1' }));
    expect(elsewhere).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(elsewhere.message).toMatch(/same endpoint/);
  });

  it('scopes keys to the API key', async () => {
    const [k1, k2] = [testKey(), testKey()];
    const a = await stripeFor(mock(), k1).customers.create({ name: 'x' }, { idempotencyKey: 'shared' });
    const b = await stripeFor(mock(), k2).customers.create({ name: 'y' }, { idempotencyKey: 'shared' });
    expect(b.id).not.toBe(a.id);
    expect(b.name).toBe('y');
  });

  it('saves nothing for a request that failed validation, but replays errors raised while executing', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    await expect(stripeError(() => stripe.customers.create({ nmae: 'x' } as any, { idempotencyKey: 'k2' }))).resolves.toMatchObject({ code: 'parameter_unknown' });
    await expect(stripe.customers.create({ name: 'x' }, { idempotencyKey: 'k2' })).resolves.toMatchObject({ name: 'x' });

    const { starter } = await catalog(stripe, { starter: 2900 });
    const customer = await customerWithCard(stripe, 'pm_card_chargeDeclined');
    const params: Stripe.SubscriptionCreateParams = { customer: customer.id, items: [{ price: starter.id }], payment_behavior: 'error_if_incomplete' };
    const first = await stripeError(() => stripe.subscriptions.create(params, { idempotencyKey: 'k3' }));
    const again = await stripeError(() => stripe.subscriptions.create(params, { idempotencyKey: 'k3' }));
    expect([first.statusCode, again.statusCode]).toEqual([402, 402]);
    expect(again.headers?.['idempotent-replayed']).toBe('true');
  });

  it('answers 409 idempotency_key_in_use while the first request is still running', async () => {
    let release!: () => void;
    let reached!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const arrived = new Promise<void>((r) => (reached = r));
    const server = await import('../../lib/testing/stripe-mock').then((m) =>
      m.StripeMockServer.start({
        beforeExecute: (req) => {
          if (req.idempotencyKey !== 'slow') return undefined;
          reached();
          return held;
        },
      }),
    );
    try {
      const stripe = stripeFor(server, testKey());
      const first = stripe.customers.create({ name: 'x' }, { idempotencyKey: 'slow' });
      await arrived;
      const e = await stripeError(() => stripe.customers.create({ name: 'x' }, { idempotencyKey: 'slow' }));
      expect(e.statusCode).toBe(409);
      expect(e.code).toBe('idempotency_key_in_use');
      release();
      const created = await first;
      await expect(stripe.customers.create({ name: 'x' }, { idempotencyKey: 'slow' })).resolves.toMatchObject({ id: created.id });
    } finally {
      release();
      await server.stop();
    }
  });

  it('ignores keys on GET and forgets them after 24 hours', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    const a = await stripe.customers.create({ name: 'x' }, { idempotencyKey: 'k4' });
    await expect(stripe.customers.retrieve(a.id, {}, { idempotencyKey: 'k4' })).resolves.toMatchObject({ id: a.id });
    clock.advance(DAY);
    const b = await stripe.customers.create({ name: 'x' }, { idempotencyKey: 'k4' });
    expect(b.id).not.toBe(a.id);
  });

  it('keys every SDK POST by default, so SDK retries never create twice', async () => {
    const key = testKey();
    await stripeFor(mock(), key).customers.create({ name: 'x' });
    const posted = mock().requests.filter((r) => r.method === 'POST' && r.path === '/v1/customers').at(-1)!;
    expect(posted.idempotencyKey).toMatch(/^stripe-node-retry-/);
  });
});
