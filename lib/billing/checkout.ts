import type Stripe from 'stripe';
import { BillingError, type BillingContext } from './billing-context';
import { tenantMetadata, type BillingTenant } from './billing-tenant';
import { billingKeys, fingerprint } from './idempotency-keys';
import type { PlanPrice } from './plan-prices';
import { meteredItems } from './subscription-items';
import type { MeteredPrice } from './usage-prices';

/** A paid plan waits for the customer: pay on Stripe Checkout, then rerun the hook. */
export interface CheckoutRequired {
  readonly kind: 'checkout-required';
  readonly reason: 'no-payment-method' | 'card-declined';
  readonly url: string;
  readonly sessionId: string;
  readonly expiresAt: number;
  readonly priceId: string;
}

/**
 * A Checkout Session in subscription mode for the tenant's plan (its licensed price, quantity 1)
 * and the metered prices (no quantity: Stripe refuses one): the customer enters a card, Stripe
 * creates the subscription (tenant metadata, trial) with those items. An open session for the same
 * request is reused; open sessions of the tenant for anything else (another plan) are expired,
 * so the customer can only pay for the current plan. The create is keyed by a fingerprint of
 * its parameters: concurrent runs get the same session.
 */
export async function checkoutRequired(
  ctx: BillingContext,
  tenant: BillingTenant,
  customerId: string,
  price: PlanPrice,
  metered: readonly MeteredPrice[],
  trialDays: number,
  reason: CheckoutRequired['reason'],
): Promise<CheckoutRequired> {
  if (!ctx.checkout) {
    throw new BillingError(
      `tenant ${tenant.slug}: plan ${tenant.plan} needs a payment method and customer ${customerId} has none; configure checkout (successUrl, cancelUrl) to send the customer to Stripe Checkout, or attach a default payment method in Stripe`,
    );
  }
  const base: Stripe.Checkout.SessionCreateParams = {
    mode: 'subscription',
    customer: customerId,
    client_reference_id: tenant.id,
    line_items: [{ price: price.id, quantity: 1 }, ...meteredItems(metered)],
    success_url: ctx.checkout.successUrl,
    cancel_url: ctx.checkout.cancelUrl,
    metadata: tenantMetadata(tenant, { plan: tenant.plan }),
    subscription_data: { metadata: tenantMetadata(tenant, { plan: tenant.plan }), ...(trialDays > 0 ? { trial_period_days: trialDays } : {}) },
  };
  const request = fingerprint(base);
  const params: Stripe.Checkout.SessionCreateParams = { ...base, metadata: { ...base.metadata, checkout_request: request } };

  let reuse: Stripe.Checkout.Session | undefined;
  for await (const session of ctx.stripe.checkout.sessions.list({ customer: customerId, status: 'open', limit: 100 })) {
    if (session.metadata?.tenant_id !== tenant.id) continue;
    if (!reuse && session.metadata.checkout_request === request && session.url) reuse = session;
    else await ctx.stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: billingKeys.checkoutExpire(tenant.id, session.id) });
  }
  let session = reuse ?? (await ctx.stripe.checkout.sessions.create(params, { idempotencyKey: billingKeys.checkoutCreate(tenant.id, request) }));
  // A replay of a session that has expired since (the same request again within 24 hours): a new one.
  if (session.status !== 'open' || !session.url) {
    session = await ctx.stripe.checkout.sessions.create(params, { idempotencyKey: billingKeys.checkoutCreate(tenant.id, request, session.id) });
  }
  return { kind: 'checkout-required', reason, url: session.url!, sessionId: session.id, expiresAt: session.expires_at, priceId: price.id };
}
