import { apiErrors } from '../errors';
import { newId } from '../ids';
import { checkUrl, exclusive, p } from '../params';
import type { Route } from '../route';
import type { MockAccount, StripeObject } from '../store';
import { newMetadata } from '../store';
import { requirePrice } from './catalog';
import { attachPaymentMethod, requireCustomer } from './customers';
import { createSubscription, itemQuantity } from './subscriptions';

/**
 * Checkout Sessions in `subscription` mode (and `payment` mode: one-time prices, paid at once on
 * completion, e.g. a credit top-up): create (line items of recurring prices, success
 * and cancel URLs, customer, subscription_data with metadata and trial_period_days), retrieve,
 * list, expire. Its `url` points at this server. Nobody pays here, so
 * {@link completeCheckoutSession} (and `POST /_mock/checkout/sessions/:id/complete`) stands in for
 * the customer: it attaches a test card to the customer and creates the subscription the way
 * Checkout does (the card becomes the subscription's default payment method).
 */

const DAY = 86_400;

function refreshExpiry(session: StripeObject, now: number): StripeObject {
  if (session.status === 'open' && session.expires_at <= now) {
    session.status = 'expired';
    session.url = null;
  }
  return session;
}

function requireSession(account: MockAccount, id: string, status = 404): StripeObject {
  const session = account.get(id, 'checkout.session');
  if (!session) throw apiErrors.resourceMissing('checkout.session', id, 'session', status);
  return session;
}

/** What the customer does on the Checkout page: pay with a test card (default pm_card_visa). */
export function completeCheckoutSession(account: MockAccount, id: string, options: { paymentMethod?: string; now: number }): StripeObject {
  const session = refreshExpiry(requireSession(account, id), options.now);
  if (session.status !== 'open') throw apiErrors.invalid(`Checkout Session ${id} is ${session.status}, not open.`, { param: 'session' });
  const customer = requireCustomer(account, session.customer, 'customer');
  const pm = attachPaymentMethod(account, options.paymentMethod ?? 'pm_card_visa', customer, 'payment_method', options.now);
  if (session.mode === 'payment') {
    // A one-time payment: charged at once (a declining card fails here, the session stays open).
    if (account.decliningPaymentMethods.has(pm.id)) throw apiErrors.cardDeclined();
    Object.assign(session, { status: 'complete', payment_status: 'paid', payment_intent: newId('pi'), url: null });
    account.touch(session, options.now);
    account.emit('checkout.session.completed', session, options.now);
    return session;
  }
  const data = session._subscription_data as { metadata?: Record<string, string>; trial_period_days?: number; description?: string };
  const sub = createSubscription(
    account,
    {
      customer: customer.id,
      items: session._line_items.map((li: { price: string; quantity: number }) => ({ price: li.price, quantity: li.quantity })),
      default_payment_method: pm.id,
      payment_behavior: 'error_if_incomplete',
      metadata: data.metadata,
      trial_period_days: data.trial_period_days,
      description: data.description,
    },
    options.now,
  );
  const invoice = account.get(sub.latest_invoice, 'invoice')!;
  Object.assign(session, {
    status: 'complete',
    payment_status: invoice.amount_due === 0 ? 'no_payment_required' : 'paid',
    subscription: sub.id,
    invoice: invoice.id,
    url: null,
  });
  account.touch(session, options.now);
  account.emit('checkout.session.completed', session, options.now);
  return session;
}

function renderSession(account: MockAccount, session: StripeObject, now: number): Record<string, unknown> {
  return account.render(refreshExpiry(session, now));
}

/** The session JSON, without what this server keeps for completing it. */
export function renderCheckoutSession(_account: MockAccount, session: StripeObject): Record<string, unknown> {
  const out = structuredClone(session) as Record<string, unknown>;
  delete out._line_items;
  delete out._subscription_data;
  return out;
}

export const checkoutRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/checkout/sessions',
    fields: {
      mode: p.req(p.oneOf(['payment', 'setup', 'subscription'])),
      line_items: p.arr(
        p.obj({
          price: p.str(),
          quantity: p.int({ min: 1 }),
          ...p.unsupported('adjustable_quantity', 'dynamic_tax_rates', 'metadata', 'price_data', 'tax_rates'),
        }),
      ),
      success_url: p.str({ check: checkUrl }),
      cancel_url: p.str({ check: checkUrl }),
      customer: p.str(),
      customer_email: p.str(),
      client_reference_id: p.str({ maxLength: 200 }),
      metadata: p.metadata(),
      subscription_data: p.obj({
        metadata: p.metadata(),
        trial_period_days: p.int({ min: 1, max: 730 }),
        description: p.str({ maxLength: 500 }),
        ...p.unsupported(
          'application_fee_percent', 'billing_cycle_anchor', 'billing_cycle_anchor_config', 'billing_mode', 'default_tax_rates', 'invoice_settings', 'on_behalf_of',
          'pending_invoice_item_interval', 'proration_behavior', 'transfer_data', 'trial_end', 'trial_settings',
        ),
      }),
      ui_mode: p.oneOf(['elements', 'embedded_page', 'form', 'hosted_page']),
      expires_at: p.int(),
      allow_promotion_codes: p.bool(),
      billing_address_collection: p.oneOf(['auto', 'required']),
      locale: p.str(),
      payment_method_collection: p.oneOf(['always', 'if_required']),
      expand: p.expand(),
      ...p.unsupported(
        'adaptive_pricing', 'after_expiration', 'allowed_payment_method_types', 'automatic_tax', 'branding_settings', 'consent_collection', 'currency', 'custom_fields',
        'custom_text', 'customer_account', 'customer_creation', 'customer_update', 'discounts', 'excluded_payment_method_types', 'integration_identifier', 'invoice_creation',
        'managed_payments', 'name_collection', 'optional_items', 'origin_context', 'payment_intent_data', 'payment_method_configuration', 'payment_method_data',
        'payment_method_options', 'payment_method_types', 'permissions', 'phone_number_collection', 'redirect_on_completion', 'return_url', 'saved_payment_method_options',
        'setup_intent_data', 'shipping_address_collection', 'shipping_options', 'submit_type', 'tax_id_collection', 'wallet_options',
      ),
    },
    handle: ({ account, params, now, baseUrl }) => {
      exclusive(params, ['customer', 'customer_email']);
      if (params.mode === 'setup') throw apiErrors.notImplemented(`Checkout Sessions in ${params.mode} mode`, 'mode');
      if (params.mode === 'payment' && params.subscription_data !== undefined) throw apiErrors.invalid('You can not pass `subscription_data` in `payment` mode.', { param: 'subscription_data' });
      if ((params.ui_mode ?? 'hosted_page') !== 'hosted_page') throw apiErrors.notImplemented(`ui_mode=${params.ui_mode}`, 'ui_mode');
      if (params.customer === undefined) throw apiErrors.notImplemented('Checkout Sessions without an existing customer', 'customer');
      const customer = requireCustomer(account, params.customer, 'customer');
      const lineItems: { price: string; quantity?: number }[] = params.line_items ?? [];
      if (lineItems.length === 0) throw apiErrors.parameterMissing('line_items');
      const prices = lineItems.map((li, i) => {
        if (li.price === undefined) throw apiErrors.parameterMissing(`line_items[${i}][price]`);
        const price = requirePrice(account, li.price, `line_items[${i}][price]`);
        // A metered price takes no quantity (its usage comes from its meter), every other one needs one.
        if (price.recurring?.usage_type === 'metered') itemQuantity(price, li.quantity, 0, `line_items[${i}][quantity]`);
        else if (li.quantity === undefined) throw apiErrors.parameterMissing(`line_items[${i}][quantity]`);
        if (!price.active) throw apiErrors.invalid(`The price ${price.id} is not active.`, { param: `line_items[${i}][price]` });
        return price;
      });
      if (params.mode === 'payment' && prices.some((pr) => pr.type === 'recurring')) {
        throw apiErrors.invalid('You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.', { param: 'line_items' });
      }
      if (params.mode === 'subscription' && !prices.some((pr) => pr.type === 'recurring')) {
        throw apiErrors.invalid('You must provide at least one recurring price in `subscription` mode when using prices.', { param: 'line_items' });
      }
      const expiresAt: number = params.expires_at ?? now + DAY;
      if (expiresAt < now + 30 * 60 || expiresAt > now + DAY) {
        throw apiErrors.invalid('The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.', { param: 'expires_at' });
      }
      const trial = params.subscription_data?.trial_period_days;
      const firstAmount = trial ? 0 : lineItems.reduce((sum, li, i) => sum + prices[i].unit_amount * (li.quantity ?? 0), 0);
      const id = newId('cs_test', 58);
      const session = account.add(
        {
          id,
          object: 'checkout.session',
          allow_promotion_codes: params.allow_promotion_codes ?? null,
          amount_subtotal: firstAmount,
          amount_total: firstAmount,
          automatic_tax: { enabled: false, liability: null, provider: null, status: null },
          billing_address_collection: params.billing_address_collection ?? null,
          cancel_url: params.cancel_url ?? null,
          client_reference_id: params.client_reference_id ?? null,
          client_secret: null,
          created: now,
          currency: prices[0].currency,
          customer: customer.id,
          customer_account: null,
          customer_creation: null,
          customer_details: { email: customer.email, name: customer.name },
          customer_email: null,
          expires_at: expiresAt,
          invoice: null,
          livemode: false,
          locale: params.locale ?? null,
          metadata: newMetadata(params.metadata),
          mode: params.mode,
          payment_intent: null,
          payment_link: null,
          payment_method_collection: params.payment_method_collection ?? 'always',
          payment_method_types: ['card'],
          payment_status: 'unpaid',
          setup_intent: null,
          status: 'open',
          subscription: null,
          success_url: params.success_url ?? null,
          ui_mode: 'hosted_page',
          url: `${baseUrl}/c/pay/${id}`,
          _line_items: lineItems.map((li) => ({ price: li.price, quantity: li.quantity })),
          _subscription_data: { metadata: params.subscription_data?.metadata ?? undefined, trial_period_days: trial, description: params.subscription_data?.description },
        },
        now,
      );
      return renderSession(account, session, now);
    },
  },
  { method: 'GET', path: '/v1/checkout/sessions/:id', fields: { expand: p.expand() }, handle: ({ account, id, now }) => renderSession(account, requireSession(account, id), now) },
  {
    method: 'POST',
    path: '/v1/checkout/sessions/:id/expire',
    fields: { expand: p.expand() },
    handle: ({ account, id, now }) => {
      const session = refreshExpiry(requireSession(account, id), now);
      if (session.status !== 'open') throw apiErrors.invalid(`Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status}".`, { param: 'session' });
      Object.assign(session, { status: 'expired', url: null });
      account.touch(session, now);
      account.emit('checkout.session.expired', session, now);
      return renderSession(account, session, now);
    },
  },
  {
    method: 'GET',
    path: '/v1/checkout/sessions',
    fields: {
      customer: p.str(),
      status: p.oneOf(['complete', 'expired', 'open']),
      subscription: p.str(),
      expand: p.expand(),
      ...p.pagination(),
      ...p.unsupported('created', 'customer_account', 'customer_details', 'payment_intent', 'payment_link'),
    },
    handle: ({ account, params, now }) => {
      const sessions = account
        .all('checkout.session')
        .map((s) => refreshExpiry(s, now))
        .filter((s) => (params.customer === undefined || s.customer === params.customer) && (params.status === undefined || s.status === params.status) && (params.subscription === undefined || s.subscription === params.subscription));
      return account.list(sessions, params, '/v1/checkout/sessions', 'checkout.session');
    },
  },
];
