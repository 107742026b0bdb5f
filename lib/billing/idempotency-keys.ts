import { createHash } from 'node:crypto';

/**
 * Idempotency keys of the billing calls: derived from the tenant's immutable id and the action,
 * never random, so a rerun, a concurrent run or a retry after a crash sends the same key and
 * Stripe replays the first result instead of creating a second object (keys live 24 hours).
 *
 * - The customer's create request carries only immutable parameters, so its key is fixed:
 *   `tenancy:<tenant-id>:customer:create`.
 * - Subscription and Checkout creates end with a fingerprint of their parameters (and the
 *   tenant's subscription generation): the same request gets the same key; a different one (a
 *   new payment method after a decline, another plan, a new subscription after a cancellation)
 *   is a new attempt instead of a stale replay or an idempotency_error. Sequential runs never
 *   rely on the key alone: they find the tenant's subscription by listing the customer's
 *   subscriptions (strongly consistent) before creating one.
 * - A plan change names the subscription, the plan and its proration date:
 *   `tenancy:<tenant-id>:subscription:<sub>:plan:<plan>:<proration-date>`.
 * - Adding missing metered items names the subscription and the prices added:
 *   `tenancy:<tenant-id>:subscription:<sub>:metered-items:add:<fingerprint>`.
 * - Declarative updates (customer name/email, cancel_at_period_end) keep the SDK's per-request
 *   key: a derived key would replay an older update after a change back (A → B → A in 24 hours).
 */
export const billingKeys = {
  customerCreate: (tenantId: string) => `tenancy:${tenantId}:customer:create`,
  subscriptionCreate: (tenantId: string, generation: number, params: unknown) => `tenancy:${tenantId}:subscription:create:${generation}:${fingerprint(params)}`,
  planChange: (tenantId: string, subscriptionId: string, plan: string, prorationDate: number) => `tenancy:${tenantId}:subscription:${subscriptionId}:plan:${plan}:${prorationDate}`,
  meteredItemsAdd: (tenantId: string, subscriptionId: string, params: unknown) => `tenancy:${tenantId}:subscription:${subscriptionId}:metered-items:add:${fingerprint(params)}`,
  checkoutCreate: (tenantId: string, params: unknown, attempt = '') => `tenancy:${tenantId}:checkout:create:${fingerprint(params)}${attempt ? `:${attempt}` : ''}`,
  checkoutExpire: (tenantId: string, sessionId: string) => `tenancy:${tenantId}:checkout:${sessionId}:expire`,
  catalogProduct: (lookupKey: string) => `tenancy:catalog:${lookupKey}:product:create`,
  catalogPrice: (lookupKey: string, params: unknown) => `tenancy:catalog:${lookupKey}:price:create:${fingerprint(params)}`,
};

/** 16 hex digits of SHA-256 over JSON with sorted keys. */
export function fingerprint(value: unknown): string {
  const stable = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(stable) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, stable((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(stable(value))).digest('hex').slice(0, 16);
}
