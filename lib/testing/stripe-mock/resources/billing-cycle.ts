import { apiErrors } from '../errors';
import { newId } from '../ids';
import { p } from '../params';
import type { Route } from '../route';
import { previousAttributes, type MockAccount, type StripeObject } from '../store';
import { periodEnd } from './billing-math';
import { requireAttachedPaymentMethod } from './customers';
import { invoiceJson, pendingLines, type LineSpec } from './invoices';
import { payingMethod, productName, subscriptionPeriod } from './subscriptions';

/**
 * What happens to a subscription between API calls, on demand: `POST /_mock/subscriptions/:id/advance_period`
 * stands in for its period ending (the renewal invoice with the recurring lines and the pending
 * prorations, charged to its payment method: paid, or — declined, no method, or `fail_payment=true`
 * — left open with the subscription `past_due`), and `POST /v1/invoices/:id/pay` is Stripe's
 * endpoint to pay an open invoice (a recovered payment makes the subscription `active` again).
 * Each emits the events Stripe sends: invoice.paid + invoice.payment_succeeded, or
 * invoice.payment_failed; customer.subscription.updated when the subscription changed.
 */

function charge(account: MockAccount, invoice: StripeObject, pm: string | null, fail: boolean, now: number): boolean {
  invoice.attempt_count += 1;
  invoice.attempted = true;
  if (invoice.amount_due > 0 && (fail || pm === null || account.decliningPaymentMethods.has(pm))) {
    account.touch(invoice, now);
    account.emit('invoice.payment_failed', invoice, now);
    return false;
  }
  Object.assign(invoice, {
    status: 'paid',
    amount_paid: invoice.amount_due,
    amount_remaining: 0,
    auto_advance: false,
    status_transitions: { ...invoice.status_transitions, paid_at: now },
  });
  account.touch(invoice, now);
  account.emit('invoice.paid', invoice, now);
  account.emit('invoice.payment_succeeded', invoice, now);
  return true;
}

function setStatus(account: MockAccount, sub: StripeObject, status: string, before: Record<string, unknown>, now: number): void {
  sub.status = status;
  account.touch(sub, now);
  const previous = previousAttributes(before, account.render(sub));
  if (Object.keys(previous).length > 0) account.emit('customer.subscription.updated', sub, now, previous);
}

function advancePeriod(account: MockAccount, id: string, failPayment: boolean, now: number): StripeObject {
  const sub = account.get(id, 'subscription');
  if (!sub) throw apiErrors.resourceMissing('subscription', id, 'id', 404);
  if (!['active', 'trialing', 'past_due', 'unpaid'].includes(sub.status)) throw apiErrors.invalid(`Subscription ${id} is ${sub.status}: only a live subscription renews.`, { param: 'id' });
  const before = account.render(sub);
  const customer = account.get(sub.customer, 'customer')!;
  if (sub.cancel_at_period_end) {
    // The period ends and the subscription with it (Stripe: customer.subscription.deleted, no invoice).
    Object.assign(sub, { status: 'canceled', canceled_at: now, ended_at: now, cancel_at: null, cancel_at_period_end: false });
    account.touch(sub, now);
    account.emit('customer.subscription.deleted', sub, now);
    return sub;
  }
  const { end: start } = subscriptionPeriod(account, sub);
  const items = sub.items.map((itemId: string) => account.get(itemId, 'subscription_item')!);
  const end = periodEnd(account.get(items[0].price, 'price')!, start);
  const pending = pendingLines(account, sub.id);
  const recurring: LineSpec[] = items.map((item: StripeObject) => {
    const price = account.get(item.price, 'price')!;
    return {
      amount: price.unit_amount * item.quantity, description: `${item.quantity} × ${productName(account, price)}`, period: { start, end },
      price, quantity: item.quantity, proration: false, subscription: sub.id, subscriptionItem: item.id,
    };
  });
  for (const item of items) Object.assign(item, { current_period_start: start, current_period_end: end });
  const invoice = account.add(
    invoiceJson({ id: newId('in'), customer, subscription: sub, lines: [...pending, ...recurring], currency: sub.currency, billingReason: 'subscription_cycle', status: 'open', periodStart: start, periodEnd: start, now }),
    now,
  );
  invoice.attempt_count = 0;
  invoice.attempted = false;
  for (const line of pending) {
    const ii = account.get(line.invoiceItem!, 'invoiceitem');
    if (ii) ii.invoice = invoice.id;
  }
  sub.latest_invoice = invoice.id;
  const paid = charge(account, invoice, payingMethod({ default_payment_method: sub.default_payment_method }, customer), failPayment, now);
  setStatus(account, sub, paid ? 'active' : 'past_due', before, now);
  return sub;
}

function payInvoice(account: MockAccount, id: string, params: Record<string, any>, now: number): StripeObject {
  const invoice = account.get(id, 'invoice');
  if (!invoice) throw apiErrors.resourceMissing('invoice', id, 'id', 404);
  if (invoice.status === 'paid') throw apiErrors.invalid('Invoice is already paid', { code: 'invoice_already_paid' });
  if (invoice.status !== 'open') throw apiErrors.invalid(`You can only pay an invoice that is open; this invoice is ${invoice.status}.`, { code: 'invoice_not_open' });
  const customer = account.get(invoice.customer, 'customer')!;
  const subId: string | undefined = invoice.parent?.subscription_details?.subscription;
  const sub = subId ? account.get(subId, 'subscription') : undefined;
  const before = sub ? account.render(sub) : undefined;
  let pm: string | null;
  if (params.payment_method !== undefined) pm = requireAttachedPaymentMethod(account, customer, params.payment_method, 'payment_method').id;
  else pm = sub ? payingMethod({ default_payment_method: sub.default_payment_method }, customer) : (customer.invoice_settings.default_payment_method ?? null);
  if (params.paid_out_of_band) pm = 'out_of_band';
  const paid = charge(account, invoice, pm, false, now);
  if (!paid) {
    if (pm === null) throw apiErrors.invalid('This customer has no attached payment source or default payment method.', { code: 'invoice_payment_intent_requires_action' });
    throw apiErrors.cardDeclined();
  }
  if (sub && before && ['past_due', 'unpaid', 'incomplete'].includes(sub.status) && sub.latest_invoice === invoice.id) setStatus(account, sub, 'active', before, now);
  return invoice;
}

export const billingCycleRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/invoices/:id/pay',
    fields: {
      payment_method: p.str(),
      paid_out_of_band: p.bool(),
      off_session: p.bool(),
      expand: p.expand(),
      ...p.unsupported('forgive', 'mandate', 'source'),
    },
    handle: ({ account, params, id, now }) => account.render(payInvoice(account, id, params, now)),
  },
  {
    method: 'POST',
    path: '/_mock/subscriptions/:id/advance_period',
    fields: { fail_payment: p.bool(), expand: p.expand() },
    handle: ({ account, params, id, now }) => account.render(advancePeriod(account, id, params.fail_payment === true, now)),
  },
];

/** The same as `POST /_mock/subscriptions/:id/advance_period`, for tests in-process. */
export { advancePeriod };
