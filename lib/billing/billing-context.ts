import type Stripe from 'stripe';
import type { ControlPlane } from '../control-plane/control-plane';
import type { Plan } from '../registry/tenant-schema';
import type { PlanChangePreview } from './plan-change';
import type { PlanPriceResolver } from './plan-prices';
import type { UsagePriceResolver } from './usage-prices';

/** Where billing records a tenant's Stripe ids: the control plane's tenancy.tenants columns. */
export type BillingRecords = Pick<ControlPlane, 'stripeIds' | 'setStripeCustomerId' | 'setStripeSubscriptionId'>;

/** Where Stripe Checkout sends the customer back to. */
export interface CheckoutUrls {
  readonly successUrl: string;
  readonly cancelUrl: string;
}

/** What every billing step uses. */
export interface BillingContext {
  readonly stripe: Stripe;
  readonly records: BillingRecords;
  readonly prices: PlanPriceResolver;
  /** The metered prices every subscription carries besides its plan's (usage-prices.ts). */
  readonly usagePrices: UsagePriceResolver;
  /** Trial days of a plan's first subscription (0: none). */
  readonly trialDays: (plan: Plan) => number;
  /** Needed to send a customer without a payment method to Checkout. */
  readonly checkout?: CheckoutUrls;
  /** Unix seconds; the proration date of plan changes. */
  readonly now: () => number;
  /** Sees every plan-change preview before the change is applied; throwing aborts the change. */
  readonly onPlanChangePreview?: (preview: PlanChangePreview) => void | Promise<void>;
}

/** A billing state that needs a person (several customers for one tenant, a deleted customer, …). */
export class BillingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BillingError';
  }
}

/** True when Stripe replayed a saved response for the request's idempotency key. */
export function wasReplayed(response: object): boolean {
  const { lastResponse } = response as { lastResponse?: { headers?: Record<string, string> } };
  return lastResponse?.headers?.['idempotent-replayed'] === 'true';
}
