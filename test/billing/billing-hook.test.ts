/**
 * The `billing` post-apply hook in runPostApply, after register and activate, against the local
 * Stripe server and a real control plane: explicit skip without a key, keys from the
 * environment or a secret reference, Checkout for a paid plan without payment method, plan
 * changes from the registry, concurrent runs.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { billingHook, NO_USAGE_PRICES, StaticSecretValueResolver, type BillingHookOptions } from '../../lib/billing';
import type { ControlPlane } from '../../lib/control-plane/control-plane';
import { activateHook, registerHook } from '../../lib/hooks/builtin-hooks';
import { DatabaseConnector } from '../../lib/hooks/database-connector';
import type { DeployOutputs, PlatformOutputs, TenantOutputs } from '../../lib/hooks/deploy-outputs';
import { runPostApply, type HookOutcome } from '../../lib/hooks/post-apply';
import type { PostApplyHook } from '../../lib/hooks/post-apply-hook';
import type { Plan } from '../../lib/registry/tenant-schema';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import { usePostgres } from '../support/postgres';
import { fixedClock, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';
import { controlPlaneOn, PRICES, withCatalog } from './helpers';

const pg = usePostgres();
const clock = fixedClock();
const mock = useStripeMock({ clock });
const CHECKOUT = { successUrl: 'https://app.example/billing/done', cancelUrl: 'https://app.example/billing' };
let pool: Pool;
let controlPlane: ControlPlane;
const databases = new DatabaseConnector({ secrets: new StaticSecretResolver({}) });
const PLATFORM: PlatformOutputs = { region: 'us-east-1', pool: { endpoint: 'pool.cluster.example', port: 5432, database: 'pool', masterSecretArn: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-pool' } };

beforeAll(async () => {
  ({ pool, controlPlane } = await controlPlaneOn(pg(), 'control_plane'));
});
afterAll(async () => {
  await pool?.end();
});
beforeEach(() => clock.set(T0));

let n = 0;
function poolTenant(plan: Plan, id = randomUUID(), slug = `hooked-${++n}`): TenantOutputs {
  return { tenant_id: id, slug, plan, region: 'us-east-1', model: 'pool', cluster_identifier: 'tenancy-pool', db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' };
}
const outputsOf = (...tenants: TenantOutputs[]): DeployOutputs => ({ tenants, platforms: new Map([['us-east-1', PLATFORM]]) });

/** A fresh Stripe account with the catalog; hook options pointing at it through STRIPE_SECRET_KEY. */
async function stripeAccount(extra: Partial<BillingHookOptions> = {}) {
  const key = testKey();
  await withCatalog(stripeFor(mock(), key));
  const options: BillingHookOptions = {
    key: { env: { STRIPE_SECRET_KEY: key } },
    connection: mock().stripeConfig(),
    prices: PRICES,
    checkout: CHECKOUT,
    now: () => clock.now(),
    ...extra,
  };
  return { key, options, objects: (type: string) => mock().objects(key, type) };
}

async function run(tenants: TenantOutputs[], hooks: PostApplyHook[]): Promise<Record<string, HookOutcome>> {
  const outcomes = await runPostApply({ outputs: outputsOf(...tenants), hooks, controlPlane, databases });
  return Object.fromEntries(outcomes.filter((o) => o.hook === 'billing').map((o) => [o.tenant, o]));
}

const withBilling = (options: BillingHookOptions) => [registerHook, activateHook, billingHook(options)];

it('says it skipped when no key is configured, and runs once one is', async () => {
  const tenant = poolTenant('pro');
  const none = await run([tenant], withBilling({ key: { env: {} }, prices: PRICES }));
  expect(none[tenant.slug]).toMatchObject({ status: 'succeeded', result: { skipped: 'no Stripe key configured' } });
  const again = await run([tenant], withBilling({ key: { env: {} }, prices: PRICES }));
  expect(again[tenant.slug]).toMatchObject({ status: 'unchanged', result: { skipped: 'no Stripe key configured' } });

  const { options, objects } = await stripeAccount();
  const keyed = await run([tenant], withBilling(options));
  // The key source is part of the hook's input: configuring one reruns it (no stale "unchanged");
  // pro needs a payment method, so this run stops at Checkout.
  expect(keyed[tenant.slug]).toMatchObject({ status: 'failed', error: expect.stringContaining('/c/pay/cs_test_') });
  expect(objects('customer')).toHaveLength(1);
});

it('fails with the Checkout URL for a paid plan without payment method, and succeeds once paid', async () => {
  const { key, options, objects } = await stripeAccount({ trialDays: 14 });
  const tenant = poolTenant('starter');
  const first = (await run([tenant], withBilling(options)))[tenant.slug];
  expect(first.status).toBe('failed');
  const [session] = objects('checkout.session');
  expect(first.error).toContain(session.url);
  expect(first.error).toMatch(/needs a payment method .* no subscription exists until it is completed/);
  expect(objects('subscription')).toEqual([]);
  expect(await controlPlane.stripeIds(tenant.tenant_id)).toEqual({ customerId: objects('customer')[0].id, subscriptionId: null });

  mock().completeCheckoutSession(key, session.id);
  const paid = (await run([tenant], withBilling(options)))[tenant.slug];
  const [sub] = objects('subscription');
  expect(paid).toMatchObject({ status: 'succeeded', result: { mode: 'test', subscription: sub.id, subscription_action: 'adopted', status: 'trialing', customer_action: 'existing' } });
  expect((await controlPlane.stripeIds(tenant.tenant_id))!.subscriptionId).toBe(sub.id);
  expect((await run([tenant], withBilling(options)))[tenant.slug].status).toBe('unchanged');

  // The registry moves the tenant to pro: the hook previews, then updates the same subscription.
  clock.advance(5 * 86_400);
  const moved = (await run([{ ...tenant, plan: 'pro' }], withBilling(options)))[tenant.slug];
  expect(moved).toMatchObject({ status: 'succeeded', result: { subscription: sub.id, subscription_action: 'plan-changed', plan_change: { from: 'starter', to: 'pro', proration_date: T0 + 5 * 86_400 } } });
  // In trial: nothing to prorate.
  expect((moved.result as any).plan_change.prorations).toEqual([]);
  expect(objects('subscription')).toHaveLength(1);
  expect(objects('subscription')[0].items.data[0].price.lookup_key).toBe('test_pro');
});

it('creates one customer and one subscription when two runs race', async () => {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  await withCatalog(stripe);
  await stripe.prices.create({ currency: 'usd', unit_amount: 0, recurring: { interval: 'month' }, lookup_key: 'test_free_0', product_data: { name: 'Free' } });
  const options: BillingHookOptions = { key: { env: { STRIPE_SECRET_KEY: key } }, connection: mock().stripeConfig(), prices: { ...PRICES, free: { lookupKey: 'test_free_0' } }, usagePrices: NO_USAGE_PRICES, now: () => clock.now() };
  const tenant = poolTenant('free');
  await run([tenant], [registerHook]);
  const [a, b] = await Promise.all([run([tenant], [billingHook(options)]), run([tenant], [billingHook(options)])]);
  expect([a[tenant.slug].status, b[tenant.slug].status]).toEqual(['succeeded', 'succeeded']);
  expect(mock().objects(key, 'customer')).toHaveLength(1);
  expect(mock().objects(key, 'subscription')).toHaveLength(1);
  expect(a[tenant.slug].result).toMatchObject({ subscription: mock().objects(key, 'subscription')[0].id });
  expect((b[tenant.slug].result as any).subscription).toBe((a[tenant.slug].result as any).subscription);
});

it('reads the key from a secret reference', async () => {
  const { key, options, objects } = await stripeAccount();
  const tenant = poolTenant('free');
  const fromSecret: BillingHookOptions = { ...options, key: { env: { STRIPE_SECRET_KEY_REF: 'arn:aws:secretsmanager:us-east-1:1:secret:stripe' }, resolver: new StaticSecretValueResolver({ 'arn:aws:secretsmanager:us-east-1:1:secret:stripe': JSON.stringify({ secret_key: key }) }) } };
  const outcome = (await run([tenant], withBilling(fromSecret)))[tenant.slug];
  expect(outcome).toMatchObject({ status: 'succeeded', result: { mode: 'test', customer_action: 'created', subscription: null, subscription_action: 'none' } });
  expect(objects('customer')[0].metadata).toEqual({ tenant_id: tenant.tenant_id, tenant_slug: tenant.slug });
});

it.each<[string, BillingHookOptions['key'], RegExp]>([
  ['two key sources', { env: { STRIPE_SECRET_KEY: 'sk_test_abcdefgh1234', STRIPE_SECRET_KEY_REF: 'stripe' } }, /configure one/],
  ['a malformed key (never echoed)', { env: { STRIPE_SECRET_KEY: 'sk_test_abc def secret-1234' } }, /^STRIPE_SECRET_KEY is not a Stripe secret key.*sk_…1234$/],
  ['a secret that cannot be read', { secretRef: 'missing', resolver: new StaticSecretValueResolver({}) }, /Stripe key secret "missing": not found/],
])('fails the hook on %s', async (_name, key, message) => {
  const tenant = poolTenant('free');
  const outcome = (await run([tenant], withBilling({ key, prices: PRICES })))[tenant.slug];
  expect(outcome.status).toBe('failed');
  expect(outcome.error).toMatch(message);
  expect(outcome.error).not.toContain('abc def');
});
