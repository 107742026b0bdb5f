import type Stripe from 'stripe';
import { PLANS, type Plan } from '../registry/tenant-schema';
import { BillingError, type BillingContext } from './billing-context';
import type { BillingTenant } from './billing-tenant';
import { previewPlanChange, type PlanChangePreview, type ProrationLine } from './plan-change';
import { licensedItem } from './subscription-items';

/**
 * A plan change Stripe has applied already: the subscription bills the new plan's price. What
 * it left on the next invoice is read back from Stripe (its pending proration items), so a run
 * that completes an interrupted change records the amounts Stripe billed, not a recomputation.
 */
export interface AppliedPlanChange {
  readonly tenantId: string;
  readonly customerId: string;
  readonly subscriptionId: string;
  /** The plan whose unused time the change credited, when Stripe's pending items tell it (else null). */
  readonly fromPlan: Plan | null;
  readonly toPlan: Plan;
  readonly toPrice: string;
  /** Unix seconds: the proration date of the newest prorations pending on the subscription, if any. */
  readonly prorationDate: number | null;
  readonly currency: string;
  /** The newest change's proration lines still pending (empty when already invoiced, or none: a trial). */
  readonly prorations: readonly ProrationLine[];
  readonly prorationTotal: number;
  readonly nextInvoiceTotal: number;
  readonly nextInvoiceAt: number;
}

/** Where moving a tenant to a plan stands in Stripe: still to apply (with its preview), or applied. */
export type PlanChangeStatus =
  | { readonly kind: 'pending'; readonly preview: PlanChangePreview }
  | { readonly kind: 'applied'; readonly applied: AppliedPlanChange };

/**
 * The tenant's recorded subscription compared with `plan`'s price: `pending` with the preview of
 * the change (`invoices.createPreview` at `prorationDate`), or `applied` when the subscription is
 * on that price already — how `tenancy plan` tells a first run from the rerun of one that stopped
 * after Stripe applied the change (it then completes the registry and the control plane without a
 * second Stripe change). A plan without a price (free), a tenant without a subscription, a
 * canceled one or one without exactly one licensed item is a {@link BillingError}: not a prorated change.
 */
export async function planChangeStatus(ctx: BillingContext, tenant: BillingTenant, plan: Plan, prorationDate = ctx.now()): Promise<PlanChangeStatus> {
  // `tenant.plan` is the plan the change is from (for an applied one: whose credit to look for).
  const price = await ctx.prices.resolve(plan);
  if (!price) throw new BillingError(`plan ${plan} has no subscription price: moving to it cancels the subscription at the period end, nothing is prorated`);
  const ids = await ctx.records.stripeIds(tenant.id);
  if (!ids?.subscriptionId) throw new BillingError(`tenant ${tenant.slug} has no recorded Stripe subscription to change`);
  const sub = await ctx.stripe.subscriptions.retrieve(ids.subscriptionId);
  if (['canceled', 'incomplete_expired'].includes(sub.status)) throw new BillingError(`tenant ${tenant.slug}: subscription ${sub.id} is ${sub.status}`);
  if (sub.status === 'incomplete') throw new BillingError(`tenant ${tenant.slug}: subscription ${sub.id} is incomplete (its first payment has not succeeded); it cannot change plan until it is paid`);
  const item = licensedItem(sub, tenant.slug);
  if (item.price.id !== price.id) return { kind: 'pending', preview: await previewPlanChange(ctx, { ...tenant, plan }, sub, price, prorationDate) };
  const fromPrice = tenant.plan === plan ? null : await ctx.prices.resolve(tenant.plan);
  const applied = await appliedPlanChange(ctx.stripe, tenant, sub, plan, fromPrice?.id ?? null);
  return { kind: 'applied', applied: { ...applied, fromPlan: fromPrice ? tenant.plan : await planOfPrice(ctx, applied.creditedPrice) } };
}

/** The plan billed by `priceId` (null when none is). */
async function planOfPrice(ctx: BillingContext, priceId: string | null): Promise<Plan | null> {
  if (!priceId) return null;
  for (const plan of PLANS) if ((await ctx.prices.resolve(plan))?.id === priceId) return plan;
  return null;
}

/**
 * The change from `tenant.plan` (its price `fromPrice`) to `plan` as Stripe left it: its pending
 * proration items, the credit on the old price and the charge on the new one, at the newest
 * proration date (an earlier change of the period, even in the same second, has other prices).
 */
async function appliedPlanChange(stripe: Stripe, tenant: BillingTenant, sub: Stripe.Subscription, plan: Plan, fromPrice: string | null): Promise<Omit<AppliedPlanChange, 'fromPlan'> & { creditedPrice: string | null }> {
  const item = licensedItem(sub, tenant.slug);
  const customerId = typeof sub.customer === 'string' ? sub.customer : sub.customer.id;
  const invoice = await stripe.invoices.createPreview({ customer: customerId, subscription: sub.id });
  const priceOf = (l: Stripe.InvoiceLineItem): string | undefined => {
    const price = l.pricing?.price_details?.price;
    return typeof price === 'string' ? price : price?.id;
  };
  const pending = invoice.lines.data.filter(
    (l) => l.parent?.subscription_item_details?.proration && l.parent.subscription_item_details.invoice_item &&
      // The old price unknown (the caller's plan records say the new one already): any credit.
      ((l.amount <= 0 && (fromPrice === null ? priceOf(l) !== item.price.id : priceOf(l) === fromPrice)) || (l.amount >= 0 && priceOf(l) === item.price.id)),
  );
  const charges = pending.filter((l) => l.amount >= 0 && priceOf(l) === item.price.id);
  const prorationDate = charges.length > 0 ? Math.max(...charges.map((l) => l.period.start)) : null;
  const newest = pending.filter((l) => l.period.start === prorationDate);
  const credited = [...new Set(newest.filter((l) => l.amount < 0).map((l) => priceOf(l) ?? null))];
  const prorations = newest.map((l) => ({ description: l.description, amount: l.amount, periodStart: l.period.start, periodEnd: l.period.end }));
  return {
    tenantId: tenant.id,
    customerId,
    subscriptionId: sub.id,
    creditedPrice: credited.length === 1 ? credited[0] : null,
    toPlan: plan,
    toPrice: item.price.id,
    prorationDate,
    currency: invoice.currency,
    prorations,
    prorationTotal: prorations.reduce((sum, l) => sum + l.amount, 0),
    nextInvoiceTotal: invoice.total,
    nextInvoiceAt: item.current_period_end,
  };
}
