/**
 * lib/billing against the local Stripe server (official SDK) and a real control plane
 * (PostgreSQL 15, migrations/control-plane/0001): customers and subscriptions created once
 * (reruns, concurrent runs, a crash between create and record), metadata, ids recorded, payment
 * method required for paid plans (Checkout), trials, plan changes with prorations, free plans.
 */
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { billingKeys, BillingError, NO_USAGE_PRICES, StripeBilling, type BillingRecords, type PlanChangePreview, type StripeBillingOptions } from '../../lib/billing';
import type { ControlPlane } from '../../lib/control-plane/control-plane';
import type { Plan } from '../../lib/registry/tenant-schema';
import { maskKey, StripeMockServer } from '../../lib/testing/stripe-mock';
import { usePostgres } from '../support/postgres';
import { fixedClock, stripeError, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';
import { controlPlaneOn, PRICES, registerTenant, withCatalog } from './helpers';

const DAY = 86_400;
const CHECKOUT = { successUrl: 'https://app.example/billing/done', cancelUrl: 'https://app.example/billing' };
const pg = usePostgres();
const clock = fixedClock();
const mock = useStripeMock({ clock });
let pool: Pool;
let controlPlane: ControlPlane;

beforeAll(async () => {
  ({ pool, controlPlane } = await controlPlaneOn(pg(), 'control_plane'));
});
afterAll(async () => {
  await pool?.end();
});
beforeEach(() => clock.set(T0));

/** A fresh Stripe account with the catalog, and billing on it. */
async function account(options: Partial<StripeBillingOptions> = {}, server: StripeMockServer = mock()) {
  const key = testKey();
  const stripe = stripeFor(server, key, { maxNetworkRetries: 2 });
  const prices = await withCatalog(stripe);
  const billing = new StripeBilling({ stripe, records: controlPlane, prices: PRICES, checkout: CHECKOUT, now: () => clock.now(), ...options });
  const objects = (type: string) => server.objects(key, type);
  const posts = (path: string | RegExp) => server.requests.filter((r) => r.method === 'POST' && r.apiKey === maskKey(key) && (typeof path === 'string' ? r.path === path : path.test(r.path)));
  return { key, stripe, prices, billing, objects, posts };
}

/** Gives the tenant's customer a default card, as a customer would in the Billing Portal. */
async function addCard(stripe: Stripe, customerId: string, card = 'pm_card_visa') {
  const pm = await stripe.paymentMethods.attach(card, { customer: customerId });
  await stripe.customers.update(customerId, { invoice_settings: { default_payment_method: pm.id } });
}

describe('ensureCustomer', () => {
  it('creates one customer with the tenant metadata and records its id', async () => {
    const { billing, objects, posts } = await account();
    const tenant = await registerTenant(controlPlane, 'pro', { email: 'platform@initech.example', name: 'Initech LLC' });

    const first = await billing.ensureCustomer(tenant);
    expect(first).toMatchObject({ action: 'created', updated: true });
    expect(first.customerId).toMatch(/^cus_/);
    const [customer] = objects('customer');
    expect(customer).toMatchObject({ id: first.customerId, name: 'Initech LLC', email: 'platform@initech.example', metadata: { tenant_id: tenant.id, tenant_slug: tenant.slug } });
    expect(await controlPlane.stripeIds(tenant.id)).toEqual({ customerId: first.customerId, subscriptionId: null });
    expect(posts('/v1/customers').map((r) => r.idempotencyKey)).toEqual([`tenancy:${tenant.id}:customer:create`]);
    const audit = await pool.query("SELECT details FROM tenancy.audit_log WHERE tenant_id = $1 AND action = 'tenant.stripe_customer'", [tenant.id]);
    expect(audit.rows).toEqual([{ details: { customer: first.customerId } }]);

    const again = await billing.ensureCustomer(tenant);
    expect(again).toEqual({ customerId: first.customerId, action: 'existing', updated: false });
    expect(objects('customer')).toHaveLength(1);
    expect(posts('/v1/customers')).toHaveLength(1);
  });

  it('keeps name, email and slug up to date without a second customer', async () => {
    const { billing, objects } = await account();
    const tenant = await registerTenant(controlPlane, 'free');
    await billing.ensureCustomer(tenant);
    expect(objects('customer')[0]).toMatchObject({ name: tenant.slug, email: null });
    const renamed = { ...tenant, name: 'Globex Corporation', email: 'ap@globex.example' };
    await expect(billing.ensureCustomer(renamed)).resolves.toMatchObject({ action: 'existing', updated: true });
    expect(objects('customer')).toEqual([expect.objectContaining({ name: 'Globex Corporation', email: 'ap@globex.example' })]);
  });

  it('creates one customer when runs race', async () => {
    const { billing, objects, posts } = await account();
    const tenant = await registerTenant(controlPlane, 'starter');
    const results = await Promise.all([billing.ensureCustomer(tenant), billing.ensureCustomer(tenant), billing.ensureCustomer(tenant)]);
    expect(new Set(results.map((r) => r.customerId)).size).toBe(1);
    expect(objects('customer')).toHaveLength(1);
    expect((await controlPlane.stripeIds(tenant.id))!.customerId).toBe(results[0].customerId);
    // Every run that created sent the same key; Stripe replayed the first create to the others.
    const creates = posts('/v1/customers');
    expect(new Set(creates.map((r) => r.idempotencyKey))).toEqual(new Set([billingKeys.customerCreate(tenant.id)]));
    expect(creates.filter((r) => !r.replayed)).toHaveLength(1);
  });

  describe('after a crash between "customer created" and "id recorded"', () => {
    /** Records that fail the first setStripeCustomerId: the process died right after the create. */
    function crashingOnce(): BillingRecords {
      let crashed = false;
      return {
        stripeIds: (id) => controlPlane.stripeIds(id),
        setStripeSubscriptionId: (...a) => controlPlane.setStripeSubscriptionId(...a),
        setStripeCustomerId: async (...a) => {
          if (!crashed) {
            crashed = true;
            throw new Error('simulated crash');
          }
          return controlPlane.setStripeCustomerId(...a);
        },
      };
    }

    it.each([
      ['within 24 hours: the idempotency key replays the create (search has not caught up)', 0, 'replayed'],
      ['after 24 hours: the key has expired, the metadata search finds the customer', DAY + 3600, 'adopted'],
    ])('%s', async (_name, later, action) => {
      const lagged = await StripeMockServer.start({ clock, searchLagSeconds: 120 });
      try {
        const { billing, stripe, objects } = await account({ records: crashingOnce() }, lagged);
        const tenant = await registerTenant(controlPlane, 'pro');
        await expect(billing.ensureCustomer(tenant)).rejects.toThrow('simulated crash');
        expect(objects('customer')).toHaveLength(1);
        expect((await controlPlane.stripeIds(tenant.id))!.customerId).toBeNull();

        clock.advance(later);
        const retry = await billing.ensureCustomer(tenant);
        expect(retry.action).toBe(action);
        expect(objects('customer')).toHaveLength(1);
        expect(retry.customerId).toBe(objects('customer')[0].id);
        expect((await controlPlane.stripeIds(tenant.id))!.customerId).toBe(retry.customerId);
        expect((await stripe.customers.search({ query: `metadata['tenant_id']:'${tenant.id}'` })).data).toHaveLength(later > 0 ? 1 : 0);
      } finally {
        await lagged.stop();
      }
    });
  });

  it('refuses to recreate a customer that was deleted in Stripe', async () => {
    const { billing, stripe, objects } = await account();
    const tenant = await registerTenant(controlPlane, 'pro');
    const { customerId } = await billing.ensureCustomer(tenant);
    await stripe.customers.del(customerId);
    await expect(billing.ensureCustomer(tenant)).rejects.toThrow(BillingError);
    await expect(billing.ensureCustomer(tenant)).rejects.toThrow(/was deleted in Stripe/);
    expect(objects('customer')).toHaveLength(1);
  });

  it('refuses a tenant the control plane does not know', async () => {
    const { billing } = await account();
    await expect(billing.ensureCustomer({ id: '00000000-0000-4000-8000-000000000000', slug: 'ghost', plan: 'pro' })).rejects.toThrow(/not registered in the control plane/);
  });
});

describe('ensureSubscription', () => {
  it('sends a customer without a payment method to Checkout and creates no subscription', async () => {
    const { billing, key, objects } = await account({ trialDays: 14 });
    const tenant = await registerTenant(controlPlane, 'starter');
    const outcome = await billing.ensureSubscription(tenant);
    expect(outcome).toMatchObject({ kind: 'checkout-required', reason: 'no-payment-method' });
    if (outcome.kind !== 'checkout-required') throw new Error('unreachable');
    expect(outcome.url).toBe(`${mock().url}/c/pay/${outcome.sessionId}`);
    expect(objects('subscription')).toEqual([]);
    expect((await controlPlane.stripeIds(tenant.id))!.subscriptionId).toBeNull();
    const [session] = objects('checkout.session');
    expect(session).toMatchObject({
      mode: 'subscription', status: 'open', client_reference_id: tenant.id, success_url: CHECKOUT.successUrl, cancel_url: CHECKOUT.cancelUrl,
      metadata: { tenant_id: tenant.id, tenant_slug: tenant.slug, plan: 'starter' },
    });

    // Running again while the customer has not paid: the same session, not a second one.
    await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ kind: 'checkout-required', sessionId: outcome.sessionId });
    expect(objects('checkout.session')).toHaveLength(1);

    // The customer pays; the next run finds the subscription Checkout created and records it.
    mock().completeCheckoutSession(key, outcome.sessionId);
    const after = await billing.ensureSubscription(tenant);
    expect(after).toMatchObject({ kind: 'subscribed', action: 'adopted', status: 'trialing', trialEnd: T0 + 14 * DAY });
    const [sub] = objects('subscription');
    expect(sub.metadata).toEqual({ tenant_id: tenant.id, tenant_slug: tenant.slug, plan: 'starter' });
    expect((await controlPlane.stripeIds(tenant.id))!.subscriptionId).toBe(sub.id);
    await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ kind: 'subscribed', action: 'existing', subscriptionId: sub.id });
  });

  it('expires the open session of another plan instead of leaving two payable', async () => {
    const { billing, objects } = await account();
    const tenant = await registerTenant(controlPlane, 'starter');
    const starter = await billing.ensureSubscription(tenant);
    const pro = await billing.ensureSubscription(tenant, 'pro');
    expect(pro.kind === 'checkout-required' && starter.kind === 'checkout-required' && pro.sessionId !== starter.sessionId).toBe(true);
    expect(objects('checkout.session').map((s) => [s.metadata.plan, s.status])).toEqual([['pro', 'open'], ['starter', 'expired']]);
  });

  it('fails clearly without checkout URLs when a payment method is needed', async () => {
    const { billing } = await account({ checkout: undefined });
    const tenant = await registerTenant(controlPlane, 'pro');
    await expect(billing.ensureSubscription(tenant)).rejects.toThrow(/needs a payment method .* configure checkout/);
  });

  it('subscribes a customer with a card once, with metadata and the trial, even when runs race', async () => {
    const { billing, stripe, objects, posts } = await account({ trialDays: { pro: 30 } });
    const tenant = await registerTenant(controlPlane, 'pro');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);

    const results = await Promise.all([billing.ensureSubscription(tenant), billing.ensureSubscription(tenant)]);
    const ids = results.map((r) => (r.kind === 'subscribed' ? r.subscriptionId : r.kind));
    expect(new Set(ids).size).toBe(1);
    expect(results.map((r) => r.kind === 'subscribed' && r.action).sort()).toEqual(expect.arrayContaining(['created']));
    const subs = objects('subscription');
    expect(subs).toHaveLength(1);
    expect(subs[0]).toMatchObject({ id: ids[0], status: 'trialing', trial_end: T0 + 30 * DAY, metadata: { tenant_id: tenant.id, tenant_slug: tenant.slug, plan: 'pro' } });
    // The plan's licensed price, then one metered item per usage dimension (metered-items.test.ts).
    expect(subs[0].items.data.map((i: any) => i.price.lookup_key)).toEqual(['test_pro', 'tenancy_api_calls_metered', 'tenancy_storage_gb_days_metered', 'tenancy_active_seats_metered']);
    expect((await controlPlane.stripeIds(tenant.id))!.subscriptionId).toBe(ids[0]);
    const creates = posts('/v1/subscriptions');
    expect(creates.every((r) => r.idempotencyKey?.startsWith(`tenancy:${tenant.id}:subscription:create:0:`))).toBe(true);
    expect(creates.filter((r) => !r.replayed)).toHaveLength(1);
    // The create asked Stripe to fail rather than leave an unpaid, incomplete subscription.
    expect(creates[0].params).toMatchObject({ payment_behavior: 'error_if_incomplete', trial_period_days: '30' });

    await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ kind: 'subscribed', action: 'existing', subscriptionId: ids[0] });
    expect(objects('subscription')).toHaveLength(1);
  });

  it('starts paid plans without trial as active, and records after a crash once', async () => {
    let crashed = false;
    const records: BillingRecords = {
      stripeIds: (id) => controlPlane.stripeIds(id),
      setStripeCustomerId: (...a) => controlPlane.setStripeCustomerId(...a),
      setStripeSubscriptionId: async (...a) => {
        if (!crashed && a[1] !== null) {
          crashed = true;
          throw new Error('simulated crash');
        }
        return controlPlane.setStripeSubscriptionId(...a);
      },
    };
    const { billing, stripe, objects } = await account({ records });
    const tenant = await registerTenant(controlPlane, 'starter');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);
    await expect(billing.ensureSubscription(tenant)).rejects.toThrow('simulated crash');
    const retry = await billing.ensureSubscription(tenant);
    expect(retry).toMatchObject({ kind: 'subscribed', action: 'adopted', status: 'active', trialEnd: null });
    expect(objects('subscription')).toHaveLength(1);
    expect((await controlPlane.stripeIds(tenant.id))!.subscriptionId).toBe(objects('subscription')[0].id);
  });

  it('sends a customer whose card is declined to Checkout, with nothing created', async () => {
    const { billing, stripe, objects } = await account();
    const tenant = await registerTenant(controlPlane, 'pro');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId, 'pm_card_chargeDeclined');
    await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ kind: 'checkout-required', reason: 'card-declined' });
    expect(objects('subscription')).toEqual([]);
  });

  it('changes plan on the same subscription: preview with prorations, then the item updated', async () => {
    const seen: PlanChangePreview[] = [];
    const { billing, stripe, objects, posts, prices } = await account({ onPlanChangePreview: (p) => void seen.push(p) });
    const tenant = await registerTenant(controlPlane, 'starter');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);
    const created = await billing.ensureSubscription(tenant);
    if (created.kind !== 'subscribed') throw new Error(`expected a subscription, got ${created.kind}`);
    const [before] = objects('subscription');
    const { current_period_start: start, current_period_end: end } = before.items.data[0];

    clock.advance(10 * DAY);
    const moved = await billing.ensureSubscription({ ...tenant, plan: 'pro' });
    expect(moved).toMatchObject({ kind: 'subscribed', action: 'plan-changed', subscriptionId: created.subscriptionId, priceId: prices.pro });
    if (moved.kind !== 'subscribed' || !moved.preview) throw new Error('expected a preview');
    const at = T0 + 10 * DAY;
    const credit = -Math.round((2900 * (end - at)) / (end - start));
    const charge = Math.round((9900 * (end - at)) / (end - start));
    expect(moved.preview).toMatchObject({
      fromPlan: 'starter', toPlan: 'pro', fromPrice: prices.starter, toPrice: prices.pro, prorationDate: at, currency: 'usd',
      prorationTotal: credit + charge, nextInvoiceTotal: credit + charge + 9900, nextInvoiceAt: end,
    });
    expect(moved.preview.prorations.map((l) => l.amount)).toEqual([credit, charge]);
    expect(seen).toEqual([moved.preview]);

    // One subscription, its licensed item now on pro, its metered items as they were; the prorations wait on the next invoice.
    const subs = objects('subscription');
    expect(subs).toHaveLength(1);
    expect(subs[0].items.data.map((i: any) => [i.id, i.price.id])).toEqual([[before.items.data[0].id, prices.pro], ...before.items.data.slice(1).map((i: any) => [i.id, i.price.id])]);
    expect(subs[0].metadata.plan).toBe('pro');
    const update = posts(`/v1/subscriptions/${created.subscriptionId}`).at(-1)!;
    expect(update.params).toMatchObject({ proration_behavior: 'create_prorations', proration_date: String(at) });
    expect(update.idempotencyKey).toBe(`tenancy:${tenant.id}:subscription:${created.subscriptionId}:plan:pro:${at}`);
    const next = await stripe.invoices.createPreview({ customer: customerId, subscription: created.subscriptionId });
    expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => l.amount)).toEqual([credit, charge]);
    expect(next.total).toBe(moved.preview.nextInvoiceTotal);
    expect((await controlPlane.stripeIds(tenant.id))!.subscriptionId).toBe(created.subscriptionId);

    await expect(billing.ensureSubscription({ ...tenant, plan: 'pro' })).resolves.toMatchObject({ action: 'existing' });
  });

  it('lets a caller show the preview, then apply exactly it', async () => {
    const { billing, stripe, objects } = await account();
    const tenant = await registerTenant(controlPlane, 'pro');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);
    await billing.ensureSubscription(tenant);
    clock.advance(3 * DAY);
    const preview = await billing.previewPlanChange(tenant, 'enterprise');
    expect(preview.prorationTotal).toBeGreaterThan(0);
    expect(objects('subscription')[0].items.data[0].price.lookup_key).toBe('test_pro');
    clock.advance(3600); // the customer reads the preview for an hour: the amounts still hold
    const applied = await billing.applyPlanChange(tenant, preview);
    expect(applied.items.data[0].price.lookup_key).toBe('test_enterprise');
    const next = await stripe.invoices.createPreview({ customer: customerId, subscription: applied.id });
    expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => l.amount)).toEqual(preview.prorations.map((l) => l.amount));
  });

  it('aborts a plan change its preview callback refuses', async () => {
    const { billing, stripe, objects } = await account({
      onPlanChangePreview: (p) => {
        if (p.prorationTotal > 5000) throw new Error(`needs approval: ${p.prorationTotal}`);
      },
    });
    const tenant = await registerTenant(controlPlane, 'starter');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);
    await billing.ensureSubscription(tenant);
    await expect(billing.ensureSubscription({ ...tenant, plan: 'enterprise' })).rejects.toThrow(/needs approval/);
    expect(objects('subscription')[0].items.data[0].price.lookup_key).toBe('test_starter');
  });

  it('moves a paid tenant to free at the end of its period, and back', async () => {
    const { billing, stripe, objects } = await account({ trialDays: 7 });
    const tenant = await registerTenant(controlPlane, 'pro');
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);
    await billing.ensureSubscription(tenant);
    const free = await billing.ensureSubscription(tenant, 'free');
    expect(free).toMatchObject({ kind: 'none', action: 'cancel-at-period-end' });
    expect(objects('subscription')[0]).toMatchObject({ cancel_at_period_end: true, status: 'trialing' });
    await expect(billing.ensureSubscription(tenant, 'free')).resolves.toMatchObject({ kind: 'none', action: 'none' });
    await expect(billing.ensureSubscription(tenant, 'pro')).resolves.toMatchObject({ kind: 'subscribed', action: 'uncanceled' });
    expect(objects('subscription')).toEqual([expect.objectContaining({ cancel_at_period_end: false })]);

    // Once it has ended, paying again is a new subscription (without a second trial).
    await stripe.subscriptions.cancel(objects('subscription')[0].id);
    const again = await billing.ensureSubscription(tenant, 'pro');
    expect(again).toMatchObject({ kind: 'subscribed', action: 'created', status: 'active', trialEnd: null });
    expect(objects('subscription').map((s) => s.status)).toEqual(['active', 'canceled']);
    expect((await controlPlane.stripeIds(tenant.id))!.subscriptionId).toBe(objects('subscription')[0].id);
  });

  it('gives free tenants a customer and no subscription', async () => {
    const { billing, objects } = await account();
    const tenant = await registerTenant(controlPlane, 'free');
    await expect(billing.reconcile(tenant)).resolves.toMatchObject({ customer: { action: 'created' }, subscription: { kind: 'none', action: 'none', subscriptionId: null } });
    expect(objects('subscription')).toEqual([]);
    expect(objects('customer')).toHaveLength(1);
  });

  // Without metered prices: metered usage makes a $0 plan billable, which needs a card (metered-items.test.ts).
  it('subscribes free tenants to a $0 price when free is mapped to one, without a payment method', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    await withCatalog(stripe);
    await stripe.prices.create({ currency: 'usd', unit_amount: 0, recurring: { interval: 'month' }, lookup_key: 'test_free', product_data: { name: 'Free' } });
    const billing = new StripeBilling({ stripe, records: controlPlane, prices: { ...PRICES, free: { lookupKey: 'test_free' } }, usagePrices: NO_USAGE_PRICES, now: () => clock.now() });
    const tenant = await registerTenant(controlPlane, 'free');
    await expect(billing.reconcile(tenant)).resolves.toMatchObject({ subscription: { kind: 'subscribed', action: 'created', status: 'active' } });
  });

  it('reports a plan whose lookup key has no price', async () => {
    const { billing } = await account({ prices: { ...PRICES, enterprise: { lookupKey: 'nope' } } });
    const tenant = await registerTenant(controlPlane, 'enterprise');
    await expect(billing.ensureSubscription(tenant)).rejects.toThrow(/plan enterprise: no active Stripe price with lookup_key "nope"/);
  });

  it.each<[string, Partial<StripeBillingOptions>]>([
    ['trial days above Stripe’s 730', { trialDays: 731 }],
    ['fractional trial days', { trialDays: { pro: 1.5 } }],
    ['a relative checkout URL', { checkout: { successUrl: '/done', cancelUrl: 'https://a.example' } }],
    ['a plan missing from the price map', { prices: { free: null, starter: null, pro: null } as any }],
  ])('refuses %s', async (_name, options) => {
    expect(() => new StripeBilling({ stripe: stripeFor(mock(), testKey()), records: controlPlane, ...options })).toThrow();
  });
});

describe('what the local server catches in our calls', () => {
  /** The official client with one method's parameters changed the way a bug would change them. */
  function mutating(stripe: Stripe, resource: 'subscriptions' | 'invoices' | 'checkout.sessions', method: string, change: (params: any) => any): Stripe {
    const target = resource === 'checkout.sessions' ? (stripe.checkout.sessions as any) : (stripe[resource] as any);
    const original = target[method].bind(target);
    target[method] = (...args: any[]) => {
      const paramIndex = typeof args[0] === 'string' ? 1 : 0;
      args[paramIndex] = change(structuredClone(args[paramIndex]));
      return original(...args);
    };
    return stripe;
  }

  async function payingTenant(stripe: Stripe, plan: Plan = 'starter') {
    const billing = new StripeBilling({ stripe, records: controlPlane, prices: PRICES, checkout: CHECKOUT, now: () => clock.now() });
    const tenant = await registerTenant(controlPlane, plan);
    const { customerId } = await billing.ensureCustomer(tenant);
    await addCard(stripe, customerId);
    return { tenant, customerId };
  }

  it.each<[string, 'subscriptions' | 'invoices' | 'checkout.sessions', string, (p: any) => any, { code?: string; param: string }, (b: StripeBilling, t: any) => Promise<unknown>]>([
    ['a misspelt proration_behavior on the update', 'subscriptions', 'update', (p) => ({ ...p, proration_behavior: 'create_proration' }), { param: 'proration_behavior' }, (b, t) => b.ensureSubscription(t, 'pro')],
    ['the pre-2025 createPreview parameters (subscription_items)', 'invoices', 'createPreview', ({ subscription_details, ...p }) => ({ ...p, subscription_items: subscription_details.items }), { code: 'parameter_unknown', param: 'subscription_items' }, (b, t) => b.ensureSubscription(t, 'pro')],
    ['a proration date from another period', 'invoices', 'createPreview', (p) => ({ ...p, subscription_details: { ...p.subscription_details, proration_date: T0 - 40 * DAY } }), { param: 'subscription_details[proration_date]' }, (b, t) => b.ensureSubscription(t, 'pro')],
    ['a second item instead of replacing the first', 'subscriptions', 'update', (p) => ({ ...p, items: [{ price: p.items[0].price }, { price: p.items[0].price }] }), { param: 'items' }, (b, t) => b.ensureSubscription(t, 'pro')],
  ])('rejects %s', async (_name, resource, method, change, expected, act) => {
    const stripe = stripeFor(mock(), testKey());
    await withCatalog(stripe);
    const { tenant } = await payingTenant(stripe);
    const billing = new StripeBilling({ stripe: mutating(stripe, resource, method, change), records: controlPlane, prices: PRICES, checkout: CHECKOUT, now: () => clock.now() });
    await billing.ensureSubscription(tenant);
    const e = await act(billing, tenant).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    const err = e as InstanceType<typeof Stripe.errors.StripeError>;
    if (expected.code) expect(err.code).toBe(expected.code);
    expect(err.param).toBe(expected.param);
  });

  it('rejects a subscription created without the payment-method check (what error_if_incomplete prevents)', async () => {
    const key = testKey();
    const stripe = stripeFor(mock(), key);
    const prices = await withCatalog(stripe);
    const customer = await stripe.customers.create({ metadata: { tenant_id: 'x' } });
    const e = await stripeError(() => stripe.subscriptions.create({ customer: customer.id, items: [{ price: prices.pro }], payment_behavior: 'error_if_incomplete' }));
    expect(e.message).toMatch(/no attached payment source or default payment method/);
    expect(mock().objects(key, 'subscription')).toEqual([]);
  });

  it('rejects a zero-day trial on Checkout (why the hook leaves trial_period_days out at 0)', async () => {
    const stripe = mutating(stripeFor(mock(), testKey()), 'checkout.sessions', 'create', (p) => ({ ...p, subscription_data: { ...p.subscription_data, trial_period_days: 0 } }));
    await withCatalog(stripe);
    const billing = new StripeBilling({ stripe, records: controlPlane, prices: PRICES, checkout: CHECKOUT, now: () => clock.now() });
    const tenant = await registerTenant(controlPlane, 'pro');
    const e = (await billing.ensureSubscription(tenant).catch((err: unknown) => err)) as InstanceType<typeof Stripe.errors.StripeError>;
    expect(e.param).toBe('subscription_data[trial_period_days]');
  });
});
