import type Stripe from 'stripe';
import type { TenantOutputs } from '../hooks/deploy-outputs';
import type { PostApplyHook } from '../hooks/post-apply-hook';
import type { Plan } from '../registry/tenant-schema';
import type { CheckoutUrls } from './billing-context';
import { billingTenantOf, type BillingProfile } from './billing-tenant';
import type { PlanChangePreview } from './plan-change';
import { DEFAULT_PLAN_PRICES, PlanPriceResolver, checkPlanPrices, type PlanPrices } from './plan-prices';
import { StripeBilling, type BillingOutcome } from './stripe-billing';
import { createStripeClient, type StripeConnection } from './stripe-client';
import { resolveStripeKey, stripeKeySource, type StripeKeyOptions } from './stripe-key';
import { DEFAULT_USAGE_PRICES, UsagePriceResolver, checkUsagePrices, type UsagePrices } from './usage-prices';

export const BILLING_HOOK_NAME = 'billing';
export const NO_STRIPE_KEY = 'no Stripe key configured';

export interface BillingHookOptions {
  /** Where the secret key comes from. @default STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_REF in process.env */
  readonly key?: StripeKeyOptions;
  /** api.stripe.com unless set (the local server in tests and benchmarks). */
  readonly connection?: StripeConnection;
  /** @default DEFAULT_PLAN_PRICES (free: no subscription; others by lookup key) */
  readonly prices?: PlanPrices;
  /**
   * Metered prices each subscription carries besides the plan's (null: that dimension gets no item).
   * Part of the hook's input: a change (or upgrading to a tenancy that attaches them) reruns the
   * hook for every tenant, which adds the missing items to existing subscriptions.
   * @default DEFAULT_USAGE_PRICES
   */
  readonly usagePrices?: UsagePrices;
  /** @default 0 */
  readonly trialDays?: number | Partial<Record<Plan, number>>;
  /** Stripe Checkout return URLs, for paid plans whose customer has no payment method. */
  readonly checkout?: CheckoutUrls;
  /** Contact details the outputs lack (e.g. the registry's adminEmail and company, by slug). */
  readonly profile?: (tenant: TenantOutputs) => BillingProfile | undefined;
  readonly onPlanChangePreview?: (preview: PlanChangePreview) => void | Promise<void>;
  /** Unix seconds (proration dates). @default the system clock */
  readonly now?: () => number;
  /** Builds the SDK client for a key. @default createStripeClient(key, connection) */
  readonly client?: (key: string) => Stripe;
}

/** The customer must act (pay on Checkout) before billing is complete; the hook reruns next time. */
export class BillingActionRequiredError extends Error {
  constructor(message: string, readonly checkoutUrl: string, readonly sessionId: string) {
    super(message);
    this.name = 'BillingActionRequiredError';
  }
}

/**
 * The post-apply hook `billing` (every model, after `activate`): the tenant's Stripe customer
 * and its subscription on its plan (lib/billing/stripe-billing.ts). Add it to the hooks of a
 * run: `[...builtinHooks(migrations), billingHook({ checkout: { successUrl, cancelUrl } })]`.
 *
 * - No key configured: the run succeeds with `{ skipped: 'no Stripe key configured' }` — said,
 *   never silent; the key source is part of the input, so configuring one reruns the hook.
 * - A paid plan whose customer has no payment method: the hook fails with the Checkout URL to
 *   send the customer to (a failed run is rerun by the next post-apply; a succeeded one would
 *   be skipped as unchanged and never notice the payment). No subscription exists until then.
 * - A plan change: the proration preview is in the result (and passed to onPlanChangePreview).
 *
 * Its input is the tenant, plan, price mapping, trial, checkout URLs, profile and key source
 * (never the key): changes in Stripe alone (a canceled subscription) need `post-apply --force`.
 */
export function billingHook(options: BillingHookOptions = {}): PostApplyHook {
  const prices = checkPlanPrices(options.prices ?? DEFAULT_PLAN_PRICES);
  const usagePrices = checkUsagePrices(options.usagePrices ?? DEFAULT_USAGE_PRICES);
  let client: Promise<{ stripe: Stripe; resolver: PlanPriceResolver; usageResolver: UsagePriceResolver; mode: string } | undefined> | undefined;
  const connect = () =>
    (client ??= resolveStripeKey(options.key).then((resolved) => {
      if (!resolved) return undefined;
      const stripe = options.client ? options.client(resolved.key) : createStripeClient(resolved.key, options.connection);
      return { stripe, resolver: new PlanPriceResolver(stripe, prices), usageResolver: new UsagePriceResolver(stripe, usagePrices), mode: resolved.mode };
    })).catch((e) => {
      client = undefined;
      throw e;
    });

  return {
    name: BILLING_HOOK_NAME,
    input: ({ tenant }) => {
      const source = stripeKeySource(options.key);
      return {
        tenant: tenant.tenant_id,
        slug: tenant.slug,
        plan: tenant.plan,
        price: prices[tenant.plan],
        // Only paid (subscribed) plans carry metered items; a free tenant's input does not change with them.
        usage: prices[tenant.plan] ? usagePrices : null,
        trialDays: options.trialDays ?? 0,
        checkout: options.checkout ?? null,
        profile: options.profile?.(tenant) ?? null,
        key: source.kind === 'env' ? `env:${source.variable}:${source.mode}` : source.kind === 'secret' ? `secret:${source.ref}` : 'none',
        connection: options.connection ? { host: options.connection.host ?? null, port: options.connection.port ?? null } : null,
      };
    },
    async run({ tenant, controlPlane }) {
      const connected = await connect();
      if (!connected) return { skipped: NO_STRIPE_KEY };
      const billing = new StripeBilling({
        stripe: connected.stripe,
        records: controlPlane,
        prices: connected.resolver,
        usagePrices: connected.usageResolver,
        trialDays: options.trialDays,
        checkout: options.checkout,
        now: options.now,
        onPlanChangePreview: options.onPlanChangePreview,
      });
      const outcome = await billing.reconcile(billingTenantOf(tenant, options.profile?.(tenant)));
      const sub = outcome.subscription;
      if (sub.kind === 'checkout-required') {
        throw new BillingActionRequiredError(
          `billing: plan ${tenant.plan} needs a payment method (${sub.reason === 'card-declined' ? 'the card on file was declined' : 'customer has none'}): ` +
            `send the customer to ${sub.url} (Checkout Session ${sub.sessionId}, expires ${new Date(sub.expiresAt * 1000).toISOString()}); no subscription exists until it is completed — rerun post-apply then`,
          sub.url,
          sub.sessionId,
        );
      }
      return hookResult(connected.mode, outcome);
    },
  };
}

/** The small JSON recorded in tenancy.hook_runs. */
function hookResult(mode: string, { customer, subscription: sub }: BillingOutcome): Record<string, unknown> {
  const base = { mode, customer: customer.customerId, customer_action: customer.action };
  if (sub.kind === 'none') return { ...base, subscription: sub.subscriptionId, subscription_action: sub.action, ends_at: sub.endsAt };
  if (sub.kind === 'checkout-required') return { ...base, subscription: null, checkout_url: sub.url };
  return {
    ...base,
    subscription: sub.subscriptionId,
    subscription_action: sub.action,
    status: sub.status,
    price: sub.priceId,
    trial_end: sub.trialEnd,
    ...(sub.meteredItemsAdded.length > 0 ? { metered_items_added: sub.meteredItemsAdded } : {}),
    ...(sub.preview
      ? {
          plan_change: {
            from: sub.preview.fromPlan,
            to: sub.preview.toPlan,
            proration_date: sub.preview.prorationDate,
            currency: sub.preview.currency,
            prorations: sub.preview.prorations.map((l) => ({ description: l.description, amount: l.amount })),
            proration_total: sub.preview.prorationTotal,
            next_invoice_total: sub.preview.nextInvoiceTotal,
            next_invoice_at: sub.preview.nextInvoiceAt,
          },
        }
      : {}),
  };
}
