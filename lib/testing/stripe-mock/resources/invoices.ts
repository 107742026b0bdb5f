import { apiErrors } from '../errors';
import { newId } from '../ids';
import { p, type Params } from '../params';
import type { Route } from '../route';
import type { MockAccount, StripeObject } from '../store';
import { formatDate, periodEnd, prorate } from './billing-math';
import { requireCustomer } from './customers';
import { subscriptionItemUpdate } from './subscription-item-params';
import { planItems, productName, subscriptionPeriod, type ItemChange } from './subscriptions';

/**
 * Invoices: the ones subscriptions create (retrievable), pending proration invoice items, and
 * `POST /v1/invoices/create_preview` — the invoice a subscription change would produce, with
 * proration lines computed exactly as the update computes them (same proration_date, same
 * amounts), without changing anything.
 */

export interface LineSpec {
  readonly amount: number;
  readonly description: string;
  readonly period: { readonly start: number; readonly end: number };
  readonly price: StripeObject;
  readonly quantity: number;
  readonly proration: boolean;
  readonly subscription: string | null;
  readonly subscriptionItem: string | null;
  readonly invoiceItem?: string | null;
}

export function lineJson(invoiceId: string, spec: LineSpec, id = newId('il')): Record<string, unknown> {
  return {
    id,
    object: 'line_item',
    amount: spec.amount,
    currency: spec.price.currency,
    description: spec.description,
    discount_amounts: [],
    discountable: !spec.proration,
    discounts: [],
    invoice: invoiceId,
    livemode: false,
    metadata: {},
    parent: {
      type: 'subscription_item_details',
      invoice_item_details: null,
      subscription_item_details: {
        invoice_item: spec.invoiceItem ?? null,
        proration: spec.proration,
        proration_details: { credited_items: null },
        subscription: spec.subscription,
        subscription_item: spec.subscriptionItem,
      },
    },
    period: { start: spec.period.start, end: spec.period.end },
    pretax_credit_amounts: [],
    pricing: { type: 'price_details', price_details: { price: spec.price.id, product: spec.price.product }, unit_amount_decimal: spec.price.unit_amount_decimal },
    quantity: spec.quantity,
    quantity_decimal: String(spec.quantity),
    subscription: spec.subscription,
    subtotal: spec.amount,
    taxes: [],
  };
}

/** The invoice JSON around some lines (stored for subscription invoices, returned only for previews). */
export function invoiceJson(args: {
  id: string;
  customer: StripeObject;
  subscription: StripeObject | null;
  lines: readonly LineSpec[];
  currency: string;
  billingReason: string;
  status: 'draft' | 'open' | 'paid';
  periodStart: number;
  periodEnd: number;
  now: number;
  prorationDate?: number;
}): StripeObject {
  const lines = args.lines.map((l) => lineJson(args.id, l, args.id.startsWith('upcoming_') ? newId('il_tmp') : undefined));
  const total = args.lines.reduce((sum, l) => sum + l.amount, 0);
  const due = Math.max(0, total);
  const paid = args.status === 'paid' ? due : 0;
  return {
    id: args.id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'stripe-mock-server',
    account_tax_ids: null,
    amount_due: due,
    amount_overpaid: 0,
    amount_paid: paid,
    amount_remaining: due - paid,
    amount_shipping: 0,
    application: null,
    attempt_count: args.status === 'draft' ? 0 : 1,
    attempted: args.status !== 'draft',
    auto_advance: args.status === 'open',
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: args.billingReason,
    collection_method: 'charge_automatically',
    created: args.now,
    currency: args.currency,
    custom_fields: null,
    customer: args.customer.id,
    customer_account: null,
    customer_address: null,
    customer_email: args.customer.email,
    customer_name: args.customer.name,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: args.status === 'draft' ? null : args.now,
    ending_balance: args.status === 'draft' ? null : Math.min(0, total),
    footer: null,
    from_invoice: null,
    hosted_invoice_url: null,
    invoice_pdf: null,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: { object: 'list', data: lines, has_more: false, total_count: lines.length, url: `/v1/invoices/${args.id}/lines` },
    livemode: false,
    metadata: {},
    next_payment_attempt: null,
    number: null,
    on_behalf_of: null,
    parent: args.subscription
      ? {
          type: 'subscription_details',
          quote_details: null,
          subscription_details: {
            metadata: { ...args.subscription.metadata },
            subscription: args.subscription.id,
            ...(args.prorationDate !== undefined ? { subscription_proration_date: args.prorationDate } : {}),
          },
        }
      : null,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: args.periodEnd,
    period_start: args.periodStart,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: args.status,
    status_transitions: { finalized_at: args.status === 'draft' ? null : args.now, marked_uncollectible_at: null, paid_at: args.status === 'paid' ? args.now : null, voided_at: null },
    subtotal: total,
    subtotal_excluding_tax: total,
    test_clock: null,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: null,
  };
}

/** Proration lines for item changes at `at` within the period [start, end). */
export function prorationLines(account: MockAccount, sub: StripeObject, changes: readonly ItemChange[], at: number, start: number, end: number): LineSpec[] {
  const lines: LineSpec[] = [];
  const qty = (q: number, name: string) => (q === 1 ? name : `${q} × ${name}`);
  for (const c of changes) {
    // Metered items are billed for usage in arrears: a change prorates nothing of theirs.
    if (c.before && c.before.price.recurring.usage_type !== 'metered') {
      const full = c.before.price.unit_amount * c.before.quantity;
      lines.push({
        amount: -prorate(full, start, end, at),
        description: `Unused time on ${qty(c.before.quantity, productName(account, c.before.price))} after ${formatDate(at)}`,
        period: { start: at, end },
        price: c.before.price,
        quantity: c.before.quantity,
        proration: true,
        subscription: sub.id,
        subscriptionItem: c.itemId,
      });
    }
    if (c.after && c.after.price.recurring.usage_type !== 'metered') {
      const full = c.after.price.unit_amount * c.after.quantity;
      lines.push({
        amount: prorate(full, start, end, at),
        description: `Remaining time on ${qty(c.after.quantity, productName(account, c.after.price))} after ${formatDate(at)}`,
        period: { start: at, end },
        price: c.after.price,
        quantity: c.after.quantity,
        proration: true,
        subscription: sub.id,
        subscriptionItem: c.itemId,
      });
    }
  }
  return lines;
}

/** Stores proration lines as pending invoice items (ii_…) of the customer, billed on the next invoice. */
export function addPendingInvoiceItems(account: MockAccount, customerId: string, lines: readonly LineSpec[], now: number): void {
  for (const l of lines) {
    account.add(
      {
        id: newId('ii'),
        object: 'invoiceitem',
        amount: l.amount,
        currency: l.price.currency,
        customer: customerId,
        date: now,
        description: l.description,
        discountable: false,
        discounts: [],
        invoice: null,
        livemode: false,
        metadata: {},
        net_amount: l.amount,
        parent: { type: 'subscription_details', subscription_details: { subscription: l.subscription, subscription_item: l.subscriptionItem } },
        period: { ...l.period },
        pricing: { type: 'price_details', price_details: { price: l.price.id, product: l.price.product }, unit_amount_decimal: l.price.unit_amount_decimal },
        proration: l.proration,
        quantity: l.quantity,
        tax_rates: [],
        test_clock: null,
      },
      now,
    );
  }
}

/** Pending (not yet invoiced) invoice items of a subscription, oldest first, as lines. */
export function pendingLines(account: MockAccount, subscriptionId: string): LineSpec[] {
  return account
    .all('invoiceitem')
    .filter((ii) => ii.invoice === null && ii.parent?.subscription_details?.subscription === subscriptionId)
    .reverse()
    .map((ii) => ({
      amount: ii.amount,
      description: ii.description,
      period: ii.period,
      price: account.get(ii.pricing.price_details.price, 'price')!,
      quantity: ii.quantity,
      proration: ii.proration,
      subscription: subscriptionId,
      subscriptionItem: ii.parent.subscription_details.subscription_item,
      invoiceItem: ii.id,
    }));
}

function createPreview({ account, params, now }: { account: MockAccount; params: Params; now: number }): Record<string, unknown> {
  if (params.customer === undefined && params.subscription === undefined) throw apiErrors.parameterMissing('customer');
  const details = params.subscription_details ?? {};
  const behavior: string = details.proration_behavior ?? 'create_prorations';
  let sub: StripeObject | undefined;
  if (params.subscription !== undefined) {
    sub = account.get(params.subscription, 'subscription');
    if (!sub) throw apiErrors.resourceMissing('subscription', params.subscription, 'subscription');
  }
  const customer = requireCustomer(account, params.customer ?? sub!.customer, 'customer');
  if (sub && sub.customer !== customer.id) throw apiErrors.invalid(`The subscription ${sub.id} does not belong to the customer ${customer.id}.`, { param: 'subscription' });
  const id = newId('upcoming_in');

  if (!sub) {
    // A new subscription's first invoice.
    const items: any[] | undefined = details.items;
    if (!items || items.length === 0) throw apiErrors.parameterMissing('subscription_details[items]');
    const planned = planItems(account, undefined, items, 'subscription_details[items]', customer);
    const end = periodEnd(planned.next[0].price, now);
    const lines = planned.next.map((n) => ({
      amount: n.price.unit_amount * n.quantity,
      description: `${n.quantity} × ${productName(account, n.price)} (at ${formatAmount(n.price)} / ${n.price.recurring.interval})`,
      period: { start: now, end },
      price: n.price,
      quantity: n.quantity,
      proration: false,
      subscription: null,
      subscriptionItem: null,
    }));
    return invoiceJson({ id, customer, subscription: null, lines, currency: planned.next[0].price.currency, billingReason: 'upcoming', status: 'draft', periodStart: now, periodEnd: now, now });
  }

  if (['canceled', 'incomplete_expired'].includes(sub.status)) {
    throw apiErrors.invalid(`No upcoming invoices for customer: ${customer.id}`, { code: 'invoice_upcoming_none' });
  }
  const { start, end } = subscriptionPeriod(account, sub);
  const at: number = details.proration_date ?? now;
  if (details.proration_date !== undefined && (at < start || at > end)) {
    throw apiErrors.invalid(`proration_date must be within the subscription's current billing period (${start} to ${end}).`, { param: 'subscription_details[proration_date]' });
  }
  if (behavior === 'always_invoice') throw apiErrors.notImplemented('previews with proration_behavior=always_invoice', 'subscription_details[proration_behavior]');
  const planned = details.items ? planItems(account, sub, details.items, 'subscription_details[items]', customer) : planItems(account, sub, [], 'subscription_details[items]', customer);
  const prorations = behavior === 'create_prorations' && sub.status !== 'trialing' ? prorationLines(account, sub, planned.changes, at, start, end) : [];
  const cancelAtPeriodEnd: boolean = details.cancel_at_period_end ?? sub.cancel_at_period_end;
  const nextEnd = periodEnd(planned.next[0].price, end);
  const recurring: LineSpec[] = cancelAtPeriodEnd
    ? []
    : planned.next.map((n) => ({
        amount: n.price.unit_amount * n.quantity,
        description: `${n.quantity} × ${productName(account, n.price)} (at ${formatAmount(n.price)} / ${n.price.recurring.interval})`,
        period: { start: end, end: nextEnd },
        price: n.price,
        quantity: n.quantity,
        proration: false,
        subscription: sub!.id,
        subscriptionItem: n.itemId ?? null,
      }));
  const lines = params.preview_mode === 'recurring' ? recurring : [...pendingLines(account, sub.id), ...prorations, ...recurring];
  if (lines.length === 0) throw apiErrors.invalid(`No upcoming invoices for customer: ${customer.id}`, { code: 'invoice_upcoming_none' });
  return invoiceJson({
    id, customer, subscription: sub, lines, currency: sub.currency, billingReason: 'upcoming', status: 'draft',
    periodStart: start, periodEnd: end, now, prorationDate: behavior === 'none' ? undefined : at,
  });
}

const formatAmount = (price: StripeObject) => `${(price.unit_amount / 100).toFixed(2)} ${String(price.currency).toUpperCase()}`;


export const invoiceRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/invoices/create_preview',
    fields: {
      customer: p.str(),
      subscription: p.str(),
      preview_mode: p.oneOf(['next', 'recurring']),
      subscription_details: p.obj({
        items: p.arr(subscriptionItemUpdate, { maxItems: 20 }),
        proration_behavior: p.oneOf(['always_invoice', 'create_prorations', 'none']),
        proration_date: p.int({ min: 0 }),
        cancel_at_period_end: p.bool(),
        metadata: p.metadata(),
        ...p.unsupported('billing_cycle_anchor', 'billing_mode', 'billing_schedules', 'cancel_at', 'cancel_now', 'default_tax_rates', 'pause', 'resume_at', 'start_date', 'trial_end'),
      }),
      expand: p.expand(),
      ...p.unsupported('automatic_tax', 'currency', 'customer_account', 'customer_details', 'discounts', 'invoice_items', 'issuer', 'on_behalf_of', 'schedule', 'schedule_details'),
    },
    handle: createPreview,
  },
  {
    method: 'GET',
    path: '/v1/invoices/:id',
    fields: { expand: p.expand() },
    handle: ({ account, id }) => {
      const invoice = account.get(id, 'invoice');
      if (!invoice) throw apiErrors.resourceMissing('invoice', id, 'id', 404);
      return account.render(invoice);
    },
  },
];
