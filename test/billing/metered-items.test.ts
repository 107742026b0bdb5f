/**
 * Metered usage items on tenant subscriptions (lib/billing subscription-items.ts, usage-prices.ts)
 * against the local Stripe server and a real control plane: a new subscription carries the plan's
 * licensed price plus one metered item per usage dimension; reruns (also racing) add nothing; a
 * subscription created before usage billing gets the missing items on the next run — also through
 * the billing post-apply hook, whose input names the usage prices; a plan change swaps only the
 * licensed item and previews only its prorations; Checkout sells the same items.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import {
  billingHook, BillingConfigError, BillingError, findUsageMeters, NO_USAGE_PRICES, StripeBilling,
  type BillingHookOptions, type StripeBillingOptions,
} from '../../lib/billing';
import type { ControlPlane } from '../../lib/control-plane/control-plane';
import { activateHook, registerHook } from '../../lib/hooks/builtin-hooks';
import { DatabaseConnector } from '../../lib/hooks/database-connector';
import type { PlatformOutputs, TenantOutputs } from '../../lib/hooks/deploy-outputs';
import { runPostApply, type HookOutcome } from '../../lib/hooks/post-apply';
import type { PostApplyHook } from '../../lib/hooks/post-apply-hook';
import { maskKey } from '../../lib/testing/stripe-mock';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import { usePostgres } from '../support/postgres';
import { fixedClock, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';
import { controlPlaneOn, PRICES, registerTenant, withCatalog } from './helpers';

const DAY = 86_400;
const CHECKOUT = { successUrl: 'https://app.example/billing/done', cancelUrl: 'https://app.example/billing' };
/** The default usage catalog's metered prices, in USAGE_DIMENSIONS order. */
const METERED = ['tenancy_api_calls_metered', 'tenancy_storage_gb_days_metered', 'tenancy_active_seats_metered'];
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

/** A fresh account with the plan and usage catalog; billing on it (default usage prices unless overridden). */
async function account(options: Partial<StripeBillingOptions> = {}) {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  const prices = await withCatalog(stripe);
  const billingWith = (more: Partial<StripeBillingOptions> = {}) =>
    new StripeBilling({ stripe, records: controlPlane, prices: PRICES, checkout: CHECKOUT, now: () => clock.now(), ...options, ...more });
  const subscriptions = () => mock().objects(key, 'subscription');
  const posts = (path: string) => mock().requests.filter((r) => r.method === 'POST' && r.apiKey === maskKey(key) && r.path === path);
  return { key, stripe, prices, billing: billingWith(), billingWith, subscriptions, posts };
}

async function addCard(stripe: Stripe, customerId: string) {
  const pm = await stripe.paymentMethods.attach('pm_card_visa', { customer: customerId });
  await stripe.customers.update(customerId, { invoice_settings: { default_payment_method: pm.id } });
}

/** [lookup key, quantity or 'none'] of each item, in order. */
const itemsOf = (sub: Record<string, any>) => sub.items.data.map((i: any) => [i.price.lookup_key, 'quantity' in i ? i.quantity : 'none']);
const WITH_METERED = (plan: string) => [[plan, 1], ...METERED.map((k) => [k, 'none'])];

it('subscribes a new tenant to its plan plus one metered item per usage dimension; reruns add nothing', async () => {
  const { key, stripe, billing, subscriptions, posts } = await account();
  const tenant = await registerTenant(controlPlane, 'starter');
  const { customerId } = await billing.ensureCustomer(tenant);
  await addCard(stripe, customerId);

  await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ kind: 'subscribed', action: 'created', meteredItemsAdded: [] });
  const [sub] = subscriptions();
  expect(itemsOf(sub)).toEqual(WITH_METERED('test_starter'));
  // Each metered item bills its dimension's meter.
  const meters = await findUsageMeters(stripe);
  expect(sub.items.data.slice(1).map((i: any) => i.price.recurring.meter)).toEqual([meters.api_calls.meterId, meters.storage_gb.meterId, meters.active_seats.meterId]);
  // The first invoice charges the plan only (usage is billed in arrears).
  expect(mock().objects(key, 'invoice').map((i) => i.total)).toEqual([2900]);

  const updatesBefore = posts(`/v1/subscriptions/${sub.id}`).length;
  const again = await Promise.all([billing.ensureSubscription(tenant), billing.ensureSubscription(tenant)]);
  expect(again).toEqual([expect.objectContaining({ action: 'existing', meteredItemsAdded: [] }), expect.objectContaining({ action: 'existing', meteredItemsAdded: [] })]);
  expect(posts(`/v1/subscriptions/${sub.id}`)).toHaveLength(updatesBefore);
  expect(subscriptions()).toHaveLength(1);
  expect(itemsOf(subscriptions()[0])).toEqual(WITH_METERED('test_starter'));
});

it('adds the metered items to a subscription created before usage billing, once, even when runs race', async () => {
  const { stripe, billing, billingWith, subscriptions, posts } = await account();
  const tenant = await registerTenant(controlPlane, 'pro');
  const { customerId } = await billing.ensureCustomer(tenant);
  await addCard(stripe, customerId);
  // What earlier versions created: the plan's price alone.
  const legacy = await billingWith({ usagePrices: NO_USAGE_PRICES }).ensureSubscription(tenant);
  if (legacy.kind !== 'subscribed') throw new Error(`expected a subscription, got ${legacy.kind}`);
  const [before] = subscriptions();
  expect(itemsOf(before)).toEqual([['test_pro', 1]]);

  const runs = await Promise.all([billing.ensureSubscription(tenant), billing.ensureSubscription(tenant)]);
  expect(runs.map((r) => r.kind === 'subscribed' && r.meteredItemsAdded)).toEqual([['api_calls', 'storage_gb', 'active_seats'], ['api_calls', 'storage_gb', 'active_seats']]);
  const [after] = subscriptions();
  expect(subscriptions()).toHaveLength(1);
  expect(after.id).toBe(before.id);
  // The plan's item is the same item; the metered ones are added after it, without quantity.
  expect(after.items.data[0].id).toBe(before.items.data[0].id);
  expect(itemsOf(after)).toEqual(WITH_METERED('test_pro'));
  const adds = posts(`/v1/subscriptions/${before.id}`);
  expect(adds.filter((r) => !r.replayed)).toHaveLength(1);
  expect(adds[0].idempotencyKey).toMatch(new RegExp(`^tenancy:${tenant.id}:subscription:${before.id}:metered-items:add:[0-9a-f]{16}$`));
  expect(adds[0].params).toMatchObject({ proration_behavior: 'none' });
  // Nothing prorated or charged for the added items.
  const next = await stripe.invoices.createPreview({ customer: customerId, subscription: before.id });
  expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration)).toEqual([]);
  expect(next.total).toBe(9900);

  await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ action: 'existing', meteredItemsAdded: [] });
  expect(posts(`/v1/subscriptions/${before.id}`)).toHaveLength(adds.length);
});

it('counts a dimension as present when an item bills its meter at another price (never two items on one meter)', async () => {
  const { stripe, billing, billingWith, subscriptions } = await account();
  const tenant = await registerTenant(controlPlane, 'starter');
  const { customerId } = await billing.ensureCustomer(tenant);
  await addCard(stripe, customerId);
  await billingWith({ usagePrices: NO_USAGE_PRICES }).ensureSubscription(tenant);
  const meters = await findUsageMeters(stripe);
  const [sub] = subscriptions();
  // An operator attached their own price for API calls.
  const own = await stripe.prices.create({ currency: 'usd', unit_amount_decimal: Stripe.Decimal.from('0.02'), recurring: { interval: 'month', usage_type: 'metered', meter: meters.api_calls.meterId }, product_data: { name: 'Negotiated API calls' } });
  await stripe.subscriptions.update(sub.id, { items: [{ price: own.id }] });

  await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ action: 'existing', meteredItemsAdded: ['storage_gb', 'active_seats'] });
  expect(subscriptions()[0].items.data.map((i: any) => i.price.id)).toEqual([sub.items.data[0].price.id, own.id, ...(await lookup(stripe, METERED.slice(1)))]);
});

async function lookup(stripe: Stripe, keys: string[]): Promise<string[]> {
  const found = (await stripe.prices.list({ lookup_keys: keys, limit: 10 })).data;
  return keys.map((k) => found.find((p) => p.lookup_key === k)!.id);
}

it('changes plan by swapping the licensed item only: metered items kept, preview lines of the plan alone', async () => {
  const { stripe, prices, billing, subscriptions, posts } = await account();
  const tenant = await registerTenant(controlPlane, 'starter');
  const { customerId } = await billing.ensureCustomer(tenant);
  await addCard(stripe, customerId);
  const created = await billing.ensureSubscription(tenant);
  if (created.kind !== 'subscribed') throw new Error(`expected a subscription, got ${created.kind}`);
  const [before] = subscriptions();
  const { current_period_start: start, current_period_end: end } = before.items.data[0];

  clock.advance(10 * DAY);
  const at = T0 + 10 * DAY;
  const credit = -Math.round((2900 * (end - at)) / (end - start));
  const charge = Math.round((9900 * (end - at)) / (end - start));
  // `tenancy plan`'s path: the status with the preview, then the preview applied.
  const status = await billing.planChangeStatus(tenant, 'pro');
  if (status.kind !== 'pending') throw new Error(`expected a pending change, got ${status.kind}`);
  expect(status.preview).toMatchObject({
    subscriptionItemId: before.items.data[0].id, fromPrice: prices.starter, toPrice: prices.pro, prorationDate: at,
    prorationTotal: credit + charge, nextInvoiceTotal: credit + charge + 9900, nextInvoiceAt: end,
  });
  expect(status.preview.prorations.map((l) => l.amount)).toEqual([credit, charge]);
  await billing.applyPlanChange(tenant, status.preview);

  const [after] = subscriptions();
  expect(after.items.data.map((i: any) => [i.id, i.price.id])).toEqual([[before.items.data[0].id, prices.pro], ...before.items.data.slice(1).map((i: any) => [i.id, i.price.id])]);
  expect(itemsOf(after)).toEqual(WITH_METERED('test_pro'));
  const update = posts(`/v1/subscriptions/${before.id}`).at(-1)!;
  // Form-encoded: items[0][id]=… arrives as an object by index.
  expect(Object.values(update.params.items)).toEqual([{ id: before.items.data[0].id, price: prices.pro, quantity: '1' }]);
  const next = await stripe.invoices.createPreview({ customer: customerId, subscription: before.id });
  expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => l.amount)).toEqual([credit, charge]);
  expect(next.total).toBe(status.preview.nextInvoiceTotal);
  const applied = await billing.planChangeStatus({ ...tenant, plan: 'starter' }, 'pro');
  expect(applied).toMatchObject({ kind: 'applied', applied: { fromPlan: 'starter', toPrice: prices.pro, prorationDate: at, prorationTotal: credit + charge } });

  // The registry's path (post-apply): back to starter, the same way.
  clock.advance(DAY);
  const back = await billing.ensureSubscription({ ...tenant, plan: 'starter' });
  expect(back).toMatchObject({ kind: 'subscribed', action: 'plan-changed', meteredItemsAdded: [], preview: { subscriptionItemId: before.items.data[0].id, fromPrice: prices.pro, toPrice: prices.starter } });
  expect(itemsOf(subscriptions()[0])).toEqual(WITH_METERED('test_starter'));
});

it('changes the plan of a subscription created before usage billing: metered items added, then the plan swapped', async () => {
  const { stripe, prices, billing, billingWith, subscriptions } = await account();
  const tenant = await registerTenant(controlPlane, 'starter');
  const { customerId } = await billing.ensureCustomer(tenant);
  await addCard(stripe, customerId);
  await billingWith({ usagePrices: NO_USAGE_PRICES }).ensureSubscription(tenant);
  const [before] = subscriptions();
  clock.advance(3 * DAY);
  const moved = await billing.ensureSubscription({ ...tenant, plan: 'enterprise' });
  expect(moved).toMatchObject({ action: 'plan-changed', meteredItemsAdded: ['api_calls', 'storage_gb', 'active_seats'], preview: { subscriptionItemId: before.items.data[0].id, toPrice: prices.enterprise } });
  if (moved.kind !== 'subscribed' || !moved.preview) throw new Error('expected a preview');
  expect(moved.preview.prorations).toHaveLength(2);
  expect(itemsOf(subscriptions()[0])).toEqual(WITH_METERED('test_enterprise'));
});

it('sells the metered prices on Checkout without quantity, and the subscription Checkout creates has them', async () => {
  const { key, billing, subscriptions, posts } = await account();
  const tenant = await registerTenant(controlPlane, 'pro');
  const outcome = await billing.ensureSubscription(tenant);
  if (outcome.kind !== 'checkout-required') throw new Error(`expected Checkout, got ${outcome.kind}`);
  const [create] = posts('/v1/checkout/sessions');
  const metered = await lookup(stripeFor(mock(), key), METERED);
  expect(Object.values(create.params.line_items)).toEqual([{ price: outcome.priceId, quantity: '1' }, ...metered.map((price) => ({ price }))]);

  mock().completeCheckoutSession(key, outcome.sessionId);
  await expect(billing.ensureSubscription(tenant)).resolves.toMatchObject({ kind: 'subscribed', action: 'adopted', meteredItemsAdded: [] });
  expect(itemsOf(subscriptions()[0])).toEqual(WITH_METERED('test_pro'));
});

it('needs a card for a $0 plan once it carries metered items (usage is billed)', async () => {
  const { stripe, billingWith } = await account();
  await stripe.prices.create({ currency: 'usd', unit_amount: 0, recurring: { interval: 'month' }, lookup_key: 'test_free_0', product_data: { name: 'Free' } });
  const billing = billingWith({ prices: { ...PRICES, free: { lookupKey: 'test_free_0' } } });
  const tenant = await registerTenant(controlPlane, 'free');
  await expect(billing.reconcile(tenant)).resolves.toMatchObject({ subscription: { kind: 'checkout-required', reason: 'no-payment-method' } });
});

it('gives free tenants (no plan price) no subscription, so no metered items', async () => {
  const { billing, subscriptions } = await account();
  const tenant = await registerTenant(controlPlane, 'free');
  await expect(billing.reconcile(tenant)).resolves.toMatchObject({ subscription: { kind: 'none', action: 'none' } });
  expect(subscriptions()).toEqual([]);
});

it('refuses a subscription with two licensed items, naming them', async () => {
  const { stripe, prices, billing, subscriptions } = await account();
  const tenant = await registerTenant(controlPlane, 'starter');
  const { customerId } = await billing.ensureCustomer(tenant);
  await addCard(stripe, customerId);
  await billing.ensureSubscription(tenant);
  const [sub] = subscriptions();
  const addon = await stripe.prices.create({ currency: 'usd', unit_amount: 500, recurring: { interval: 'month' }, product_data: { name: 'Add-on' } });
  await stripe.subscriptions.update(sub.id, { items: [{ price: addon.id, quantity: 1 }] });
  const e = await billing.ensureSubscription({ ...tenant, plan: 'pro' }).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(BillingError);
  expect((e as Error).message).toContain(`subscription ${sub.id} has 2 licensed items (${prices.starter}, ${addon.id})`);
  await expect(billing.planChangeStatus(tenant, 'pro')).rejects.toThrow(/has 2 licensed items/);
});

it('refuses metered prices that cannot share the plan’s invoice, or that do not exist, naming them', async () => {
  const { stripe, billingWith } = await account();
  const meters = await findUsageMeters(stripe);
  const yearly = await stripe.prices.create({ currency: 'usd', unit_amount_decimal: Stripe.Decimal.from('0.01'), recurring: { interval: 'year', usage_type: 'metered', meter: meters.api_calls.meterId }, product_data: { name: 'Yearly calls' } });
  const tenant = await registerTenant(controlPlane, 'starter');
  const { customerId } = await billingWith().ensureCustomer(tenant);
  await addCard(stripe, customerId);
  const usage = { ...NO_USAGE_PRICES, api_calls: { priceId: yearly.id } };
  const e = await billingWith({ usagePrices: usage }).ensureSubscription(tenant).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(BillingConfigError);
  expect((e as Error).message).toMatch(new RegExp(`usage dimension api_calls: metered price ${yearly.id} bills usd every 1 year`));
  await expect(billingWith({ usagePrices: { ...NO_USAGE_PRICES, storage_gb: { lookupKey: 'nope' } } }).ensureSubscription(tenant)).rejects.toThrow(/usage dimension storage_gb: no active Stripe price with lookup_key "nope"/);
  const starter = (await stripe.prices.list({ lookup_keys: ['test_starter'] })).data[0];
  await expect(billingWith({ usagePrices: { ...NO_USAGE_PRICES, active_seats: { priceId: starter.id } } }).ensureSubscription(tenant)).rejects.toThrow(/usage dimension active_seats: Stripe price .* is not a metered price/);
});

describe('through the billing post-apply hook', () => {
  const databases = new DatabaseConnector({ secrets: new StaticSecretResolver({}) });
  const PLATFORM: PlatformOutputs = { region: 'us-east-1', pool: { endpoint: 'pool.cluster.example', port: 5432, database: 'pool', masterSecretArn: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-pool' } };
  const poolTenant = (plan: TenantOutputs['plan']): TenantOutputs =>
    ({ tenant_id: randomUUID(), slug: `metered-${Math.random().toString(36).slice(2, 8)}`, plan, region: 'us-east-1', model: 'pool', cluster_identifier: 'tenancy-pool', db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' });
  async function run(tenant: TenantOutputs, hooks: PostApplyHook[]): Promise<HookOutcome | undefined> {
    const outcomes = await runPostApply({ outputs: { tenants: [tenant], platforms: new Map([['us-east-1', PLATFORM]]) }, hooks, controlPlane, databases });
    return outcomes.find((o) => o.hook === 'billing');
  }

  it('adds the metered items to existing subscriptions on the next post-apply after the upgrade, then is unchanged', async () => {
    const { key, stripe, subscriptions } = await account();
    const options: BillingHookOptions = { key: { env: { STRIPE_SECRET_KEY: key } }, connection: mock().stripeConfig(), prices: PRICES, now: () => clock.now() };
    const tenant = poolTenant('starter');
    await run(tenant, [registerHook]);
    const { customerId } = await new StripeBilling({ stripe, records: controlPlane, prices: PRICES }).ensureCustomer({ id: tenant.tenant_id, slug: tenant.slug, plan: 'starter' });
    await addCard(stripe, customerId);
    // Before the upgrade: subscriptions of the plan's price alone.
    const legacy = { ...options, usagePrices: NO_USAGE_PRICES };
    expect(await run(tenant, [registerHook, activateHook, billingHook(legacy)])).toMatchObject({ status: 'succeeded', result: { subscription_action: 'created' } });
    expect(await run(tenant, [registerHook, activateHook, billingHook(legacy)])).toMatchObject({ status: 'unchanged' });
    expect(itemsOf(subscriptions()[0])).toEqual([['test_starter', 1]]);

    // After it: the usage prices are part of the hook's input, so the next run is not skipped.
    const upgraded = await run(tenant, [registerHook, activateHook, billingHook(options)]);
    expect(upgraded).toMatchObject({ status: 'succeeded', result: { subscription_action: 'existing', metered_items_added: ['api_calls', 'storage_gb', 'active_seats'] } });
    expect(itemsOf(subscriptions()[0])).toEqual(WITH_METERED('test_starter'));
    expect(await run(tenant, [registerHook, activateHook, billingHook(options)])).toMatchObject({ status: 'unchanged' });
    expect(subscriptions()).toHaveLength(1);
  });
});
