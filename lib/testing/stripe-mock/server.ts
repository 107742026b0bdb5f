import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockClock } from './clock';
import { apiErrors, StripeApiError } from './errors';
import { decodeForm, type FormObject } from './form';
import { IdempotencyStore, type StoredResponse } from './idempotency';
import { newId } from './ids';
import { p, validateParams } from './params';
import { catalogRoutes } from './resources/catalog';
import { checkoutRoutes, completeCheckoutSession, renderCheckoutSession } from './resources/checkout';
import { customerRoutes } from './resources/customers';
import { invoiceRoutes } from './resources/invoices';
import { advancePeriod, billingCycleRoutes } from './resources/billing-cycle';
import { renderWebhookEndpoint, webhookEndpointRoutes } from './resources/webhook-endpoints';
import { WebhookDispatcher, webhookMockRoutes, type DeliveryAttempt, type WebhookDeliveryOptions } from './webhooks';
import { meterEventsOf, meterRoutes } from './resources/meters';
import { renderSubscription, renderSubscriptionItem, subscriptionRoutes } from './resources/subscriptions';
import type { Route } from './route';
import { MockAccount, type StripeObject } from './store';

export interface StripeMockServerOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0: a free port */
  readonly port?: number;
  /** The server's clock (tests advance it instead of sleeping). @default real time */
  readonly clock?: MockClock;
  /** Only these secret keys authenticate; others get 401 "Invalid API Key". @default any `sk_test_…`/`rk_test_…` key */
  readonly apiKeys?: readonly string[];
  /** Seconds before a created or changed object shows in search results (Stripe: usually under a minute). @default 0 */
  readonly searchLagSeconds?: number;
  /**
   * Awaited after a POST reserved its idempotency key and before it runs. A test returns a
   * pending promise to hold a request in flight (a second request with the key then gets 409).
   */
  readonly beforeExecute?: (request: MockRequest) => void | Promise<void>;
  /** Webhook retries (schedule on the server clock), attempt timeout, polling (see webhooks.ts). */
  readonly webhooks?: WebhookDeliveryOptions;
}

/** A request as the server saw it (parameters as decoded, before validation). */
export interface MockRequest {
  readonly method: string;
  readonly path: string;
  readonly apiKey: string;
  readonly idempotencyKey?: string;
  readonly params: FormObject;
}

export interface MockRequestRecord extends MockRequest {
  readonly requestId: string;
  readonly status: number;
  readonly replayed: boolean;
}

/** The Stripe-Version this server's objects follow (the one stripe@23 pins). */
export const MOCK_API_VERSION = '2026-10-28.endive';

const MAX_BODY_BYTES = 1024 * 1024;

const mockRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/_mock/checkout/sessions/:id/complete',
    fields: { payment_method: p.str(), expand: p.expand() },
    handle: ({ account, params, id, now }) => account.render(completeCheckoutSession(account, id, { paymentMethod: params.payment_method, now })),
  },
];

interface CompiledRoute {
  readonly route: Route;
  readonly pattern: RegExp;
}

/**
 * A local, Stripe-API-compatible HTTP server for tests and benchmarks: the wire format of
 * api.stripe.com (form-encoded parameters with bracketed keys, Bearer test keys, JSON objects
 * with Stripe's ids and shapes, Stripe's error bodies and statuses), Stripe's idempotency keys,
 * and strict parameter checking, for the endpoints lib/billing uses (see README "Billing").
 * Point the official SDK at it:
 *
 *   const server = await StripeMockServer.start();
 *   const stripe = new Stripe('sk_test_123', server.stripeConfig());
 *   …
 *   await server.stop();
 */
export class StripeMockServer {
  readonly clock: MockClock;
  /** Every request, in order (for asserting what a client sent). */
  readonly requests: MockRequestRecord[] = [];
  /** Signed webhook delivery of every account's events, with retries and test hooks (webhooks.ts). */
  readonly webhooks: WebhookDispatcher;
  private readonly accounts = new Map<string, MockAccount>();
  private readonly idempotency = new IdempotencyStore();
  private readonly routes: readonly CompiledRoute[];
  private stopped = false;

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
    private readonly options: StripeMockServerOptions,
    clock: MockClock,
  ) {
    this.clock = clock;
    this.webhooks = new WebhookDispatcher(clock, options.webhooks);
    this.routes = [...catalogRoutes, ...customerRoutes, ...subscriptionRoutes, ...invoiceRoutes, ...checkoutRoutes, ...meterRoutes, ...webhookEndpointRoutes, ...billingCycleRoutes, ...webhookMockRoutes(this.webhooks), ...mockRoutes].map((route) => ({
      route,
      pattern: new RegExp(`^${route.path.replace(/:id/g, '([^/]+)')}$`),
    }));
  }

  static async start(options: StripeMockServerOptions = {}): Promise<StripeMockServer> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const mock = new StripeMockServer(server, host, port, options, options.clock ?? new MockClock());
    server.on('request', (req, res) => void mock.handle(req, res));
    return mock;
  }

  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** The connection part of the SDK's config: `new Stripe(key, server.stripeConfig())`. */
  stripeConfig(): { host: string; port: number; protocol: 'http' } {
    return { host: this.host, port: this.port, protocol: 'http' };
  }

  /** The objects of the account behind an API key (created on first use). */
  account(apiKey: string): MockAccount {
    let account = this.accounts.get(apiKey);
    if (!account) {
      account = new MockAccount(
        apiKey,
        { subscription: renderSubscription, subscription_item: renderSubscriptionItem, 'checkout.session': renderCheckoutSession, webhook_endpoint: renderWebhookEndpoint },
        this.options.searchLagSeconds ?? 0,
        MOCK_API_VERSION,
      );
      const created = account;
      account.onEvent = (event) => this.webhooks.dispatch(created, event);
      this.accounts.set(apiKey, account);
    }
    return account;
  }

  /** Every object of a type in an account, as the API renders it, newest first. */
  objects(apiKey: string, object: string): Record<string, any>[] {
    const account = this.account(apiKey);
    return account.all(object).map((o: StripeObject) => account.render(o));
  }

  /** Every meter event the account accepted, in arrival order, as the API returned it (refused and deduplicated ones are not in it). */
  meterEvents(apiKey: string): Record<string, any>[] {
    return meterEventsOf(this.account(apiKey));
  }

  /** Stands in for the customer paying on the Checkout page (see resources/checkout.ts). */
  completeCheckoutSession(apiKey: string, sessionId: string, options: { paymentMethod?: string } = {}): Record<string, any> {
    const account = this.account(apiKey);
    return account.render(completeCheckoutSession(account, sessionId, { ...options, now: this.clock.now() }));
  }

  /** Stands in for the subscription's period ending: renewal invoice, charge, events (resources/billing-cycle.ts). */
  advanceSubscriptionPeriod(apiKey: string, subscriptionId: string, options: { failPayment?: boolean } = {}): Record<string, any> {
    const account = this.account(apiKey);
    return account.render(advancePeriod(account, subscriptionId, options.failPayment === true, this.clock.now()));
  }

  /** Every event of an account, oldest first. */
  events(apiKey: string): Record<string, any>[] {
    return this.objects(apiKey, 'event').reverse();
  }

  /** Delivers events (again) now, one after the other in this order; resolves with the attempts. */
  deliverEvents(apiKey: string, eventIds: readonly string[], endpointId?: string): Promise<DeliveryAttempt[]> {
    return this.webhooks.deliverInOrder(this.account(apiKey), eventIds, endpointId);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.webhooks.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newId('req', 14);
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://stripe-mock.invalid');
    const version = headerOf(req, 'stripe-version') ?? MOCK_API_VERSION;
    const idempotencyKey = method === 'POST' ? headerOf(req, 'idempotency-key') : undefined;
    const base: Record<string, string> = {
      'request-id': requestId,
      'stripe-version': version,
      ...(idempotencyKey !== undefined ? { 'idempotency-key': idempotencyKey } : {}),
    };
    let apiKey = '';
    let params: FormObject = {};
    try {
      const body = await readBody(req);
      if (method === 'GET' && url.pathname.startsWith('/c/pay/')) return this.checkoutPage(res, decodeURIComponent(url.pathname.slice('/c/pay/'.length)));
      apiKey = this.authenticate(headerOf(req, 'authorization'));
      // Objects here have the shapes of API versions since 2025-03-31.basil (e.g. current_period_* on
      // subscription items, invoice line `parent`/`pricing`); an older pinned version would get
      // shapes it does not expect from real Stripe, so it is refused rather than misled.
      if (/^\d{4}-\d{2}-\d{2}/.test(version) && version.slice(0, 10) < '2025-03-31') {
        throw apiErrors.notImplemented(`Stripe-Version ${version} (this server returns the shapes of ${MOCK_API_VERSION}; versions before 2025-03-31.basil differ)`);
      }
      const match = this.match(method, url.pathname);
      if (!match) throw apiErrors.unrecognizedUrl(method, url.pathname);
      if (method === 'POST' && body !== '' && !/^application\/x-www-form-urlencoded\b/i.test(headerOf(req, 'content-type') ?? '')) {
        throw apiErrors.invalid(`Invalid request: unsupported Content-Type ${headerOf(req, 'content-type') ?? '(none)'}. Stripe expects application/x-www-form-urlencoded.`);
      }
      params = method === 'POST' ? { ...decodeForm(url.search.slice(1)), ...decodeForm(body) } : decodeForm(url.search.slice(1));
      const account = this.account(apiKey);
      const request: MockRequest = { method, path: url.pathname, apiKey, idempotencyKey, params };

      if (idempotencyKey !== undefined) {
        const outcome = this.idempotency.begin(apiKey, idempotencyKey, `${method} ${url.pathname}`, stableJson(params), this.clock.now());
        if (outcome.kind === 'replay') {
          this.log(request, requestId, outcome.response.status, true);
          return send(res, outcome.response.status, outcome.response.body, { ...base, ...outcome.response.headers, 'idempotent-replayed': 'true', 'original-request': outcome.response.requestId });
        }
      }
      let response: StoredResponse;
      try {
        await this.options.beforeExecute?.(request);
        const validated = validateParams(params, match.route.fields);
        response = await this.execute(match.route, account, validated, match.id, requestId);
      } catch (e) {
        // Nothing executed (invalid parameters, a failed hold): the key stays free for a retry.
        if (idempotencyKey !== undefined) this.idempotency.abandon(apiKey, idempotencyKey);
        throw e;
      }
      if (idempotencyKey !== undefined) this.idempotency.finish(apiKey, idempotencyKey, response);
      this.log(request, requestId, response.status, false);
      send(res, response.status, response.body, { ...base, ...response.headers });
    } catch (e) {
      const error = e instanceof StripeApiError ? e : new StripeApiError(500, { type: 'api_error', message: `stripe-mock-server internal error: ${(e as Error).message}` });
      this.log({ method, path: url.pathname, apiKey, idempotencyKey, params }, requestId, error.statusCode, false);
      send(res, error.statusCode, JSON.stringify(error.toJSON(), null, 2), {
        ...base,
        ...error.headers,
        ...(error.statusCode === 401 ? { 'www-authenticate': 'Bearer realm="Stripe"' } : {}),
      });
    }
  }

  /** Runs an endpoint; an error raised while it executes is its (saved, replayable) response. */
  private async execute(route: Route, account: MockAccount, params: Record<string, any>, id: string, requestId: string): Promise<StoredResponse> {
    try {
      const out = await route.handle({ account, params, id, now: this.clock.now(), baseUrl: this.url });
      return { status: 200, body: JSON.stringify(account.expand(out, params.expand), null, 2), requestId };
    } catch (e) {
      const error = e instanceof StripeApiError ? e : new StripeApiError(500, { type: 'api_error', message: `stripe-mock-server internal error: ${(e as Error).message}` });
      return { status: error.statusCode, body: JSON.stringify(error.toJSON(), null, 2), requestId, headers: error.headers };
    }
  }

  private match(method: string, path: string): { route: Route; id: string } | undefined {
    for (const { route, pattern } of this.routes) {
      if (route.method !== method) continue;
      const m = pattern.exec(path);
      if (m) {
        try {
          return { route, id: m[1] === undefined ? '' : decodeURIComponent(m[1]) };
        } catch {
          throw apiErrors.unrecognizedUrl(method, path);
        }
      }
    }
    return undefined;
  }

  private authenticate(header: string | undefined): string {
    if (!header) {
      throw apiErrors.authentication(
        "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      );
    }
    let key: string | undefined;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const basic = /^Basic\s+(\S+)\s*$/i.exec(header);
    if (bearer) key = bearer[1];
    else if (basic) key = Buffer.from(basic[1], 'base64').toString('utf8').split(':')[0];
    if (!key) throw apiErrors.authentication('Invalid Authorization header: expected "Bearer sk_test_…" (or Basic auth with the key as user name).');
    if (key.startsWith('pk_')) {
      throw apiErrors.authentication('This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.');
    }
    if (/^(sk|rk)_live_/.test(key)) throw apiErrors.authentication('stripe-mock-server accepts test-mode keys only (sk_test_…); it never needs a live key.');
    if (!/^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key) || (this.options.apiKeys && !this.options.apiKeys.includes(key))) {
      throw apiErrors.authentication(`Invalid API Key provided: ${maskKey(key)}`);
    }
    return key;
  }

  private checkoutPage(res: ServerResponse, id: string): void {
    for (const account of this.accounts.values()) {
      const session = account.get(id, 'checkout.session');
      if (session) {
        const html = `<!doctype html><title>stripe-mock-server Checkout</title><p>Checkout Session ${escapeHtml(id)}: ${escapeHtml(session.status)}.</p>` +
          `<p>Nobody pays here: complete it with <code>POST /_mock/checkout/sessions/${escapeHtml(id)}/complete</code> (test card <code>pm_card_visa</code>).</p>`;
        return send(res, 200, html, { 'content-type': 'text/html; charset=utf-8' });
      }
    }
    send(res, 404, 'No such Checkout Session', { 'content-type': 'text/plain' });
  }

  private log(request: MockRequest, requestId: string, status: number, replayed: boolean): void {
    this.requests.push({ ...request, apiKey: request.apiKey ? maskKey(request.apiKey) : '', requestId, status, replayed });
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw apiErrors.invalid(`Request body larger than ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-cache, no-store', ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** `sk_test_****…abcd`, as Stripe shows keys in errors. */
export function maskKey(key: string): string {
  const m = /^([a-z]{2}_(?:test|live)_)(.*)$/.exec(key);
  if (!m) return `${key.slice(0, 3)}****`;
  return `${m[1]}${'*'.repeat(Math.max(0, m[2].length - 4))}${m[2].slice(-4)}`;
}

/** JSON with sorted keys: two requests with the same parameters in another order are the same request. */
function stableJson(v: unknown): string {
  const stable = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(stable) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, stable((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(stable(v));
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
