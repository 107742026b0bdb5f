import { apiErrors } from '../errors';
import { newId } from '../ids';
import { p, type Params } from '../params';
import type { Route } from '../route';
import { matchesSearch, parseSearchQuery } from '../search';
import { mergeMetadata, newMetadata, type MockAccount, type StripeObject } from '../store';
import { cancelSubscriptionNow } from './subscriptions';

/**
 * Customers (create, retrieve, update, delete, list by email, search) and payment methods
 * (Stripe's test tokens attached to customers: pm_card_visa, pm_card_mastercard, pm_card_amex,
 * and pm_card_chargeDeclined, which attaches but declines every charge).
 */

const TEST_CARDS: Readonly<Record<string, { brand: string; last4: string; declines: boolean }>> = {
  pm_card_visa: { brand: 'visa', last4: '4242', declines: false },
  pm_card_mastercard: { brand: 'mastercard', last4: '4444', declines: false },
  pm_card_amex: { brand: 'amex', last4: '8431', declines: false },
  pm_card_chargeDeclined: { brand: 'visa', last4: '0002', declines: true },
};

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const email = (emptyable = false) =>
  p.str({
    maxLength: 512,
    emptyable,
    check: (v, param) => {
      if (!EMAIL.test(v)) throw apiErrors.invalid(`Invalid email address: ${v}`, { code: 'email_invalid', param });
    },
  });

/** A live (not deleted) customer named by a request parameter. */
export function requireCustomer(account: MockAccount, id: string, param: string, status = 400): StripeObject {
  const customer = account.get(id, 'customer');
  if (!customer || customer.deleted) throw apiErrors.resourceMissing('customer', id, param, status);
  return customer;
}

/** A payment method attached to `customer`, as subscription and customer updates require. */
export function requireAttachedPaymentMethod(account: MockAccount, customer: StripeObject, id: string, param: string): StripeObject {
  const pm = account.get(id, 'payment_method');
  if (!pm || pm.customer !== customer.id) {
    throw apiErrors.invalid(`The customer does not have a payment method with the ID ${id}. The payment method must be attached to the customer.`, { param });
  }
  return pm;
}

/** Attaches a payment method (a test token creates a new pm_…) to a customer. */
export function attachPaymentMethod(account: MockAccount, idOrToken: string, customer: StripeObject, param: string, now: number): StripeObject {
  const card = TEST_CARDS[idOrToken];
  if (card) {
    const pm = account.add(
      {
        id: newId('pm'),
        object: 'payment_method',
        allow_redisplay: 'unspecified',
        billing_details: { address: null, email: null, name: null, phone: null },
        card: { brand: card.brand, country: 'US', exp_month: 12, exp_year: new Date(now * 1000).getUTCFullYear() + 3, funding: 'credit', last4: card.last4 },
        created: now,
        customer: customer.id,
        livemode: false,
        metadata: {},
        type: 'card',
      },
      now,
    );
    if (card.declines) account.decliningPaymentMethods.add(pm.id);
    return pm;
  }
  const pm = account.get(idOrToken, 'payment_method');
  if (!pm) throw apiErrors.resourceMissing('PaymentMethod', idOrToken, param);
  if (pm.customer !== null && pm.customer !== customer.id) throw apiErrors.invalid(`The payment method ${pm.id} is already attached to another customer.`, { param });
  pm.customer = customer.id;
  return pm;
}

const customerFields = {
  email: email(),
  name: p.str({ maxLength: 256 }),
  description: p.str({ maxLength: 350 }),
  phone: p.str({ maxLength: 20 }),
  metadata: p.metadata(),
  invoice_settings: p.obj({ default_payment_method: p.str(), footer: p.str({ maxLength: 5000 }), ...p.unsupported('custom_fields', 'rendering_options') }),
  preferred_locales: p.arr(p.str()),
  expand: p.expand(),
  ...p.unsupported('address', 'balance', 'business_name', 'cash_balance', 'individual_name', 'invoice_prefix', 'next_invoice_sequence', 'shipping', 'source', 'tax', 'tax_exempt'),
};

function setDefaultPaymentMethod(account: MockAccount, customer: StripeObject, params: Params, attached: StripeObject | undefined): void {
  const requested: string | undefined = params.invoice_settings?.default_payment_method;
  if (requested === undefined) return;
  // `payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa` names the attached copy.
  const pm = attached && (requested === params.payment_method || requested === attached.id) ? attached : requireAttachedPaymentMethod(account, customer, requested, 'invoice_settings[default_payment_method]');
  customer.invoice_settings.default_payment_method = pm.id;
}

export const customerRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/customers',
    fields: { ...customerFields, payment_method: p.str(), ...p.unsupported('tax_id_data', 'test_clock', 'validate') },
    handle: ({ account, params, now }) => {
      const customer = account.add(
        {
          id: newId('cus', 14),
          object: 'customer',
          address: null,
          balance: 0,
          created: now,
          currency: null,
          default_source: null,
          delinquent: false,
          description: params.description ?? null,
          discount: null,
          email: params.email ?? null,
          invoice_prefix: newId('X', 8).slice(2).toUpperCase(),
          invoice_settings: { custom_fields: null, default_payment_method: null, footer: params.invoice_settings?.footer ?? null, rendering_options: null },
          livemode: false,
          metadata: newMetadata(params.metadata),
          name: params.name ?? null,
          next_invoice_sequence: 1,
          phone: params.phone ?? null,
          preferred_locales: params.preferred_locales ?? [],
          shipping: null,
          tax_exempt: 'none',
          test_clock: null,
        },
        now,
      );
      const attached = params.payment_method !== undefined ? attachPaymentMethod(account, params.payment_method, customer, 'payment_method', now) : undefined;
      setDefaultPaymentMethod(account, customer, params, attached);
      return account.render(customer);
    },
  },
  {
    method: 'GET',
    path: '/v1/customers/search',
    fields: { query: p.req(p.str({ maxLength: 10000 })), limit: p.int({ min: 1, max: 100 }), expand: p.expand(), ...p.unsupported('page') },
    handle: ({ account, params, now }) => {
      const query = parseSearchQuery(params.query, ['email', 'name', 'phone', 'description']);
      const hits = account.all('customer').filter((c) => !c.deleted && account.isSearchable(c, now) && matchesSearch(c, query));
      const limit: number = params.limit ?? 10;
      return { object: 'search_result', data: hits.slice(0, limit).map((c) => account.render(c)), has_more: hits.length > limit, next_page: null, url: '/v1/customers/search' };
    },
  },
  {
    method: 'GET',
    path: '/v1/customers/:id',
    fields: { expand: p.expand() },
    handle: ({ account, id }) => {
      const customer = account.get(id, 'customer');
      if (!customer) throw apiErrors.resourceMissing('customer', id, 'id', 404);
      return customer.deleted ? { id: customer.id, object: 'customer', deleted: true } : account.render(customer);
    },
  },
  {
    method: 'POST',
    path: '/v1/customers/:id',
    fields: { ...customerFields, email: email(true), ...p.unsupported('default_source', 'validate') },
    handle: ({ account, params, id, now }) => {
      const customer = requireCustomer(account, id, 'id', 404);
      for (const k of ['email', 'name', 'description', 'phone', 'preferred_locales']) {
        if (params[k] !== undefined) customer[k] = params[k];
      }
      if (params.invoice_settings?.footer !== undefined) customer.invoice_settings.footer = params.invoice_settings.footer;
      setDefaultPaymentMethod(account, customer, params, undefined);
      customer.metadata = mergeMetadata(customer.metadata, params.metadata);
      account.touch(customer, now);
      return account.render(customer);
    },
  },
  {
    method: 'DELETE',
    path: '/v1/customers/:id',
    fields: {},
    handle: ({ account, id, now }) => {
      const customer = requireCustomer(account, id, 'id', 404);
      // Deleting a customer cancels its subscriptions immediately, as Stripe does.
      for (const sub of account.all('subscription')) {
        if (sub.customer === customer.id && !['canceled', 'incomplete_expired'].includes(sub.status)) cancelSubscriptionNow(account, sub, now);
      }
      customer.deleted = true;
      account.touch(customer, now);
      return { id: customer.id, object: 'customer', deleted: true };
    },
  },
  {
    method: 'GET',
    path: '/v1/customers',
    fields: { email: p.str({ maxLength: 512 }), expand: p.expand(), ...p.pagination(), ...p.unsupported('created', 'test_clock') },
    handle: ({ account, params }) =>
      account.list(account.all('customer').filter((c) => !c.deleted && (params.email === undefined || c.email === params.email)), params, '/v1/customers', 'customer'),
  },
  {
    method: 'POST',
    path: '/v1/payment_methods/:id/attach',
    fields: { customer: p.req(p.str()), expand: p.expand(), ...p.unsupported('customer_account') },
    handle: ({ account, params, id, now }) => {
      const customer = requireCustomer(account, params.customer, 'customer');
      if (!TEST_CARDS[id] && !account.get(id, 'payment_method')) throw apiErrors.resourceMissing('PaymentMethod', id, 'id', 404);
      return account.render(attachPaymentMethod(account, id, customer, 'id', now));
    },
  },
  {
    method: 'GET',
    path: '/v1/payment_methods/:id',
    fields: { expand: p.expand() },
    handle: ({ account, id }) => {
      const pm = account.get(id, 'payment_method');
      if (!pm) throw apiErrors.resourceMissing('PaymentMethod', id, 'id', 404);
      return account.render(pm);
    },
  },
];
