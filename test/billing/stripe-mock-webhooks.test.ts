/**
 * The local Stripe server's webhooks: endpoints with Stripe's validation, events from its state
 * changes, delivery signed so that the official SDK's constructEvent verifies it, retries on the
 * server clock (no sleeps), and the test hooks (deliver again, deliver in a given order, attempts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { fixedClock, stripeError, stripeFor, T0, testKey, useStripeMock } from '../support/stripe-mock';
import { withCatalog } from './helpers';

const clock = fixedClock();
const mock = useStripeMock({ clock, webhooks: { pollMs: 0, retrySchedule: [60, 600] } });

interface Received {
  readonly body: string;
  readonly signature: string;
}

/** A receiver answering with `status()` for each request it records. */
async function receiver(status: () => number = () => 200): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(req.headers['stripe-signature']) });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, server };
}
const closeAll: Server[] = [];
afterAll(async () => {
  await Promise.all(closeAll.map((s) => new Promise((r) => s.close(r))));
});

async function subscribedCustomer(stripe: Stripe, key: string, pm = 'pm_card_visa') {
  const prices = await withCatalog(stripe);
  const customer = await stripe.customers.create({ email: 'a@example.test' });
  await stripe.paymentMethods.attach(pm, { customer: customer.id });
  const attached = mock().objects(key, 'payment_method')[0];
  await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: attached.id } });
  const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: prices.pro }] });
  return { customer, sub, prices };
}

beforeEach(() => clock.set(T0));

it('validates endpoints as Stripe does and returns the secret only on create', async () => {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  expect((await stripeError(() => stripe.webhookEndpoints.create({ url: 'not a url', enabled_events: ['*'] }))).code).toBe('url_invalid');
  expect((await stripeError(() => stripe.webhookEndpoints.create({ url: 'https://x.example/h', enabled_events: [] as never }))).message).toMatch(/enabled_events/);
  expect((await stripeError(() => stripe.webhookEndpoints.create({ url: 'https://x.example/h', enabled_events: ['not an event' as never] }))).param).toBe('enabled_events[0]');
  expect((await stripeError(() => stripe.webhookEndpoints.create({ url: 'https://x.example/h', enabled_events: ['*'], colour: 'x' } as never))).code).toBe('parameter_unknown');
  const created = await stripe.webhookEndpoints.create({ url: 'https://x.example/h', enabled_events: ['invoice.paid'] });
  expect(created.secret).toMatch(/^whsec_/);
  expect(created).toMatchObject({ object: 'webhook_endpoint', status: 'enabled', enabled_events: ['invoice.paid'] });
  expect((await stripe.webhookEndpoints.retrieve(created.id)).secret).toBeUndefined();
  expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).toEqual([created.id]);
  expect(await stripe.webhookEndpoints.del(created.id)).toEqual({ id: created.id, object: 'webhook_endpoint', deleted: true });
  expect((await stripeError(() => stripe.webhookEndpoints.retrieve(created.id))).statusCode).toBe(404);
});

it('delivers each event signed so that the SDK verifies it, to subscribed endpoints only', async () => {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  const all = await receiver();
  const paidOnly = await receiver();
  closeAll.push(all.server, paidOnly.server);
  const endpoint = await stripe.webhookEndpoints.create({ url: all.url, enabled_events: ['*'] });
  const other = await stripe.webhookEndpoints.create({ url: paidOnly.url, enabled_events: ['invoice.paid'] });
  const { sub } = await subscribedCustomer(stripe, key);
  await mock().webhooks.idle();

  const types = all.received.map((r) => JSON.parse(r.body).type);
  expect(types).toEqual(['customer.subscription.created', 'invoice.paid', 'invoice.payment_succeeded']);
  expect(paidOnly.received.map((r) => JSON.parse(r.body).type)).toEqual(['invoice.paid']);
  for (const r of all.received) {
    // The official verification, at the server clock's time (the signature's t).
    const event = Stripe.webhooks.constructEvent(r.body, r.signature, endpoint.secret!, 300, undefined, clock.now() * 1000);
    expect(event.data.object).toMatchObject({ customer: sub.customer });
    expect(() => Stripe.webhooks.constructEvent(r.body, r.signature, other.secret!, 300, undefined, clock.now() * 1000)).toThrow(/No signatures found/);
  }
  // Events are retrievable and listed by type.
  const listed = await stripe.events.list({ type: 'invoice.*' });
  expect(listed.data.map((e) => e.type).sort()).toEqual(['invoice.paid', 'invoice.payment_succeeded']);
  const first = JSON.parse(all.received[0].body);
  expect(await stripe.events.retrieve(first.id)).toMatchObject({ id: first.id, type: 'customer.subscription.created', api_version: expect.any(String) });
});

it('renewals, failed and recovered payments and cancellations emit their events', async () => {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  const { sub, prices } = await subscribedCustomer(stripe, key);
  const failed = mock().advanceSubscriptionPeriod(key, sub.id, { failPayment: true });
  expect(failed.status).toBe('past_due');
  const invoice = await stripe.invoices.retrieve(failed.latest_invoice);
  expect(invoice).toMatchObject({ status: 'open', billing_reason: 'subscription_cycle', attempt_count: 1 });
  const paid = await stripe.invoices.pay(invoice.id);
  expect(paid.status).toBe('paid');
  expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  expect((await stripeError(() => stripe.invoices.pay(invoice.id))).code).toBe('invoice_already_paid');
  await stripe.subscriptions.update(sub.id, { items: [{ id: sub.items.data[0].id, price: prices.starter }] });
  await stripe.subscriptions.cancel(sub.id);
  const types = mock().events(key).map((e) => e.type);
  expect(types).toEqual([
    'customer.subscription.created', 'invoice.paid', 'invoice.payment_succeeded',
    'invoice.payment_failed', 'customer.subscription.updated',
    'invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated',
    'customer.subscription.updated',
    'customer.subscription.deleted',
  ]);
  const pastDue = mock().events(key)[4];
  expect(pastDue.data.previous_attributes).toMatchObject({ status: 'active' });
});

it('retries a failed delivery on the schedule of the server clock, then gives up', async () => {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  let answer = 500;
  const hook = await receiver(() => answer);
  closeAll.push(hook.server);
  const endpoint = await stripe.webhookEndpoints.create({ url: hook.url, enabled_events: ['customer.subscription.created'] });
  await subscribedCustomer(stripe, key);
  await mock().webhooks.idle();
  const attempts = () => mock().webhooks.attempts.filter((a) => a.endpoint === endpoint.id);
  expect(attempts().map((a) => [a.attempt, a.status, a.ok])).toEqual([[1, 500, false]]);

  expect(await mock().webhooks.runDue()).toEqual([]); // not due before its time
  clock.advance(60);
  expect((await mock().webhooks.runDue()).map((a) => [a.attempt, a.status, a.trigger])).toEqual([[2, 500, 'retry']]);
  clock.advance(600 - 60);
  expect((await mock().webhooks.runDue()).map((a) => a.attempt)).toEqual([3]);
  clock.advance(86_400);
  expect(await mock().webhooks.runDue()).toEqual([]); // out of retries
  expect(mock().webhooks.pending().filter((p) => p.endpoint === endpoint.id)).toEqual([]);

  // A refused connection is a failed attempt too; an answer in time ends the retries.
  const gone = await stripe.webhookEndpoints.create({ url: 'http://127.0.0.1:9/nothing-listens', enabled_events: ['customer.subscription.created'] });
  answer = 200;
  await subscribedCustomer(stripe, key);
  await mock().webhooks.idle();
  const refused = mock().webhooks.attempts.filter((a) => a.endpoint === gone.id);
  expect(refused).toEqual([expect.objectContaining({ ok: false, error: expect.any(String) })]);
  expect(attempts().slice(-1)).toEqual([expect.objectContaining({ attempt: 1, status: 200, ok: true })]);
});

it('test hooks deliver events again and in a given order, and list the attempts', async () => {
  const key = testKey();
  const stripe = stripeFor(mock(), key);
  const hook = await receiver();
  closeAll.push(hook.server);
  const endpoint = await stripe.webhookEndpoints.create({ url: hook.url, enabled_events: ['*'] });
  await subscribedCustomer(stripe, key);
  await mock().webhooks.idle();
  const ids = mock().events(key).map((e) => e.id);
  hook.received.length = 0;
  const response = await fetch(`${mock().url}/_mock/webhook_endpoints/${endpoint.id}/deliver_events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: [...ids].reverse().map((id, i) => `events[${i}]=${id}`).join('&'),
  });
  expect(response.status).toBe(200);
  expect(hook.received.map((r) => JSON.parse(r.body).id)).toEqual([...ids].reverse());
  const listed = await (await fetch(`${mock().url}/_mock/webhook_endpoints/${endpoint.id}/attempts`, { headers: { authorization: `Bearer ${key}` } })).json();
  expect(listed.data).toHaveLength(ids.length * 2);
  expect(listed.data.slice(-ids.length).map((a: { trigger: string }) => a.trigger)).toEqual(ids.map(() => 'on-demand'));
  const missing = await fetch(`${mock().url}/_mock/events/evt_missing/deliver`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  expect(missing.status).toBe(400);
});
