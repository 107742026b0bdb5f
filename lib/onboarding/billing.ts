import type Stripe from 'stripe';
import { billingHook, createStripeClient, resolveStripeKey, StripeBilling, type BillingHookOptions, type CheckoutUrls, type StripeConnection } from '../billing';
import type { ControlPlane } from '../control-plane/control-plane';
import type { PostApplyHook } from '../hooks/post-apply-hook';
import type { Plan } from '../registry/tenant-schema';

/**
 * The lifecycle's view of billing (lib/billing, Stripe):
 *
 * - onboarding step `billing`: the billing post-apply hook (`billingHook`: the tenant's one Stripe
 *   customer and its subscription on its plan), run through runPostApply like the data-plane
 *   hooks, so its runs are recorded in tenancy.hook_runs and skipped when unchanged. When the
 *   request carried a payment method (a `pm_…` collected by the signup page), it is attached to
 *   the customer first and made its default; without one, a paid plan makes the hook fail with
 *   the Checkout URL the customer must complete (the job's last error; the queue retries it, and
 *   the retry after payment finds the subscription Checkout created).
 * - offboarding step `cancel-billing`: the recorded subscription canceled now.
 *
 * Both are idempotent per tenant (Stripe idempotency keys and the ids recorded in the control plane).
 */
export interface BillingProvider {
  /** The billing hook, with the registry's contact details (they are not in the deploy outputs). */
  hookFor(profile: { email: string; name: string }): PostApplyHook;
  /** Attaches `paymentMethod` to the tenant's customer (created if needed) unless it has a default one already. */
  preparePayment(tenant: { id: string; slug: string; plan: Plan; email: string; name: string }, paymentMethod: string, controlPlane: ControlPlane): Promise<Record<string, unknown>>;
  /** Cancels the tenant's subscription; a tenant without one (or already canceled) is not an error. */
  cancel(tenant: { id: string; slug: string }, controlPlane: ControlPlane): Promise<Record<string, unknown>>;
  /** Billing for `tenancy plan` (previews and plan changes) on this account; undefined without a Stripe key. */
  planChanges?(controlPlane: ControlPlane): Promise<{ stripe: Stripe; billing: StripeBilling } | undefined>;
}

export interface StripeBillingProviderOptions {
  /** Where STRIPE_SECRET_KEY / STRIPE_SECRET_KEY_REF are read. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The Stripe API endpoint (the local server in tests and benchmarks). @default api.stripe.com */
  readonly connection?: StripeConnection;
  readonly checkout?: CheckoutUrls;
  readonly trialDays?: BillingHookOptions['trialDays'];
  readonly prices?: BillingHookOptions['prices'];
  /** @default DEFAULT_USAGE_PRICES (lib/billing usage-prices.ts) */
  readonly usagePrices?: BillingHookOptions['usagePrices'];
}

export class StripeBillingProvider implements BillingProvider {
  private stripe?: Promise<Stripe | undefined>;

  constructor(private readonly options: StripeBillingProviderOptions = {}) {}

  hookFor(profile: { email: string; name: string }): PostApplyHook {
    return billingHook({
      key: { env: this.options.env },
      connection: this.options.connection,
      checkout: this.options.checkout,
      trialDays: this.options.trialDays,
      prices: this.options.prices,
      usagePrices: this.options.usagePrices,
      profile: () => profile,
    });
  }

  private client(): Promise<Stripe | undefined> {
    return (this.stripe ??= resolveStripeKey({ env: this.options.env }).then((r) => (r ? createStripeClient(r.key, this.options.connection) : undefined))).catch((e) => {
      this.stripe = undefined;
      throw e;
    });
  }

  async preparePayment(tenant: { id: string; slug: string; plan: Plan; email: string; name: string }, paymentMethod: string, controlPlane: ControlPlane): Promise<Record<string, unknown>> {
    const stripe = await this.client();
    if (!stripe) return { skipped: 'no Stripe key configured' };
    const billing = new StripeBilling({ stripe, records: controlPlane, prices: this.options.prices });
    const { customerId } = await billing.ensureCustomer({ id: tenant.id, slug: tenant.slug, plan: tenant.plan, email: tenant.email, name: tenant.name });
    const customer = (await stripe.customers.retrieve(customerId)) as Stripe.Customer;
    const current = customer.invoice_settings?.default_payment_method;
    if (current) return { customer: customerId, paymentMethod: typeof current === 'string' ? current : current.id, action: 'existing' };
    const attached = await stripe.paymentMethods.attach(paymentMethod, { customer: customerId });
    await stripe.customers.update(customerId, { invoice_settings: { default_payment_method: attached.id } });
    return { customer: customerId, paymentMethod: attached.id, action: 'attached' };
  }

  async planChanges(controlPlane: ControlPlane): Promise<{ stripe: Stripe; billing: StripeBilling } | undefined> {
    const stripe = await this.client();
    return stripe ? { stripe, billing: new StripeBilling({ stripe, records: controlPlane, prices: this.options.prices, usagePrices: this.options.usagePrices }) } : undefined;
  }

  async cancel(tenant: { id: string; slug: string }, controlPlane: ControlPlane): Promise<Record<string, unknown>> {
    const ids = await controlPlane.stripeIds(tenant.id);
    if (!ids?.subscriptionId) return { customer: ids?.customerId ?? null, subscription: null, action: 'none' };
    const stripe = await this.client();
    if (!stripe) throw new Error(`tenant ${tenant.slug} has subscription ${ids.subscriptionId} but no Stripe key is configured to cancel it`);
    const sub = await stripe.subscriptions.retrieve(ids.subscriptionId);
    if (sub.status === 'canceled' || sub.status === 'incomplete_expired') return { customer: ids.customerId, subscription: sub.id, action: 'already-canceled', status: sub.status };
    const canceled = await stripe.subscriptions.cancel(sub.id, { cancellation_details: { comment: `tenancy offboarding of ${tenant.slug} (${tenant.id})` } }, { idempotencyKey: `tenancy:${tenant.id}:subscription:${sub.id}:cancel` });
    return { customer: ids.customerId, subscription: canceled.id, action: 'canceled', status: canceled.status };
  }
}

/**
 * Billing as configured by the environment: STRIPE_SECRET_KEY (or STRIPE_SECRET_KEY_REF, a
 * secret holding it); TENANCY_STRIPE_API_URL for another endpoint than api.stripe.com (the local
 * server); TENANCY_BILLING_SUCCESS_URL and TENANCY_BILLING_CANCEL_URL for Checkout; and
 * TENANCY_BILLING_TRIAL_DAYS. Without a key the billing hook records `skipped` (lib/billing).
 */
export function billingFromConfig(env: NodeJS.ProcessEnv): BillingProvider {
  let connection: StripeConnection | undefined;
  if (env.TENANCY_STRIPE_API_URL) {
    const u = new URL(env.TENANCY_STRIPE_API_URL);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('TENANCY_STRIPE_API_URL must be an http(s) URL');
    connection = { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)), protocol: u.protocol === 'https:' ? 'https' : 'http' };
  }
  const checkout = env.TENANCY_BILLING_SUCCESS_URL && env.TENANCY_BILLING_CANCEL_URL ? { successUrl: env.TENANCY_BILLING_SUCCESS_URL, cancelUrl: env.TENANCY_BILLING_CANCEL_URL } : undefined;
  const trialDays = env.TENANCY_BILLING_TRIAL_DAYS ? Number(env.TENANCY_BILLING_TRIAL_DAYS) : undefined;
  return new StripeBillingProvider({ env, connection, checkout, trialDays });
}
