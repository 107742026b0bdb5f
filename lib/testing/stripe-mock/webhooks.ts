import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { MockClock } from './clock';
import { apiErrors } from './errors';
import { newId } from './ids';
import { p } from './params';
import type { Route } from './route';
import type { MockAccount, StripeObject } from './store';

/**
 * Webhook delivery as Stripe does it: every event an account emits is POSTed, as JSON, to each
 * enabled endpoint of the account subscribed to its type (`enabled_events`, `*` for all), signed
 * with the endpoint's secret in `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
 * (what `stripe.webhooks.constructEvent` verifies). A delivery that gets no 2xx in time — an
 * error status, a timeout, a refused connection — is retried on a bounded schedule of backoffs
 * (Stripe: three retries over a few hours in test mode), timed by the server's clock: a test
 * advances the clock and calls {@link WebhookDispatcher.runDue} instead of waiting. Test hooks
 * deliver an event again on demand, deliver a list of events in a given order, and list every
 * attempt.
 */

export interface WebhookDeliveryOptions {
  /** Seconds after the first attempt at which each retry is due. @default [300, 1800, 7200] */
  readonly retrySchedule?: readonly number[];
  /** How long an attempt waits for the response. @default 10000 */
  readonly timeoutMs?: number;
  /** How often due retries are looked for on the real clock (0: only by runDue). @default 1000 */
  readonly pollMs?: number;
}

/** One POST of an event to an endpoint. */
export interface DeliveryAttempt {
  readonly id: string;
  readonly event: string;
  readonly type: string;
  readonly endpoint: string;
  readonly url: string;
  /** 1 for the first attempt of a delivery, 2 for its first retry… (on-demand deliveries count on). */
  readonly attempt: number;
  /** Server clock, Unix seconds (also the signature's `t`). */
  readonly at: number;
  /** The response status; undefined when there was none (timeout, connection error). */
  readonly status?: number;
  readonly error?: string;
  readonly ok: boolean;
  /** Why it was made: the event, a retry, or a test hook. */
  readonly trigger: 'event' | 'retry' | 'on-demand';
}

interface Delivery {
  readonly account: MockAccount;
  readonly event: StripeObject;
  readonly endpoint: StripeObject;
  attempts: number;
  /** Server-clock time of the next retry; undefined when delivered or out of retries. */
  nextAt?: number;
  firstAt: number;
  busy: boolean;
}

/** The signature header Stripe sends with a payload. */
export function signPayload(payload: string, secret: string, timestamp: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

export class WebhookDispatcher {
  /** Every attempt, in the order they finished. */
  readonly attempts: DeliveryAttempt[] = [];
  private readonly deliveries: Delivery[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly retrySchedule: readonly number[];
  private readonly timeoutMs: number;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly clock: MockClock, options: WebhookDeliveryOptions = {}) {
    this.retrySchedule = options.retrySchedule ?? [300, 1800, 7200];
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const pollMs = options.pollMs ?? 1000;
    if (pollMs > 0) {
      this.timer = setInterval(() => void this.runDue(), pollMs);
      this.timer.unref();
    }
  }

  /** Called for every event an account emits: one delivery per subscribed, enabled endpoint. */
  dispatch(account: MockAccount, event: StripeObject): void {
    const endpoints = account.all('webhook_endpoint').filter((e) => e.status === 'enabled' && (e.enabled_events.includes('*') || e.enabled_events.includes(event.type)));
    event.pending_webhooks = endpoints.length;
    for (const endpoint of endpoints) {
      const delivery: Delivery = { account, event, endpoint, attempts: 0, firstAt: this.clock.now(), busy: false };
      this.deliveries.push(delivery);
      this.track(this.attempt(delivery, 'event'));
    }
  }

  /** Attempts every retry due by the server clock; resolves with those attempts. */
  async runDue(): Promise<DeliveryAttempt[]> {
    const now = this.clock.now();
    const due = this.deliveries.filter((d) => !d.busy && d.nextAt !== undefined && d.nextAt <= now);
    return Promise.all(due.map((d) => this.track(this.attempt(d, 'retry'))));
  }

  /**
   * Delivers an event now (again, if it was delivered: a redelivery) to one endpoint or every
   * endpoint subscribed to it, whatever its retry state; resolves with the attempts.
   */
  async deliver(account: MockAccount, eventId: string, endpointId?: string): Promise<DeliveryAttempt[]> {
    const event = account.get(eventId, 'event');
    if (!event) throw new Error(`No such event: '${eventId}'`);
    const endpoints = endpointId !== undefined ? [account.get(endpointId, 'webhook_endpoint')].filter((e): e is StripeObject => e !== undefined) : account.all('webhook_endpoint');
    if (endpointId !== undefined && endpoints.length === 0) throw new Error(`No such webhook endpoint: '${endpointId}'`);
    const out: DeliveryAttempt[] = [];
    for (const endpoint of endpoints) {
      if (endpointId === undefined && !(endpoint.enabled_events.includes('*') || endpoint.enabled_events.includes(event.type))) continue;
      let delivery = this.deliveries.find((d) => d.event.id === eventId && d.endpoint.id === endpoint.id);
      if (!delivery) {
        delivery = { account, event, endpoint, attempts: 0, firstAt: this.clock.now(), busy: false };
        this.deliveries.push(delivery);
      }
      out.push(await this.track(this.attempt(delivery, 'on-demand')));
    }
    return out;
  }

  /** Delivers events one after the other, each once its response came: an out-of-order delivery. */
  async deliverInOrder(account: MockAccount, eventIds: readonly string[], endpointId?: string): Promise<DeliveryAttempt[]> {
    const out: DeliveryAttempt[] = [];
    for (const id of eventIds) out.push(...(await this.deliver(account, id, endpointId)));
    return out;
  }

  /** Resolves when no attempt is in flight (those started meanwhile included). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Deliveries still waiting for a retry. */
  pending(): { event: string; endpoint: string; attempts: number; nextAt: number }[] {
    return this.deliveries.filter((d) => d.nextAt !== undefined).map((d) => ({ event: d.event.id, endpoint: d.endpoint.id, attempts: d.attempts, nextAt: d.nextAt! }));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  private async attempt(delivery: Delivery, trigger: DeliveryAttempt['trigger']): Promise<DeliveryAttempt> {
    delivery.busy = true;
    delivery.attempts += 1;
    const at = this.clock.now();
    const payload = JSON.stringify({ ...delivery.event }, null, 2);
    const { endpoint } = delivery;
    let status: number | undefined;
    let error: string | undefined;
    try {
      status = await post(endpoint.url, payload, signPayload(payload, endpoint.secret, at), this.timeoutMs);
    } catch (e) {
      error = (e as Error).message;
    }
    const ok = status !== undefined && status >= 200 && status < 300;
    const record: DeliveryAttempt = {
      id: newId('whatt', 14), event: delivery.event.id, type: delivery.event.type, endpoint: endpoint.id, url: endpoint.url,
      attempt: delivery.attempts, at, ...(status !== undefined ? { status } : {}), ...(error !== undefined ? { error } : {}), ok, trigger,
    };
    this.attempts.push(record);
    if (ok) {
      delivery.nextAt = undefined;
      delivery.event.pending_webhooks = Math.max(0, delivery.event.pending_webhooks - (trigger === 'on-demand' ? 0 : 1));
    } else if (trigger !== 'on-demand') {
      // The n-th retry is due retrySchedule[n-1] seconds after the first attempt; then it gives up.
      const next = this.retrySchedule[delivery.attempts - 1];
      delivery.nextAt = next === undefined ? undefined : delivery.firstAt + next;
    }
    delivery.busy = false;
    return record;
  }
}

/** POSTs a payload as Stripe does; resolves with the response status (the body is drained). */
function post(url: string, payload: string, signature: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target,
      {
        method: 'POST',
        timeout: timeoutMs,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(payload),
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': signature,
          'cache-control': 'no-cache',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Test hooks over HTTP (`/_mock/…`, like the Checkout one): each answers once its deliveries did. */
export function webhookMockRoutes(dispatcher: WebhookDispatcher): Route[] {
  const list = (data: readonly DeliveryAttempt[], url: string) => ({ object: 'list', data, has_more: false, url });
  return [
    {
      method: 'POST',
      path: '/_mock/events/:id/deliver',
      fields: { endpoint: p.str() },
      handle: async ({ account, params, id }) => list(await wrap(() => dispatcher.deliver(account, id, params.endpoint)), `/_mock/events/${id}/deliver`),
    },
    {
      method: 'POST',
      path: '/_mock/webhook_endpoints/:id/deliver_events',
      fields: { events: p.req(p.arr(p.str(), { maxItems: 1000 })) },
      handle: async ({ account, params, id }) => list(await wrap(() => dispatcher.deliverInOrder(account, params.events, id)), `/_mock/webhook_endpoints/${id}/deliver_events`),
    },
    {
      method: 'GET',
      path: '/_mock/webhook_endpoints/:id/attempts',
      fields: {},
      handle: ({ account, id }) => {
        if (!account.get(id)) throw apiErrors.resourceMissing('webhook_endpoint', id, 'id', 404);
        return list(dispatcher.attempts.filter((a) => a.endpoint === id), `/_mock/webhook_endpoints/${id}/attempts`);
      },
    },
    {
      method: 'POST',
      path: '/_mock/webhooks/run_due',
      fields: {},
      handle: async () => list(await dispatcher.runDue(), '/_mock/webhooks/run_due'),
    },
  ];
}

async function wrap<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw apiErrors.invalid((e as Error).message, { code: 'resource_missing' });
  }
}
