import { randomBytes } from 'node:crypto';
import { apiErrors } from '../errors';
import { newId } from '../ids';
import { checkUrl, p } from '../params';
import type { Route } from '../route';
import { mergeMetadata, newMetadata, type MockAccount, type StripeObject } from '../store';

/**
 * Webhook endpoints (create, retrieve, update, delete, list) and events (retrieve, list). The
 * endpoint's signing `secret` (whsec_…) is in the create response only, as with Stripe. Events
 * are those this server emits (see EMITTED_EVENT_TYPES); subscribing to another real event type
 * is refused as not implemented rather than accepted and never sent.
 */

/** The event types this server emits, from the state changes it models. */
export const EMITTED_EVENT_TYPES = [
  'checkout.session.completed',
  'checkout.session.expired',
  'customer.subscription.created',
  'customer.subscription.deleted',
  'customer.subscription.updated',
  'invoice.paid',
  'invoice.payment_failed',
  'invoice.payment_succeeded',
] as const;

/** Stripe's limit of webhook endpoints per account (test mode). */
const MAX_ENDPOINTS = 16;
const EVENT_TYPE = /^[a-z_]+(?:\.[a-z_]+)+$/;

function requireEndpoint(account: MockAccount, id: string): StripeObject {
  const endpoint = account.get(id, 'webhook_endpoint');
  if (!endpoint) throw apiErrors.resourceMissing('webhook_endpoint', id, 'id', 404);
  return endpoint;
}

function checkEnabledEvents(events: readonly string[] | null | undefined): string[] {
  if (!events || events.length === 0) throw apiErrors.parameterMissing('enabled_events');
  events.forEach((type, i) => {
    const param = `enabled_events[${i}]`;
    if (type === '*') return;
    if (!EVENT_TYPE.test(type)) throw apiErrors.invalid(`Invalid ${param}: "${type}" is not a valid event type.`, { param });
    if (!(EMITTED_EVENT_TYPES as readonly string[]).includes(type)) throw apiErrors.notImplemented(`the event type ${type} (it emits ${EMITTED_EVENT_TYPES.join(', ')})`, param);
  });
  if (events.includes('*') && events.length > 1) throw apiErrors.invalid('enabled_events: "*" enables every event and cannot be combined with other types.', { param: 'enabled_events' });
  return [...new Set(events)];
}

/** The endpoint JSON without its secret (only the create response has it). */
export function renderWebhookEndpoint(_account: MockAccount, endpoint: StripeObject): Record<string, unknown> {
  const out = structuredClone(endpoint) as Record<string, unknown>;
  delete out.secret;
  return out;
}

export const webhookEndpointRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/webhook_endpoints',
    fields: {
      url: p.req(p.str({ check: checkUrl })),
      enabled_events: p.req(p.arr(p.str({ maxLength: 5000 }))),
      api_version: p.str(),
      description: p.str({ maxLength: 5000, emptyable: true }),
      metadata: p.metadata(),
      expand: p.expand(),
      ...p.unsupported('connect'),
    },
    handle: ({ account, params, now }) => {
      const enabled = checkEnabledEvents(params.enabled_events);
      if (account.all('webhook_endpoint').length >= MAX_ENDPOINTS) {
        throw apiErrors.invalid(`You have reached the maximum of ${MAX_ENDPOINTS} test webhook endpoints.`, { param: 'url' });
      }
      const endpoint = account.add<StripeObject>(
        {
          id: newId('we', 24),
          object: 'webhook_endpoint',
          api_version: params.api_version ?? null,
          application: null,
          created: now,
          description: params.description ?? null,
          enabled_events: enabled,
          livemode: false,
          metadata: newMetadata(params.metadata),
          secret: `whsec_${randomBytes(24).toString('base64url')}`,
          status: 'enabled',
          url: params.url,
        },
        now,
      );
      return { ...renderWebhookEndpoint(account, endpoint), secret: endpoint.secret };
    },
  },
  { method: 'GET', path: '/v1/webhook_endpoints/:id', fields: { expand: p.expand() }, handle: ({ account, id }) => account.render(requireEndpoint(account, id)) },
  {
    method: 'POST',
    path: '/v1/webhook_endpoints/:id',
    fields: {
      url: p.str({ check: checkUrl }),
      enabled_events: p.arr(p.str({ maxLength: 5000 })),
      disabled: p.bool(),
      description: p.str({ maxLength: 5000, emptyable: true }),
      metadata: p.metadata(),
      expand: p.expand(),
    },
    handle: ({ account, params, id, now }) => {
      const endpoint = requireEndpoint(account, id);
      if (params.enabled_events !== undefined) endpoint.enabled_events = checkEnabledEvents(params.enabled_events);
      if (params.url !== undefined) endpoint.url = params.url;
      if (params.disabled !== undefined) endpoint.status = params.disabled ? 'disabled' : 'enabled';
      if (params.description !== undefined) endpoint.description = params.description;
      endpoint.metadata = mergeMetadata(endpoint.metadata, params.metadata);
      account.touch(endpoint, now);
      return account.render(endpoint);
    },
  },
  {
    method: 'DELETE',
    path: '/v1/webhook_endpoints/:id',
    fields: {},
    handle: ({ account, id, now }) => {
      const endpoint = requireEndpoint(account, id);
      // Deleted endpoints get nothing more; the object stays only as a tombstone nobody lists.
      endpoint.status = 'disabled';
      endpoint.object = 'deleted_webhook_endpoint';
      account.touch(endpoint, now);
      return { id, object: 'webhook_endpoint', deleted: true };
    },
  },
  {
    method: 'GET',
    path: '/v1/webhook_endpoints',
    fields: { expand: p.expand(), ...p.pagination() },
    handle: ({ account, params }) => account.list(account.all('webhook_endpoint'), params, '/v1/webhook_endpoints', 'webhook_endpoint'),
  },
  {
    method: 'GET',
    path: '/v1/events/:id',
    fields: { expand: p.expand() },
    handle: ({ account, id }) => {
      const event = account.get(id, 'event');
      if (!event) throw apiErrors.resourceMissing('event', id, 'id', 404);
      return account.render(event);
    },
  },
  {
    method: 'GET',
    path: '/v1/events',
    fields: {
      type: p.str(),
      types: p.arr(p.str(), { maxItems: 20 }),
      expand: p.expand(),
      ...p.pagination(),
      ...p.unsupported('created', 'delivery_success'),
    },
    handle: ({ account, params }) => {
      if (params.type !== undefined && params.types !== undefined) throw apiErrors.parametersExclusive(['type', 'types']);
      // `type` may end in `.*` (every event of a resource), as with Stripe.
      const matches = (t: string) =>
        params.type !== undefined ? (params.type.endsWith('.*') ? t.startsWith(params.type.slice(0, -1)) : t === params.type) : params.types === undefined || params.types.includes(t);
      return account.list(account.all('event').filter((e) => matches(e.type)), params, '/v1/events', 'event');
    },
  },
];
