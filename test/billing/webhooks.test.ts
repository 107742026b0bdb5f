/**
 * Stripe webhooks end to end: the local Stripe server delivers its events, signed, over HTTP to
 * the real handler (lib/billing/webhooks) in front of a real control plane (every
 * control-plane migration, applied by an RDS-style master; the handler runs as a least-privilege
 * login role). Covers: refused signatures record nothing; each event type drives the tenant;
 * replays are no-ops; reverse-order delivery ends in the same state; concurrent duplicates are
 * applied once; past_due becomes suspended after the grace period (injected clock) and the
 * router refuses the tenant.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type ClientConfig } from 'pg';
import { billingHook } from '../../lib/billing';
import { creditBalance } from '../../lib/billing/credits';
import { stripeWebhookHandler, suspendOverdueTenants, type StripeWebhookHandlerOptions, type WebhookResult } from '../../lib/billing/webhooks';
import { signPayload } from '../../lib/testing/stripe-mock/webhooks';
import { registerWebhooksCommand } from '../../lib/cli/webhooks-command';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { activateHook, registerHook } from '../../lib/hooks/builtin-hooks';
import { DatabaseConnector } from '../../lib/hooks/database-connector';
import type { PlatformOutputs, TenantOutputs } from '../../lib/hooks/deploy-outputs';
import { runPostApply } from '../../lib/hooks/post-apply';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { tenantStatuses } from '../../lib/onboarding/status';
import { TenantRouter } from '../../lib/runtime/router';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import { repoSets } from '../migrate/helpers';
import { runCommand } from '../support/cli';
import { FixtureProject } from '../support/fixture-project';
import { usePostgres } from '../support/postgres';
import { fixedClock, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';
import { PRICES, withCatalog } from './helpers';

const pg = usePostgres();
const clock = fixedClock();
const mock = useStripeMock({ clock, webhooks: { pollMs: 0 } });
const MASTER = { user: 'wh_master', password: 'wh-master-pw (test only)' };
const WORKER = { user: 'wh_worker', password: 'wh-worker-pw (test only)' };
const GRACE_DAYS = 3;
const CHECKOUT = { successUrl: 'https://app.example/billing/done', cancelUrl: 'https://app.example/billing' };
const PLATFORM: PlatformOutputs = { region: 'us-east-1', pool: { endpoint: 'pool.cluster.example', port: 5432, database: 'pool', masterSecretArn: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-pool' } };
const as = (role: { user: string; password: string }, database: string): ClientConfig => pg().clientConfig({ ...role, database });
const now = () => new Date(clock.now() * 1000);

/** A control-plane database migrated by the master; pools as master (fixtures) and as the worker (the handler). */
interface ControlPlaneDb {
  readonly master: Pool;
  readonly worker: Pool;
  readonly controlPlane: ControlPlane;
}
const opened: ControlPlaneDb[] = [];
const servers: Server[] = [];
let databases = 0;

async function controlPlaneDb(): Promise<ControlPlaneDb> {
  const database = `wh_cp_${++databases}`;
  await pg().createDatabase(database, { owner: MASTER.user });
  const run = await migrateTargets({ targets: [controlPlaneTarget({ connection: as(MASTER, database) })], migrations: repoSets() });
  expect(run.results.map((r) => r.error ?? r.status)).toEqual(['applied']);
  const master = new Pool({ ...as(MASTER, database), max: 4 });
  const worker = new Pool({ ...as(WORKER, database), max: 8 });
  const db = { master, worker, controlPlane: new ControlPlane(master, 'webhooks-test') };
  opened.push(db);
  return db;
}

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createRole(WORKER.user, { password: WORKER.password });
  // The role 0004 creates: the first migration creates it, the worker is made a member once.
  const first = await controlPlaneDb();
  void first;
  await pg().query(`GRANT tenancy_control_plane TO ${WORKER.user}`);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const db of opened) await Promise.all([db.master.end(), db.worker.end()]);
});
beforeEach(() => clock.set(T0));

/** The handler on a node:http server of its own; resolves with its URL. */
async function serve(options: StripeWebhookHandlerOptions): Promise<string> {
  const server = createServer(stripeWebhookHandler(options));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/stripe/webhooks`;
}

let n = 0;
function poolTenant(plan: 'pro' | 'starter'): TenantOutputs {
  return { tenant_id: crypto.randomUUID(), slug: `webhooked-${++n}`, plan, region: 'us-east-1', model: 'pool', cluster_identifier: 'tenancy-pool', db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' };
}

/** post-apply as the pipeline runs it: register, activate, billing (a paid plan without card stops at Checkout). */
async function postApply(db: ControlPlaneDb, key: string, tenant: TenantOutputs) {
  const hook = billingHook({ key: { env: { STRIPE_SECRET_KEY: key } }, connection: mock().stripeConfig(), prices: PRICES, checkout: CHECKOUT, now: () => clock.now() });
  const outcomes = await runPostApply({
    outputs: { tenants: [tenant], platforms: new Map([['us-east-1', PLATFORM]]) },
    hooks: [registerHook, activateHook, hook],
    controlPlane: db.controlPlane,
    databases: new DatabaseConnector({ secrets: new StaticSecretResolver({}) }),
  });
  return outcomes.find((o) => o.hook === 'billing')!;
}

/**
 * A Stripe account with the catalog, a webhook endpoint delivering to a handler on `db`, and a
 * pro tenant whose post-apply stopped at Checkout.
 */
async function scenario(db: ControlPlaneDb, options: { enabled?: boolean } = {}) {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  const prices = await withCatalog(stripe);
  const endpoint = await stripe.webhookEndpoints.create({ url: 'http://127.0.0.1:9/placeholder', enabled_events: ['*'] });
  const results: WebhookResult[] = [];
  const url = await serve({ secret: endpoint.secret!, stripe, pool: db.worker, pastDueGraceDays: GRACE_DAYS, prices: PRICES, now, onResult: (r) => results.push(r) });
  await stripe.webhookEndpoints.update(endpoint.id, { url, disabled: options.enabled === false });
  const tenant = poolTenant('pro');
  const first = await postApply(db, key, tenant);
  expect(first).toMatchObject({ status: 'failed', error: expect.stringContaining('/c/pay/') });
  const sessionId = /Checkout Session (cs_test_\w+)/.exec(first.error!)![1];
  return { key, stripe, prices, endpoint, secret: endpoint.secret!, url, tenant, sessionId, results };
}

async function tenantRow(db: ControlPlaneDb, id: string) {
  const r = await db.master.query(
    `SELECT t.status, t.plan, t.stripe_customer_id, t.stripe_subscription_id, b.subscription_id, b.subscription_status, b.stripe_plan, b.stripe_price,
            b.past_due_since, b.grace_until, b.suspended_at
       FROM tenancy.tenants t LEFT JOIN tenancy.tenant_billing b ON b.tenant_id = t.id WHERE t.id = $1`,
    [id],
  );
  return r.rows[0];
}

/** Everything the webhooks may write, for "nothing changed" comparisons. */
async function snapshot(db: ControlPlaneDb, id: string) {
  const count = async (sql: string) => Number((await db.master.query(sql, [id])).rows[0].n);
  const billing = (await db.master.query('SELECT last_event_id, synced_at FROM tenancy.tenant_billing WHERE tenant_id = $1', [id])).rows[0];
  return {
    tenant: await tenantRow(db, id),
    billing,
    events: await count('SELECT count(*) AS n FROM tenancy.stripe_events WHERE tenant_id = $1'),
    audit: await count('SELECT count(*) AS n FROM tenancy.audit_log WHERE tenant_id = $1'),
    hookRuns: await count('SELECT count(*) AS n FROM tenancy.hook_runs WHERE tenant_id = $1'),
  };
}

const statusAudits = async (db: ControlPlaneDb, id: string) =>
  (await db.master.query(`SELECT details->>'status' AS status, details->>'reason' AS reason FROM tenancy.audit_log WHERE tenant_id = $1 AND action = 'tenant.status' ORDER BY id`, [id])).rows;

it('refuses a request that is not a fresh, genuinely signed Stripe event with 400, naming why, and records nothing', async () => {
  const db = opened[0];
  const { key, secret, url, sessionId } = await scenario(db, { enabled: false });
  mock().completeCheckoutSession(key, sessionId);
  const event = mock().events(key).find((e) => e.type === 'checkout.session.completed')!;
  const body = JSON.stringify(event, null, 2);
  const post = (payload: string, signature?: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'stripe-signature': signature } : {}) }, body: payload });
  const t = clock.now();
  const cases: [string, Promise<Response>, RegExp][] = [
    ['no header', post(body), /no Stripe-Signature header/],
    ['another secret', post(body, signPayload(body, 'whsec_not_the_endpoint_secret', t)), /No signatures found matching the expected signature/],
    ['a changed body', post(body.replace('"livemode": false', '"livemode": true'), signPayload(body, secret, t)), /No signatures found matching/],
    ['an old timestamp', post(body, signPayload(body, secret, t - 301)), /Timestamp outside the tolerance zone/],
    ['a malformed header', post(body, 'v1=abc'), /Unable to extract timestamp and signatures/],
  ];
  for (const [what, response, reason] of cases) {
    const r = await response;
    expect([what, r.status]).toEqual([what, 400]);
    expect([what, (await r.json()).error]).toEqual([what, expect.stringMatching(reason)]);
  }
  expect(Number((await db.master.query('SELECT count(*) AS n FROM tenancy.stripe_events')).rows[0].n)).toBe(0);
  // The same event, correctly signed, is accepted: the refusals were about the signatures only.
  const ok = await post(body, signPayload(body, secret, t));
  expect(ok.status).toBe(200);
});

it('drives the tenant through each event type: checkout, failed and recovered payment, plan change, cancellation', async () => {
  const db = opened[0];
  const { key, stripe, prices, tenant, sessionId } = await scenario(db);

  // checkout.session.completed records the subscription; the next post-apply has nothing to do.
  mock().completeCheckoutSession(key, sessionId);
  await mock().webhooks.idle();
  const sub = mock().objects(key, 'subscription')[0];
  expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'active', stripe_subscription_id: sub.id, subscription_status: 'active', stripe_plan: 'pro' });
  expect(await postApply(db, key, tenant)).toMatchObject({ status: 'unchanged', result: { subscription: sub.id, subscription_action: 'checkout-completed', source: 'stripe-webhook' } });
  expect((await tenantStatuses(db.master, tenant.slug))[0]).toMatchObject({ stripe: { subscriptionId: sub.id }, billing: { planMismatch: null } });

  // invoice.payment_failed: past_due, with the grace period from the platform settings.
  mock().advanceSubscriptionPeriod(key, sub.id, { failPayment: true });
  await mock().webhooks.idle();
  const graceUntil = new Date((clock.now() + GRACE_DAYS * 86_400) * 1000);
  expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'past_due', subscription_status: 'past_due', past_due_since: now(), grace_until: graceUntil });

  // invoice.paid: active again.
  clock.advance(86_400);
  await stripe.invoices.pay(mock().objects(key, 'subscription')[0].latest_invoice);
  await mock().webhooks.idle();
  expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'active', subscription_status: 'active', past_due_since: null, grace_until: null });
  expect(await statusAudits(db, tenant.tenant_id)).toEqual([
    { status: 'active', reason: null }, // the activate hook
    { status: 'past_due', reason: 'payment failed' },
    { status: 'active', reason: 'payment recovered' },
  ]);

  // customer.subscription.updated: the plan Stripe bills is synced; the mismatch with the registry is reported.
  await stripe.subscriptions.update(sub.id, { items: [{ id: sub.items.data[0].id, price: prices.starter }] });
  await mock().webhooks.idle();
  expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ plan: 'pro', stripe_plan: 'starter', stripe_price: prices.starter });
  expect((await tenantStatuses(db.master, tenant.slug))[0].billing).toMatchObject({ stripePlan: 'starter', planMismatch: 'the registry says pro, Stripe bills starter' });

  // customer.subscription.deleted: Stripe bills nothing (free); the tenant is not suspended for it.
  await stripe.subscriptions.cancel(sub.id);
  await mock().webhooks.idle();
  expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'active', subscription_status: 'canceled', stripe_plan: 'free' });
  expect((await tenantStatuses(db.master, tenant.slug))[0].billing?.planMismatch).toBe('the registry says pro, Stripe bills free');

  // Every delivery was answered 200 and applied once.
  const attempts = mock().webhooks.attempts.filter((a) => mock().events(key).some((e) => e.id === a.event));
  expect(attempts.every((a) => a.status === 200)).toBe(true);
  const ids = mock().events(key).map((e) => e.id);
  const recorded = (await db.master.query('SELECT id FROM tenancy.stripe_events WHERE id = ANY($1)', [ids])).rows.map((r) => r.id);
  expect(recorded.sort()).toEqual([...ids].sort());

  // Replaying every event changes nothing at all.
  const before = await snapshot(db, tenant.tenant_id);
  const replayed = await mock().deliverEvents(key, mock().events(key).map((e) => e.id));
  expect(replayed.map((a) => a.status)).toEqual(replayed.map(() => 200));
  expect(await snapshot(db, tenant.tenant_id)).toEqual(before);
});

it('events delivered in reverse order end in the same state as in order', async () => {
  const inOrder = opened[0];
  const reversed = await controlPlaneDb();
  const { key, stripe, prices, endpoint, tenant, sessionId } = await scenario(inOrder);
  // The same tenant in a second control plane, behind a second endpoint that is off meanwhile.
  const late = await stripe.webhookEndpoints.create({ url: 'http://127.0.0.1:9/placeholder', enabled_events: ['*'] });
  const lateUrl = await serve({ secret: late.secret!, stripe, pool: reversed.worker, pastDueGraceDays: GRACE_DAYS, prices: PRICES, now });
  await stripe.webhookEndpoints.update(late.id, { url: lateUrl, disabled: true });
  await postApply(reversed, key, tenant);

  mock().completeCheckoutSession(key, sessionId);
  const sub = mock().objects(key, 'subscription')[0];
  mock().advanceSubscriptionPeriod(key, sub.id, { failPayment: true });
  // Signatures carry the server clock's time: let deliveries land before time moves on.
  await mock().webhooks.idle();
  clock.advance(3600);
  await stripe.invoices.pay(mock().objects(key, 'subscription')[0].latest_invoice);
  await stripe.subscriptions.update(sub.id, { items: [{ id: sub.items.data[0].id, price: prices.starter }] });
  await mock().webhooks.idle();
  expect(mock().webhooks.attempts.filter((a) => a.endpoint === late.id)).toEqual([]);

  const ids = mock().events(key).map((e) => e.id);
  const attempts = await mock().deliverEvents(key, [...ids].reverse(), late.id);
  expect(attempts.map((a) => a.status)).toEqual(ids.map(() => 200));
  const state = async (db: ControlPlaneDb) => {
    const { past_due_since: _s, grace_until: _g, ...row } = await tenantRow(db, tenant.tenant_id);
    // The hook run records the subscription as it was when the run was recorded: only its outcome is state.
    const hook = (await db.master.query(`SELECT status, result->>'subscription' AS subscription FROM tenancy.hook_runs WHERE tenant_id = $1 AND hook = 'billing' ORDER BY id DESC LIMIT 1`, [tenant.tenant_id])).rows[0];
    return { row, hook };
  };
  expect(mock().webhooks.attempts.filter((a) => a.endpoint === endpoint.id).map((a) => a.status)).toEqual(ids.map(() => 200));
  const expected = await state(inOrder);
  expect(expected).toMatchObject({ row: { status: 'active', stripe_subscription_id: sub.id, stripe_plan: 'starter' }, hook: { status: 'succeeded', subscription: sub.id } });
  expect(await state(reversed)).toEqual(expected);
  void endpoint;
});

it('a duplicate delivered concurrently is applied once', async () => {
  const db = opened[0];
  const { key, tenant, sessionId, results } = await scenario(db, { enabled: false });
  mock().completeCheckoutSession(key, sessionId);
  const sub = mock().objects(key, 'subscription')[0];
  mock().advanceSubscriptionPeriod(key, sub.id, { failPayment: true });
  const failed = mock().events(key).find((e) => e.type === 'invoice.payment_failed')!;
  const all = await Promise.all(Array.from({ length: 8 }, () => mock().deliverEvents(key, [failed.id])));
  expect(all.flat().map((a) => a.status)).toEqual(Array(8).fill(200));
  // One delivery applied it; the other seven found it recorded (answered 200: Stripe stops retrying).
  expect(results.filter((r) => r.outcome?.event === failed.id).map((r) => r.outcome!.duplicate).sort()).toEqual([false, ...Array(7).fill(true)]);
  expect((await db.master.query('SELECT count(*) AS n FROM tenancy.stripe_events WHERE id = $1', [failed.id])).rows[0].n).toBe('1');
  expect(await statusAudits(db, tenant.tenant_id)).toEqual([
    { status: 'active', reason: null },
    { status: 'past_due', reason: 'payment failed' },
  ]);
});

it('past_due becomes suspended when the grace period ends, and the router refuses the tenant at once', async () => {
  const db = await controlPlaneDb(); // alone in it: the sweep covers every tenant
  const { key, tenant, sessionId } = await scenario(db);
  mock().completeCheckoutSession(key, sessionId);
  const sub = mock().objects(key, 'subscription')[0];
  mock().advanceSubscriptionPeriod(key, sub.id, { failPayment: true });
  await mock().webhooks.idle();

  let evicted!: () => void;
  const eviction = new Promise<void>((r) => (evicted = r));
  const router = new TenantRouter({
    controlPlane: db.worker, secrets: new StaticSecretResolver({}), baseDomain: 'example.test', tenantCacheTtlMs: 600_000, connectionBudget: 4,
    onStatusEvent: (e) => e.type === 'invalidated' && e.tenantId === tenant.tenant_id && evicted(),
  });
  try {
    await router.whenListening();
    const host = { host: `${tenant.slug}.example.test` };
    // Served (and cached) while past due: the grace period is for paying.
    expect(await router.resolve(host)).toMatchObject({ id: tenant.tenant_id, status: 'past_due' });
    clock.advance(GRACE_DAYS * 86_400 - 1);
    expect(await suspendOverdueTenants(db.worker, { now: now() })).toEqual([]);
    clock.advance(1);
    expect(await suspendOverdueTenants(db.worker, { now: now() })).toEqual([tenant.tenant_id]);
    expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'suspended', suspended_at: now() });
    // The suspension's NOTIFY evicts the cached tenant (migration 0005): refused at once, not after the cache TTL.
    await eviction;
    await expect(router.resolve(host)).rejects.toMatchObject({ code: 'tenant-unavailable', message: expect.stringContaining('is suspended') });

    // Paying lifts the suspension billing made.
    const stripe = stripeFor(mock(), key);
    await stripe.invoices.pay(mock().objects(key, 'subscription')[0].latest_invoice);
    await mock().webhooks.idle();
    expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'active', suspended_at: null });
    expect((await statusAudits(db, tenant.tenant_id)).map((a) => a.status)).toEqual(['active', 'past_due', 'suspended', 'active']);
  } finally {
    await router.close();
  }
});

it('a paid top-up Checkout grants its credits once, however often it is delivered', async () => {
  const db = opened[0];
  const { key, stripe, tenant } = await scenario(db);
  const customer = (await tenantRow(db, tenant.tenant_id)).stripe_customer_id;
  const product = await stripe.products.create({ name: 'Credits' });
  const price = await stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1000 });
  const session = await stripe.checkout.sessions.create({
    mode: 'payment', customer, line_items: [{ price: price.id, quantity: 1 }], metadata: { credits: '500' }, success_url: CHECKOUT.successUrl, cancel_url: CHECKOUT.cancelUrl,
  });
  mock().completeCheckoutSession(key, session.id);
  await mock().webhooks.idle();
  expect(await creditBalance(db.master, tenant.tenant_id)).toBe(500);
  const event = mock().events(key).find((e) => e.type === 'checkout.session.completed' && e.data.object.id === session.id)!;
  const again = await Promise.all([1, 2, 3].map(() => mock().deliverEvents(key, [event.id])));
  expect(again.flat().map((a) => a.status)).toEqual([200, 200, 200]);
  expect(await creditBalance(db.master, tenant.tenant_id)).toBe(500);
  const outcome = (await db.master.query('SELECT outcome FROM tenancy.stripe_events WHERE id = $1', [event.id])).rows[0].outcome;
  expect(outcome).toMatchObject({ top_up: { credits: 500, granted: true, stripe_object: session.id } });
});

describe('tenancy webhooks serve', () => {
  const project = FixtureProject.empty();
  afterAll(() => project.remove());
  const serveArgs = ['webhooks', 'serve', '--port', '0', '--root', project.root];
  const cpUrl = (database: string) =>
    `postgres://${WORKER.user}:${encodeURIComponent(WORKER.password)}@${pg().host}:${pg().port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;

  it('takes the signing secret from the environment only, and refuses to start without a valid one', async () => {
    const env = { STRIPE_SECRET_KEY: testKey(), TENANCY_CONTROL_PLANE_URL: cpUrl('wh_cp_1') };
    const none = await runCommand((program, io) => registerWebhooksCommand(program, io), serveArgs, { env });
    expect(none).toMatchObject({ code: 2, stderr: expect.stringContaining('STRIPE_WEBHOOK_SECRET is not set') });
    const bad = await runCommand((program, io) => registerWebhooksCommand(program, io), serveArgs, { env: { ...env, STRIPE_WEBHOOK_SECRET: 'sk_test_wrong_kind' } });
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining('not a Stripe webhook signing secret') });
    const argv = await runCommand((program, io) => registerWebhooksCommand(program, io), [...serveArgs, '--secret', 'whsec_on_the_command_line'], { env });
    expect(argv.code).not.toBe(0);
    expect(argv.stderr).toContain("unknown option '--secret'");
  });

  it('applies delivered events and stops cleanly on SIGTERM', async () => {
    // The command checks signatures against the real clock: the server signs with it too.
    clock.set(Math.floor(Date.now() / 1000));
    const db = await controlPlaneDb();
    const { key, stripe, endpoint, secret, tenant, sessionId } = await scenario(db, { enabled: false });
    const signals = new EventEmitter();
    let listening!: (port: number) => void;
    const port = new Promise<number>((r) => (listening = r));
    const env = { STRIPE_WEBHOOK_SECRET: secret, STRIPE_SECRET_KEY: key, TENANCY_STRIPE_API_URL: mock().url, TENANCY_CONTROL_PLANE_URL: cpUrl(db.master.options.database!) };
    const command = runCommand((program, io) => registerWebhooksCommand(program, io, { signals, onListening: (a) => listening(a.port) }), serveArgs, { env });
    await stripe.webhookEndpoints.update(endpoint.id, { url: `http://127.0.0.1:${await port}/stripe/webhooks`, disabled: false });

    mock().completeCheckoutSession(key, sessionId);
    mock().advanceSubscriptionPeriod(key, mock().objects(key, 'subscription')[0].id, { failPayment: true });
    await mock().webhooks.idle();
    expect(mock().webhooks.attempts.filter((a) => a.endpoint === endpoint.id).map((a) => a.status)).toEqual(mock().events(key).map(() => 200));
    expect(await tenantRow(db, tenant.tenant_id)).toMatchObject({ status: 'past_due' });

    signals.emit('SIGTERM');
    const done = await command;
    expect(done.code).toBe(0);
    expect(done.stderr).toContain('"stopped":true');
    await expect(fetch(`http://127.0.0.1:${await port}/stripe/webhooks`, { method: 'POST' })).rejects.toThrow();
  });
});
