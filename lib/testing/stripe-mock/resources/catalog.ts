import { apiErrors } from '../errors';
import { newId } from '../ids';
import { exclusive, p, type Params } from '../params';
import type { HandlerContext, Route } from '../route';
import { mergeMetadata, newMetadata, type MockAccount, type StripeObject } from '../store';
import { requireActiveMeter } from './meters';

/** Products and prices: create, retrieve, update, list (prices by lookup_keys); metered prices on a Billing Meter (meters.ts). */

const CURRENCIES = ['usd', 'eur', 'gbp', 'cad', 'aud', 'nzd', 'chf', 'sek', 'nok', 'dkk', 'pln', 'czk', 'jpy', 'sgd', 'hkd', 'inr', 'brl', 'mxn'];
const INTERVALS = ['day', 'week', 'month', 'year'];
/** The longest billing interval Stripe accepts is one year. */
const MAX_INTERVAL_COUNT: Record<string, number> = { day: 365, week: 52, month: 12, year: 1 };

export const currency = () => p.str({ check: checkCurrency });

function checkCurrency(value: string, param: string): void {
  if (!CURRENCIES.includes(value.toLowerCase())) throw apiErrors.invalid(`Invalid currency: ${value}. Stripe-mock-server supports: ${CURRENCIES.join(', ')}.`, { param });
}

/** Stripe: a non-negative decimal amount in the currency's minor unit, at most 12 decimal places. */
function checkDecimalAmount(value: string, param: string): void {
  if (!/^\d+(\.\d{1,12})?$/.test(value)) throw apiErrors.invalid(`Invalid decimal: ${value}`, { param });
}

export function requirePrice(account: MockAccount, id: string, param: string): StripeObject {
  const price = account.get(id, 'price');
  if (!price) throw apiErrors.resourceMissing('price', id, param);
  return price;
}

const productFields = {
  name: p.str({ maxLength: 250 }),
  active: p.bool(),
  description: p.str({ maxLength: 40000 }),
  metadata: p.metadata(),
  statement_descriptor: p.str({ maxLength: 22 }),
  unit_label: p.str({ maxLength: 12 }),
  url: p.str(),
  images: p.arr(p.str(), { maxItems: 8 }),
  shippable: p.bool(),
  tax_code: p.str(),
  expand: p.expand(),
  ...p.unsupported('marketing_features', 'package_dimensions', 'tax_details'),
};

function createProduct(account: MockAccount, params: Params, now: number): StripeObject {
  if (params.id !== undefined && account.get(params.id)) throw apiErrors.invalid('Product already exists.', { code: 'resource_already_exists', param: 'id' });
  return account.add(
    {
      id: params.id ?? newId('prod', 14),
      object: 'product',
      active: params.active ?? true,
      created: now,
      default_price: null,
      description: params.description ?? null,
      images: params.images ?? [],
      livemode: false,
      marketing_features: [],
      metadata: newMetadata(params.metadata),
      name: params.name,
      package_dimensions: null,
      shippable: params.shippable ?? null,
      statement_descriptor: params.statement_descriptor ?? null,
      tax_code: params.tax_code ?? null,
      tax_details: null,
      type: 'service',
      unit_label: params.unit_label ?? null,
      updated: now,
      url: params.url ?? null,
    },
    now,
  );
}

function requireProduct(account: MockAccount, id: string, param: string, status = 400): StripeObject {
  const product = account.get(id, 'product');
  if (!product) throw apiErrors.resourceMissing('product', id, param, status);
  return product;
}

function createPrice({ account, params, now }: HandlerContext): Record<string, unknown> {
  exclusive(params, ['product', 'product_data']);
  if (params.product === undefined && params.product_data === undefined) throw apiErrors.parameterMissing('product');
  if ((params.billing_scheme ?? 'per_unit') !== 'per_unit') throw apiErrors.notImplemented('billing_scheme=tiered', 'billing_scheme');
  exclusive(params, ['unit_amount', 'unit_amount_decimal']);
  if (params.unit_amount === undefined && params.unit_amount_decimal === undefined) throw apiErrors.parameterMissing('unit_amount');
  const recurring = params.recurring;
  // A fractional amount (e.g. 0.01 cents per API call) leaves unit_amount null, as Stripe does; the
  // invoice math here needs whole cents, so only metered prices (never charged here) may have one.
  const decimal: string = params.unit_amount_decimal ?? String(params.unit_amount);
  const whole = /^\d+(\.0*)?$/.test(decimal) ? Math.trunc(Number(decimal)) : null;
  if (whole === null && recurring?.usage_type !== 'metered') throw apiErrors.notImplemented('a fractional unit_amount_decimal on a price that is not metered', 'unit_amount_decimal');
  if (recurring) {
    const count = recurring.interval_count ?? 1;
    if (count > MAX_INTERVAL_COUNT[recurring.interval]) throw apiErrors.invalid('The maximum billing interval is one year (1 year, 12 months, 52 weeks or 365 days).', { param: 'recurring[interval_count]' });
    // Since 2025-03-31.basil a metered price is billed from a Billing Meter, and only a metered one has one.
    if (recurring.usage_type === 'metered' && recurring.meter === undefined) throw apiErrors.invalid('A metered price (recurring[usage_type]=metered) must name the Billing Meter that measures its usage in recurring[meter].', { code: 'parameter_missing', param: 'recurring[meter]' });
    if (recurring.usage_type !== 'metered' && recurring.meter !== undefined) throw apiErrors.invalid('recurring[meter] can only be set when recurring[usage_type] is metered.', { param: 'recurring[meter]' });
    if (recurring.meter !== undefined) requireActiveMeter(account, recurring.meter, 'recurring[meter]');
  }
  const product = params.product !== undefined ? requireProduct(account, params.product, 'product') : undefined;
  const lookupKey: string | undefined = params.lookup_key;
  if (lookupKey !== undefined) {
    const holder = account.all('price').find((pr) => pr.lookup_key === lookupKey);
    if (holder && !params.transfer_lookup_key) throw apiErrors.invalid(`A price (\`${holder.id}\`) already uses that lookup key.`, { param: 'lookup_key' });
    if (holder) holder.lookup_key = null;
  }
  const productId = product?.id ?? createProduct(account, { ...params.product_data, expand: undefined }, now).id;
  const price = account.add(
    {
      id: newId('price'),
      object: 'price',
      active: params.active ?? true,
      billing_scheme: 'per_unit',
      created: now,
      currency: String(params.currency).toLowerCase(),
      custom_unit_amount: null,
      livemode: false,
      lookup_key: lookupKey ?? null,
      metadata: newMetadata(params.metadata),
      nickname: params.nickname ?? null,
      product: productId,
      recurring: recurring
        ? { interval: recurring.interval, interval_count: recurring.interval_count ?? 1, meter: recurring.meter ?? null, trial_period_days: recurring.trial_period_days ?? null, usage_type: recurring.usage_type ?? 'licensed' }
        : null,
      tax_behavior: params.tax_behavior ?? 'unspecified',
      tiers_mode: null,
      transform_quantity: null,
      type: recurring ? 'recurring' : 'one_time',
      unit_amount: whole,
      unit_amount_decimal: decimal,
    },
    now,
  );
  return account.render(price);
}

function updatePrice({ account, params, id, now }: HandlerContext): Record<string, unknown> {
  const price = account.get(id, 'price');
  if (!price) throw apiErrors.resourceMissing('price', id, 'id', 404);
  if (params.lookup_key !== undefined && params.lookup_key !== price.lookup_key) {
    const holder = params.lookup_key === null ? undefined : account.all('price').find((pr) => pr.lookup_key === params.lookup_key);
    if (holder && !params.transfer_lookup_key) throw apiErrors.invalid(`A price (\`${holder.id}\`) already uses that lookup key.`, { param: 'lookup_key' });
    if (holder) holder.lookup_key = null;
    price.lookup_key = params.lookup_key;
  }
  if (params.active !== undefined) price.active = params.active;
  if (params.nickname !== undefined) price.nickname = params.nickname;
  if (params.tax_behavior !== undefined) price.tax_behavior = params.tax_behavior;
  price.metadata = mergeMetadata(price.metadata, params.metadata);
  account.touch(price, now);
  return account.render(price);
}

function listPrices({ account, params }: HandlerContext): Record<string, unknown> {
  const keys: string[] | undefined = params.lookup_keys;
  const items = account.all('price').filter(
    (pr) =>
      (params.active === undefined || pr.active === params.active) &&
      (params.currency === undefined || pr.currency === String(params.currency).toLowerCase()) &&
      (params.product === undefined || pr.product === params.product) &&
      (params.type === undefined || pr.type === params.type) &&
      (keys === undefined || keys.includes(pr.lookup_key)) &&
      (params.recurring?.interval === undefined || pr.recurring?.interval === params.recurring.interval) &&
      (params.recurring?.usage_type === undefined || pr.recurring?.usage_type === params.recurring.usage_type) &&
      (params.recurring?.meter === undefined || pr.recurring?.meter === params.recurring.meter),
  );
  return account.list(items, params, '/v1/prices', 'price');
}

export const catalogRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/products',
    fields: { ...productFields, name: p.req(p.str({ maxLength: 250 })), id: p.str({ maxLength: 100 }), type: p.oneOf(['good', 'service']), ...p.unsupported('default_price_data') },
    handle: ({ account, params, now }) => account.render(createProduct(account, params, now)),
  },
  { method: 'GET', path: '/v1/products/:id', fields: { expand: p.expand() }, handle: ({ account, id }) => account.render(requireProduct(account, id, 'id', 404)) },
  {
    method: 'POST',
    path: '/v1/products/:id',
    fields: { ...productFields, description: p.str({ maxLength: 40000, emptyable: true }), default_price: p.str() },
    handle: ({ account, params, id, now }) => {
      const product = requireProduct(account, id, 'id', 404);
      if (params.default_price !== undefined) {
        const price = requirePrice(account, params.default_price, 'default_price');
        if (price.product !== product.id) throw apiErrors.invalid(`The price ${price.id} does not belong to product ${product.id}.`, { param: 'default_price' });
        product.default_price = price.id;
      }
      for (const k of ['name', 'active', 'description', 'statement_descriptor', 'unit_label', 'url', 'images', 'shippable', 'tax_code']) {
        if (params[k] !== undefined) product[k] = params[k];
      }
      product.metadata = mergeMetadata(product.metadata, params.metadata);
      product.updated = now;
      account.touch(product, now);
      return account.render(product);
    },
  },
  {
    method: 'GET',
    path: '/v1/products',
    fields: { active: p.bool(), ids: p.arr(p.str()), shippable: p.bool(), url: p.str(), expand: p.expand(), ...p.pagination(), ...p.unsupported('created') },
    handle: ({ account, params }) =>
      account.list(
        account.all('product').filter((pr) => (params.active === undefined || pr.active === params.active) && (params.ids === undefined || params.ids.includes(pr.id))),
        params,
        '/v1/products',
        'product',
      ),
  },
  {
    method: 'POST',
    path: '/v1/prices',
    fields: {
      currency: p.req(currency()),
      product: p.str(),
      product_data: p.obj({ name: p.req(p.str({ maxLength: 250 })), active: p.bool(), id: p.str(), metadata: p.metadata(), statement_descriptor: p.str({ maxLength: 22 }), unit_label: p.str({ maxLength: 12 }), ...p.unsupported('tax_code', 'tax_details') }),
      unit_amount: p.int({ min: 0 }),
      unit_amount_decimal: p.str({ check: checkDecimalAmount }),
      recurring: p.obj({ interval: p.req(p.oneOf(INTERVALS)), interval_count: p.int({ min: 1 }), usage_type: p.oneOf(['licensed', 'metered']), meter: p.str(), trial_period_days: p.int({ min: 0, max: 730 }) }),
      lookup_key: p.str({ maxLength: 200 }),
      transfer_lookup_key: p.bool(),
      metadata: p.metadata(),
      nickname: p.str(),
      active: p.bool(),
      tax_behavior: p.oneOf(['exclusive', 'inclusive', 'unspecified']),
      billing_scheme: p.oneOf(['per_unit', 'tiered']),
      expand: p.expand(),
      ...p.unsupported('currency_options', 'custom_unit_amount', 'tiers', 'tiers_mode', 'transform_quantity'),
    },
    handle: createPrice,
  },
  { method: 'GET', path: '/v1/prices/:id', fields: { expand: p.expand() }, handle: ({ account, id }) => {
    const price = account.get(id, 'price');
    if (!price) throw apiErrors.resourceMissing('price', id, 'id', 404);
    return account.render(price);
  } },
  {
    method: 'POST',
    path: '/v1/prices/:id',
    fields: { active: p.bool(), metadata: p.metadata(), nickname: p.str(), lookup_key: p.str({ maxLength: 200, emptyable: true }), transfer_lookup_key: p.bool(), tax_behavior: p.oneOf(['exclusive', 'inclusive', 'unspecified']), expand: p.expand(), ...p.unsupported('currency_options') },
    handle: updatePrice,
  },
  {
    method: 'GET',
    path: '/v1/prices',
    fields: {
      active: p.bool(),
      currency: currency(),
      product: p.str(),
      type: p.oneOf(['one_time', 'recurring']),
      lookup_keys: p.arr(p.str({ maxLength: 200 }), { maxItems: 10 }),
      recurring: p.obj({ interval: p.oneOf(INTERVALS), usage_type: p.oneOf(['licensed', 'metered']), meter: p.str() }),
      expand: p.expand(),
      ...p.pagination(),
      ...p.unsupported('created'),
    },
    handle: listPrices,
  },
];
