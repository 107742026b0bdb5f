import type Stripe from 'stripe';
import { PLANS, type Plan } from '../registry/tenant-schema';
import { BillingError, type BillingContext, type BillingRecords, type CheckoutUrls } from './billing-context';
import type { BillingTenant } from './billing-tenant';
import { ensureCustomer, type CustomerOutcome } from './customer';
import { applyPlanChange, previewPlanChange, type PlanChangePreview } from './plan-change';
import { planChangeStatus, type PlanChangeStatus } from './plan-change-status';
import { DEFAULT_PLAN_PRICES, PlanPriceResolver, type PlanPrices } from './plan-prices';
import { ensureSubscription, type SubscriptionOutcome } from './subscription';
import { licensedItem } from './subscription-items';
import { DEFAULT_USAGE_PRICES, UsagePriceResolver, type UsagePrices } from './usage-prices';

export interface StripeBillingOptions {
  readonly stripe: Stripe;
  /** The control plane (or anything with its three Stripe-id methods). */
  readonly records: BillingRecords;
  /** Plan → price mapping, or a resolver shared between instances (its cache with it). @default DEFAULT_PLAN_PRICES */
  readonly prices?: PlanPrices | PlanPriceResolver;
  /**
   * Usage dimension → metered price every subscription carries besides the plan's (or a shared
   * resolver). A dimension mapped to null gets no item (metered, not invoiced); NO_USAGE_PRICES
   * attaches none. @default DEFAULT_USAGE_PRICES (the catalog set-up's metered prices)
   */
  readonly usagePrices?: UsagePrices | UsagePriceResolver;
  /** Trial days of a tenant's first subscription: one number for every paid plan, or per plan. @default 0 */
  readonly trialDays?: number | Partial<Record<Plan, number>>;
  /** Stripe Checkout return URLs; without them a paid plan without payment method is an error. */
  readonly checkout?: CheckoutUrls;
  /** Unix seconds. @default the system clock */
  readonly now?: () => number;
  /** Sees each plan change's proration preview before it is applied; throwing aborts the change. */
  readonly onPlanChangePreview?: (preview: PlanChangePreview) => void | Promise<void>;
}

export interface BillingOutcome {
  readonly customer: CustomerOutcome;
  readonly subscription: SubscriptionOutcome;
}

/** A tenant's Stripe billing: its customer, its subscription on its plan, plan changes. */
export class StripeBilling {
  private readonly ctx: BillingContext;

  constructor(options: StripeBillingOptions) {
    const trialDays = checkTrialDays(options.trialDays ?? 0);
    if (options.checkout) checkCheckoutUrls(options.checkout);
    this.ctx = {
      stripe: options.stripe,
      records: options.records,
      prices: options.prices instanceof PlanPriceResolver ? options.prices : new PlanPriceResolver(options.stripe, options.prices ?? DEFAULT_PLAN_PRICES),
      usagePrices: options.usagePrices instanceof UsagePriceResolver ? options.usagePrices : new UsagePriceResolver(options.stripe, options.usagePrices ?? DEFAULT_USAGE_PRICES),
      trialDays: (plan) => (typeof trialDays === 'number' ? trialDays : (trialDays[plan] ?? 0)),
      checkout: options.checkout,
      now: options.now ?? (() => Math.floor(Date.now() / 1000)),
      onPlanChangePreview: options.onPlanChangePreview,
    };
  }

  /** The tenant's one Stripe customer, recorded in the control plane (see customer.ts). */
  ensureCustomer(tenant: BillingTenant): Promise<CustomerOutcome> {
    return ensureCustomer(this.ctx, tenant);
  }

  /** The tenant's subscription on `plan` (see subscription.ts); ensures the customer first. */
  async ensureSubscription(tenant: BillingTenant, plan: Plan = tenant.plan): Promise<SubscriptionOutcome> {
    const on = { ...tenant, plan };
    const { customerId } = await ensureCustomer(this.ctx, on);
    return ensureSubscription(this.ctx, on, customerId);
  }

  /** Customer, then subscription: what the billing hook runs for each tenant. */
  async reconcile(tenant: BillingTenant): Promise<BillingOutcome> {
    const customer = await ensureCustomer(this.ctx, tenant);
    const subscription = await ensureSubscription(this.ctx, tenant, customer.customerId);
    return { customer, subscription };
  }

  /**
   * What moving the tenant's subscription to `plan` would bill, without changing anything — to
   * show before {@link applyPlanChange}.
   */
  async previewPlanChange(tenant: BillingTenant, plan: Plan): Promise<PlanChangePreview> {
    const on = { ...tenant, plan };
    const price = await this.ctx.prices.resolve(plan);
    if (!price) throw new BillingError(`plan ${plan} has no subscription: moving to it cancels at the period end, nothing is prorated`);
    const ids = await this.ctx.records.stripeIds(tenant.id);
    if (!ids?.subscriptionId) throw new BillingError(`tenant ${tenant.slug} has no recorded subscription to change`);
    const sub = await this.ctx.stripe.subscriptions.retrieve(ids.subscriptionId);
    if (licensedItem(sub, tenant.slug).price.id === price.id) throw new BillingError(`tenant ${tenant.slug} is already on plan ${plan} (${price.id})`);
    return previewPlanChange(this.ctx, on, sub, price);
  }

  /**
   * Whether moving the tenant to `plan` is still to apply in Stripe (with its preview) or applied
   * already (an earlier run's, with the prorations it left): see plan-change-status.ts.
   */
  planChangeStatus(tenant: BillingTenant, plan: Plan): Promise<PlanChangeStatus> {
    return planChangeStatus(this.ctx, tenant, plan);
  }

  /** Applies a preview: the same item, the same proration date, so the preview's amounts hold. */
  applyPlanChange(tenant: BillingTenant, preview: PlanChangePreview): Promise<Stripe.Subscription> {
    return applyPlanChange(this.ctx, { ...tenant, plan: preview.toPlan }, preview);
  }
}

function checkTrialDays(days: number | Partial<Record<Plan, number>>): number | Partial<Record<Plan, number>> {
  const check = (n: number, what: string) => {
    if (!Number.isInteger(n) || n < 0 || n > 730) throw new BillingError(`${what}: ${n} is not a whole number of days from 0 to 730 (Stripe's limit)`);
  };
  if (typeof days === 'number') check(days, 'trialDays');
  else {
    for (const [plan, n] of Object.entries(days)) {
      if (!(PLANS as readonly string[]).includes(plan)) throw new BillingError(`trialDays: unknown plan ${plan}`);
      check(n as number, `trialDays.${plan}`);
    }
  }
  return days;
}

function checkCheckoutUrls(urls: CheckoutUrls): void {
  for (const [name, value] of Object.entries(urls)) {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new BillingError(`checkout.${name}: ${JSON.stringify(value)} is not an absolute http(s) URL`);
  }
}
