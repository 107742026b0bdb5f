import { apiErrors } from '../errors';
import { newId } from '../ids';
import { exclusive, p, type Params } from '../params';
import type { Route } from '../route';
import { mergeMetadata, newMetadata, previousAttributes, type MockAccount, type StripeObject } from '../store';
import { periodEnd, prorate, formatDate } from './billing-math';
import { requirePrice } from './catalog';
import { requireAttachedPaymentMethod, requireCustomer } from './customers';
import { subscriptionItemUpdate } from './subscription-item-params';
import { addPendingInvoiceItems, invoiceJson, prorationLines, type LineSpec } from './invoices';

/**
 * Subscriptions: create (items, trial_period_days/trial_end, payment_behavior, metadata),
 * retrieve, update (items with proration_behavior and proration_date, metadata,
 * cancel_at_period_end), cancel, list. Payment follows Stripe's rules for
 * `collection_method=charge_automatically`: a first invoice above zero is charged to the
 * subscription's or the customer's default payment method; with none, `error_if_incomplete`
 * fails with Stripe's "no attached payment source or default payment method" (400) and a
 * declined card with a 402 card_error — nothing is created — while `allow_incomplete` and
 * `default_incomplete` create an `incomplete` subscription with an open invoice. Trials start
 * `trialing` with a paid $0 invoice and need no payment method. Billing periods do not advance
 * on their own (no renewals, no trial ends: use Stripe test clocks against real Stripe for that).
 */

const PAYMENT_BEHAVIORS = ['allow_incomplete', 'default_incomplete', 'error_if_incomplete', 'pending_if_incomplete'];
const PRORATION_BEHAVIORS = ['always_invoice', 'create_prorations', 'none'];
const ENDED = ['canceled', 'incomplete_expired'];

export function productName(account: MockAccount, price: StripeObject): string {
  return account.get(price.product, 'product')?.name ?? price.product;
}

/** The subscription's current period (every item shares it). */
export function subscriptionPeriod(account: MockAccount, sub: StripeObject): { start: number; end: number } {
  const item = account.get(sub.items[0], 'subscription_item')!;
  return { start: item.current_period_start, end: item.current_period_end };
}

/** One item before and after a change (undefined: added or removed). */
export interface ItemChange {
  readonly itemId: string | null;
  readonly before?: { readonly price: StripeObject; readonly quantity: number };
  readonly after?: { readonly price: StripeObject; readonly quantity: number };
}

export interface PlannedItem {
  /** The existing item, or undefined for a new one. */
  readonly itemId?: string;
  readonly price: StripeObject;
  readonly quantity: number;
  readonly metadata: Record<string, string>;
}

/**
 * The items a subscription would have after `items[]` (create, update or preview), checked as
 * Stripe checks them: ids of this subscription, existing active recurring prices, one item per
 * price, one currency, one billing interval.
 */
export function planItems(account: MockAccount, sub: StripeObject | undefined, items: readonly any[], prefix: string, customer: StripeObject): { next: PlannedItem[]; changes: ItemChange[] } {
  const current = new Map<string, StripeObject>();
  for (const id of sub?.items ?? []) current.set(id, account.get(id, 'subscription_item')!);
  const next = new Map<string, PlannedItem>();
  for (const [id, item] of current) next.set(id, { itemId: id, price: account.get(item.price, 'price')!, quantity: item.quantity, metadata: item.metadata });
  const seen = new Set<string>();
  items.forEach((raw, i) => {
    const at = (field: string) => `${prefix}[${i}][${field}]`;
    exclusive(raw, ['price', 'price_data', 'plan']);
    if (raw.id !== undefined) {
      const existing = current.get(raw.id);
      if (!existing) throw apiErrors.invalid(`No such subscription item: '${raw.id}'${sub ? ` on subscription ${sub.id}` : ''}`, { code: 'resource_missing', param: at('id') });
      if (seen.has(raw.id)) throw apiErrors.invalid(`The subscription item ${raw.id} appears more than once in ${prefix}.`, { param: at('id') });
      seen.add(raw.id);
      if (raw.deleted) {
        next.delete(raw.id);
        return;
      }
      const before = next.get(raw.id)!;
      const price = raw.price !== undefined ? checkPrice(account, raw.price, at('price')) : before.price;
      next.set(raw.id, { itemId: raw.id, price, quantity: itemQuantity(price, raw.quantity, before.price.recurring.usage_type === 'metered' ? 1 : before.quantity, at('quantity')), metadata: mergeMetadata(before.metadata, raw.metadata) });
      return;
    }
    if (raw.deleted) throw apiErrors.parameterMissing(at('id'));
    if (raw.price === undefined) throw apiErrors.parameterMissing(at('price'));
    const price = checkPrice(account, raw.price, at('price'));
    next.set(`new:${i}`, { price, quantity: itemQuantity(price, raw.quantity, 1, at('quantity')), metadata: newMetadata(raw.metadata) });
  });
  const planned = [...next.values()];
  if (planned.length === 0) throw apiErrors.invalid(`A subscription needs at least one item; cancel it instead of deleting all of ${prefix}.`, { param: prefix });
  const prices = new Set<string>();
  const first = planned[0].price;
  const currency = sub?.currency ?? customer.currency ?? first.currency;
  for (const item of planned) {
    if (prices.has(item.price.id)) throw apiErrors.invalid(`Cannot add multiple subscription items with the same price: ${item.price.id}`, { param: prefix });
    prices.add(item.price.id);
    if (item.price.currency !== currency) {
      throw apiErrors.invalid(
        sub || !customer.currency
          ? `Currency and interval fields must match across all prices on a subscription: ${item.price.id} is in ${item.price.currency}, not ${currency}.`
          : `You cannot combine currencies on a single customer. This customer has had a subscription or payment in ${currency}, but you are trying to pay in ${item.price.currency}.`,
        { param: sub || !customer.currency ? prefix : 'currency' },
      );
    }
    if (item.price.recurring.interval !== first.recurring.interval || item.price.recurring.interval_count !== first.recurring.interval_count) {
      throw apiErrors.invalid('Currency and interval fields must match across all prices on a subscription.', { param: prefix });
    }
  }
  if (sub) {
    const old = account.get(account.get(sub.items[0], 'subscription_item')!.price, 'price')!;
    if (old.recurring.interval !== first.recurring.interval || old.recurring.interval_count !== first.recurring.interval_count) {
      throw apiErrors.notImplemented('changing the billing interval of a subscription', prefix);
    }
  }
  const changes: ItemChange[] = [];
  for (const [id, item] of current) {
    const after = next.get(id);
    const beforePrice = account.get(item.price, 'price')!;
    if (after && after.price.id === beforePrice.id && after.quantity === item.quantity) continue;
    changes.push({ itemId: id, before: { price: beforePrice, quantity: item.quantity }, after: after && { price: after.price, quantity: after.quantity } });
  }
  for (const item of planned) if (!item.itemId) changes.push({ itemId: null, after: { price: item.price, quantity: item.quantity } });
  return { next: planned, changes };
}

/**
 * A metered item has no quantity (its usage comes from its meter): Stripe refuses one, and here it
 * is kept as 0 so that every amount of the item (first invoice, prorations, renewals) is 0: Stripe
 * bills the meter's usage in arrears, which this server does not invoice.
 */
export function itemQuantity(price: StripeObject, given: number | undefined, fallback: number, param: string): number {
  if (price.recurring?.usage_type !== 'metered') return given ?? fallback;
  if (given !== undefined) throw apiErrors.invalid(`Quantity should not be specified where usage_type is \`metered\`. Remove quantity from \`${param}\` and try again.`, { param });
  return 0;
}

function checkPrice(account: MockAccount, id: string, param: string): StripeObject {
  const price = requirePrice(account, id, param);
  if (!price.active) throw apiErrors.invalid(`The price specified is inactive. This field only accepts active prices.`, { param });
  if (price.type !== 'recurring') throw apiErrors.invalid('The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', { param });
  return price;
}

/** Which payment method pays a subscription's invoices: its own default, else the customer's. */
export function payingMethod(sub: { default_payment_method: string | null }, customer: StripeObject): string | null {
  return sub.default_payment_method ?? customer.invoice_settings.default_payment_method ?? null;
}

const noPaymentMethod = () =>
  apiErrors.invalid(
    'This customer has no attached payment source or default payment method. Please consider adding a default payment method. For more information, visit https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority.',
  );

/** Creates a subscription (the API endpoint, and Checkout when a session completes). */
export function createSubscription(account: MockAccount, params: Params, now: number): StripeObject {
  exclusive(params, ['trial_end', 'trial_period_days']);
  if (params.payment_behavior === 'pending_if_incomplete') throw apiErrors.invalid('payment_behavior=pending_if_incomplete can only be used when updating a subscription.', { param: 'payment_behavior' });
  if (params.collection_method === 'send_invoice') throw apiErrors.notImplemented('collection_method=send_invoice', 'collection_method');
  const customer = requireCustomer(account, params.customer, 'customer');
  const items: any[] = params.items ?? [];
  if (items.length === 0) throw apiErrors.parameterMissing('items');
  const planned = planItems(account, undefined, items, 'items', customer);
  const currency: string = planned.next[0].price.currency;
  if (params.currency !== undefined && params.currency.toLowerCase() !== currency) throw apiErrors.invalid(`The currency ${params.currency} does not match the currency of the prices (${currency}).`, { param: 'currency' });
  if (params.default_payment_method !== undefined) requireAttachedPaymentMethod(account, customer, params.default_payment_method, 'default_payment_method');

  let trialEnd: number | null = null;
  if (params.trial_period_days !== undefined && params.trial_period_days > 0) trialEnd = now + params.trial_period_days * 86_400;
  if (typeof params.trial_end === 'number') {
    if (params.trial_end <= now) throw apiErrors.invalid('Invalid timestamp: must be an integer Unix timestamp in the future.', { param: 'trial_end' });
    if (params.trial_end > now + 730 * 86_400) throw apiErrors.invalid('Invalid timestamp: can be no more than two years in the future.', { param: 'trial_end' });
    trialEnd = params.trial_end;
  }
  const periodStart = now;
  const end = trialEnd ?? periodEnd(planned.next[0].price, now);
  const amount = trialEnd ? 0 : planned.next.reduce((sum, n) => sum + n.price.unit_amount * n.quantity, 0);
  const pm = payingMethod({ default_payment_method: params.default_payment_method ?? null }, customer);
  const behavior: string = params.payment_behavior ?? 'allow_incomplete';
  let status: string;
  let invoiceStatus: 'paid' | 'open';
  if (trialEnd) [status, invoiceStatus] = ['trialing', 'paid'];
  else if (amount === 0) [status, invoiceStatus] = ['active', 'paid'];
  else if (pm && !account.decliningPaymentMethods.has(pm)) [status, invoiceStatus] = ['active', 'paid'];
  else if (behavior === 'error_if_incomplete') throw pm ? apiErrors.cardDeclined() : noPaymentMethod();
  else [status, invoiceStatus] = ['incomplete', 'open'];

  const subId = newId('sub');
  const itemObjects = planned.next.map((n) =>
    account.add(
      { id: newId('si', 14), object: 'subscription_item', created: now, current_period_end: end, current_period_start: periodStart, metadata: n.metadata, price: n.price.id, quantity: n.quantity, subscription: subId },
      now,
    ),
  );
  const sub = account.add<StripeObject>(
    {
      id: subId,
      object: 'subscription',
      application: null,
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null },
      billing_cycle_anchor: trialEnd ?? now,
      billing_cycle_anchor_config: null,
      billing_mode: { flexible: null, type: 'classic', updated_at: now },
      billing_thresholds: null,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: 'charge_automatically',
      created: now,
      currency,
      customer: customer.id,
      customer_account: null,
      days_until_due: null,
      default_payment_method: params.default_payment_method ?? null,
      default_source: null,
      default_tax_rates: [],
      description: params.description ?? null,
      discounts: [],
      ended_at: null,
      invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
      items: itemObjects.map((i) => i.id),
      latest_invoice: null,
      livemode: false,
      metadata: newMetadata(params.metadata),
      next_pending_invoice_item_invoice: null,
      on_behalf_of: null,
      pause_collection: null,
      payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
      pending_invoice_item_interval: null,
      pending_setup_intent: null,
      pending_update: null,
      schedule: null,
      start_date: now,
      status,
      test_clock: null,
      transfer_data: null,
      trial_end: trialEnd,
      trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
      trial_start: trialEnd ? now : null,
    },
    now,
  );
  const lines: LineSpec[] = planned.next.map((n, i) => ({
    amount: trialEnd ? 0 : n.price.unit_amount * n.quantity,
    description: trialEnd ? `Trial period for ${productName(account, n.price)}` : `${n.quantity} × ${productName(account, n.price)}`,
    period: { start: periodStart, end },
    price: n.price,
    quantity: n.quantity,
    proration: false,
    subscription: sub.id,
    subscriptionItem: itemObjects[i].id,
  }));
  const invoice = account.add(
    invoiceJson({ id: newId('in'), customer, subscription: sub, lines, currency, billingReason: 'subscription_create', status: invoiceStatus, periodStart, periodEnd: periodStart, now }),
    now,
  );
  sub.latest_invoice = invoice.id;
  customer.currency = currency;
  account.emit('customer.subscription.created', sub, now);
  if (invoiceStatus === 'paid') {
    account.emit('invoice.paid', invoice, now);
    account.emit('invoice.payment_succeeded', invoice, now);
  } else if (pm && behavior !== 'default_incomplete') account.emit('invoice.payment_failed', invoice, now);
  return sub;
}

/** Cancels at once (DELETE, or a deleted customer). */
export function cancelSubscriptionNow(account: MockAccount, sub: StripeObject, now: number): void {
  if (ENDED.includes(sub.status)) return;
  sub.status = 'canceled';
  sub.canceled_at = now;
  sub.ended_at = now;
  sub.cancel_at = null;
  sub.cancel_at_period_end = false;
  account.touch(sub, now);
  account.emit('customer.subscription.deleted', sub, now);
}

function requireSubscription(account: MockAccount, id: string): StripeObject {
  const sub = account.get(id, 'subscription');
  if (!sub) throw apiErrors.resourceMissing('subscription', id, 'id', 404);
  return sub;
}

function updateSubscription(account: MockAccount, sub: StripeObject, params: Params, now: number): void {
  const customer = account.get(sub.customer, 'customer')!;
  const before = account.render(sub);
  if (ENDED.includes(sub.status)) {
    const other = Object.keys(params).filter((k) => !['metadata', 'cancellation_details', 'expand'].includes(k));
    if (other.length > 0) throw apiErrors.invalid(`A canceled subscription can only update its cancellation_details and metadata.`, { param: other[0] });
  }
  if (params.payment_behavior === 'pending_if_incomplete') throw apiErrors.notImplemented('payment_behavior=pending_if_incomplete (pending updates)', 'payment_behavior');
  if (params.proration_behavior === 'always_invoice') throw apiErrors.notImplemented('proration_behavior=always_invoice (immediate proration invoices)', 'proration_behavior');
  if (params.trial_end !== undefined) throw apiErrors.notImplemented('changing trial_end on an existing subscription', 'trial_end');
  if (params.items !== undefined && sub.status === 'incomplete') {
    throw apiErrors.invalid('You cannot update a subscription in `incomplete` status in a way that results in a new invoice or invoice items. Only metadata and default_payment_method can be updated.', { param: 'items' });
  }
  const { start, end } = subscriptionPeriod(account, sub);
  if (params.proration_date !== undefined && (params.proration_date < start || params.proration_date > end)) {
    throw apiErrors.invalid(`proration_date must be within the subscription's current billing period (${start} to ${end}).`, { param: 'proration_date' });
  }
  if (params.default_payment_method !== undefined) requireAttachedPaymentMethod(account, customer, params.default_payment_method, 'default_payment_method');

  if (params.items !== undefined) {
    const planned = planItems(account, sub, params.items, 'items', customer);
    const at: number = params.proration_date ?? now;
    const behavior: string = params.proration_behavior ?? 'create_prorations';
    const newIds = new Map<PlannedItem, string>();
    const keep = new Set(planned.next.filter((n) => n.itemId).map((n) => n.itemId!));
    for (const n of planned.next) {
      if (n.itemId) {
        const item = account.get(n.itemId, 'subscription_item')!;
        Object.assign(item, { price: n.price.id, quantity: n.quantity, metadata: n.metadata });
      } else {
        const item = account.add(
          { id: newId('si', 14), object: 'subscription_item', created: now, current_period_end: end, current_period_start: start, metadata: n.metadata, price: n.price.id, quantity: n.quantity, subscription: sub.id },
          now,
        );
        newIds.set(n, item.id);
      }
    }
    sub.items = [...sub.items.filter((id: string) => keep.has(id)), ...newIds.values()];
    if (behavior === 'create_prorations' && sub.status !== 'trialing') {
      const changes = planned.changes.map((c) => (c.itemId ? c : { ...c, itemId: [...newIds.entries()].find(([n]) => n.price.id === c.after!.price.id)?.[1] ?? null }));
      addPendingInvoiceItems(account, customer.id, prorationLines(account, sub, changes, at, start, end), now);
    }
  }
  if (params.cancel_at_period_end !== undefined) {
    sub.cancel_at_period_end = params.cancel_at_period_end;
    sub.cancel_at = params.cancel_at_period_end ? end : null;
  }
  if (params.default_payment_method !== undefined) sub.default_payment_method = params.default_payment_method;
  if (params.description !== undefined) sub.description = params.description;
  if (params.cancellation_details !== undefined) sub.cancellation_details = { ...sub.cancellation_details, ...params.cancellation_details };
  sub.metadata = mergeMetadata(sub.metadata, params.metadata);
  account.touch(sub, now);
  const previous = previousAttributes(before, account.render(sub));
  if (Object.keys(previous).length > 0) account.emit('customer.subscription.updated', sub, now, previous);
}

function cancelSubscription(account: MockAccount, sub: StripeObject, params: Params, now: number): void {
  if (ENDED.includes(sub.status)) throw apiErrors.invalid(`This subscription has already been canceled (status ${sub.status}).`, { param: 'id' });
  if (params.invoice_now) throw apiErrors.notImplemented('invoice_now=true (a final invoice at cancellation)', 'invoice_now');
  if (params.prorate && sub.status !== 'trialing') {
    const { start, end } = subscriptionPeriod(account, sub);
    const lines: LineSpec[] = sub.items.map((id: string) => {
      const item = account.get(id, 'subscription_item')!;
      const price = account.get(item.price, 'price')!;
      return {
        amount: -prorate(price.unit_amount * item.quantity, start, end, now),
        description: `Unused time on ${productName(account, price)} after ${formatDate(now)}`,
        period: { start: now, end },
        price,
        quantity: item.quantity,
        proration: true,
        subscription: sub.id,
        subscriptionItem: id,
      };
    });
    addPendingInvoiceItems(account, sub.customer, lines, now);
  }
  if (params.cancellation_details !== undefined) sub.cancellation_details = { ...sub.cancellation_details, ...params.cancellation_details };
  cancelSubscriptionNow(account, sub, now);
}

/** The subscription JSON: items as a list embedding their prices (and the legacy `plan`). */
export function renderSubscription(account: MockAccount, sub: StripeObject): Record<string, unknown> {
  const out = structuredClone(sub) as Record<string, unknown>;
  const items = sub.items.map((id: string) => account.render(account.get(id, 'subscription_item')!));
  out.items = { object: 'list', data: items, has_more: false, total_count: items.length, url: `/v1/subscription_items?subscription=${sub.id}` };
  return out;
}

export function renderSubscriptionItem(account: MockAccount, item: StripeObject): Record<string, unknown> {
  const price = account.get(item.price, 'price')!;
  const metered = price.recurring.usage_type === 'metered';
  const { quantity, ...rest } = structuredClone(item);
  return {
    ...rest,
    ...(metered ? {} : { quantity }),
    billing_thresholds: null,
    current_trial: null,
    discounts: [],
    plan: {
      id: price.id, object: 'plan', active: price.active, amount: price.unit_amount, amount_decimal: price.unit_amount_decimal, billing_scheme: 'per_unit',
      created: price.created, currency: price.currency, interval: price.recurring.interval, interval_count: price.recurring.interval_count, livemode: false,
      metadata: { ...price.metadata }, meter: price.recurring.meter, nickname: price.nickname, product: price.product, tiers_mode: null, transform_usage: null, trial_period_days: null, usage_type: price.recurring.usage_type,
    },
    price: account.render(price),
    tax_rates: [],
  };
}

const createItem = p.obj({
  price: p.str(),
  quantity: p.int({ min: 0 }),
  metadata: p.metadata(),
  ...p.unsupported('billing_thresholds', 'current_trial', 'discounts', 'plan', 'price_data', 'tax_rates'),
});
const cancellationDetails = p.obj({
  comment: p.str({ maxLength: 5000, emptyable: true }),
  feedback: { kind: 'string', emptyable: true, oneOf: ['customer_service', 'low_quality', 'missing_features', 'other', 'switched_service', 'too_complex', 'too_expensive', 'unused'] },
});

export const subscriptionRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/subscriptions',
    fields: {
      customer: p.req(p.str()),
      items: p.req(p.arr(createItem, { maxItems: 20 })),
      payment_behavior: p.oneOf(PAYMENT_BEHAVIORS),
      proration_behavior: p.oneOf(PRORATION_BEHAVIORS),
      trial_period_days: p.int({ min: 0, max: 730 }),
      trial_end: p.nowOrTimestamp(),
      default_payment_method: p.str(),
      collection_method: p.oneOf(['charge_automatically', 'send_invoice']),
      currency: p.str(),
      description: p.str({ maxLength: 500 }),
      metadata: p.metadata(),
      off_session: p.bool(),
      expand: p.expand(),
      ...p.unsupported(
        'add_invoice_items', 'application_fee_percent', 'automatic_tax', 'backdate_start_date', 'billing_cycle_anchor', 'billing_cycle_anchor_config', 'billing_mode',
        'billing_schedules', 'billing_thresholds', 'cancel_at', 'cancel_at_period_end', 'customer_account', 'days_until_due', 'default_source', 'default_tax_rates',
        'discounts', 'invoice_settings', 'on_behalf_of', 'payment_settings', 'pending_invoice_item_interval', 'transfer_data', 'trial_from_plan', 'trial_settings',
      ),
    },
    handle: ({ account, params, now }) => renderSubscription(account, createSubscription(account, params, now)),
  },
  { method: 'GET', path: '/v1/subscriptions/:id', fields: { expand: p.expand() }, handle: ({ account, id }) => renderSubscription(account, requireSubscription(account, id)) },
  {
    method: 'POST',
    path: '/v1/subscriptions/:id',
    fields: {
      items: p.arr(subscriptionItemUpdate, { maxItems: 20 }),
      proration_behavior: p.oneOf(PRORATION_BEHAVIORS),
      proration_date: p.int({ min: 0 }),
      payment_behavior: p.oneOf(PAYMENT_BEHAVIORS),
      cancel_at_period_end: p.bool(),
      cancellation_details: cancellationDetails,
      default_payment_method: p.str(),
      description: p.str({ maxLength: 500, emptyable: true }),
      metadata: p.metadata(),
      off_session: p.bool(),
      trial_end: p.nowOrTimestamp(),
      expand: p.expand(),
      ...p.unsupported(
        'add_invoice_items', 'application_fee_percent', 'automatic_tax', 'billing_cycle_anchor', 'billing_schedules', 'billing_thresholds', 'cancel_at',
        'collection_method', 'days_until_due', 'default_source', 'default_tax_rates', 'discounts', 'invoice_settings', 'on_behalf_of', 'pause_collection',
        'payment_settings', 'pending_invoice_item_interval', 'transfer_data', 'trial_from_plan', 'trial_settings',
      ),
    },
    handle: ({ account, params, id, now }) => {
      const sub = requireSubscription(account, id);
      updateSubscription(account, sub, params, now);
      return renderSubscription(account, sub);
    },
  },
  {
    method: 'DELETE',
    path: '/v1/subscriptions/:id',
    fields: { invoice_now: p.bool(), prorate: p.bool(), cancellation_details: cancellationDetails, expand: p.expand() },
    handle: ({ account, params, id, now }) => {
      const sub = requireSubscription(account, id);
      cancelSubscription(account, sub, params, now);
      return renderSubscription(account, sub);
    },
  },
  {
    method: 'GET',
    path: '/v1/subscriptions',
    fields: {
      customer: p.str(),
      price: p.str(),
      status: p.oneOf(['active', 'all', 'canceled', 'ended', 'incomplete', 'incomplete_expired', 'past_due', 'paused', 'trialing', 'unpaid']),
      collection_method: p.oneOf(['charge_automatically', 'send_invoice']),
      expand: p.expand(),
      ...p.pagination(),
      ...p.unsupported('automatic_tax', 'created', 'current_period_end', 'current_period_start', 'customer_account', 'plan', 'test_clock'),
    },
    handle: ({ account, params }) => {
      const status: string | undefined = params.status;
      const items = account.all('subscription').filter((s) => {
        if (params.customer !== undefined && s.customer !== params.customer) return false;
        if (params.price !== undefined && !s.items.some((id: string) => account.get(id, 'subscription_item')!.price === params.price)) return false;
        if (params.collection_method !== undefined && s.collection_method !== params.collection_method) return false;
        if (status === undefined) return s.status !== 'canceled';
        if (status === 'all') return true;
        if (status === 'ended') return ENDED.includes(s.status);
        return s.status === status;
      });
      return account.list(items, params, '/v1/subscriptions', 'subscription');
    },
  },
];
