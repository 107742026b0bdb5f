import type Stripe from 'stripe';
import type { Plan } from '../registry/tenant-schema';
import type { BillingContext } from './billing-context';
import { tenantMetadata, type BillingTenant } from './billing-tenant';
import { billingKeys } from './idempotency-keys';
import type { PlanPrice } from './plan-prices';
import { licensedItem } from './subscription-items';

/** One proration line of a plan change: a credit (negative) for the old price, a charge for the new. */
export interface ProrationLine {
  readonly description: string | null;
  /** Minor units (cents). */
  readonly amount: number;
  readonly periodStart: number;
  readonly periodEnd: number;
}

/**
 * What a plan change will cost, from `invoices.createPreview` — for the caller to show (or to
 * refuse, from onPlanChangePreview) before the same change is applied with the same
 * proration date, so the amounts shown are the amounts billed.
 */
export interface PlanChangePreview {
  readonly tenantId: string;
  readonly customerId: string;
  readonly subscriptionId: string;
  /** The licensed item (the plan's price) the change moves; metered items are left as they are. */
  readonly subscriptionItemId: string;
  readonly fromPlan: string | null;
  readonly toPlan: Plan;
  readonly fromPrice: string;
  readonly toPrice: string;
  /** Unix seconds: the proration date of the preview and of the update. */
  readonly prorationDate: number;
  readonly currency: string;
  readonly prorations: readonly ProrationLine[];
  /** The change's net effect on the next invoice (sum of the proration lines). */
  readonly prorationTotal: number;
  /** The next invoice with the change: prorations plus the next period at the new price. */
  readonly nextInvoiceTotal: number;
  /** When that invoice is due: the end of the current period. */
  readonly nextInvoiceAt: number;
}

export async function previewPlanChange(
  ctx: BillingContext,
  tenant: BillingTenant,
  subscription: Stripe.Subscription,
  price: PlanPrice,
  prorationDate = ctx.now(),
): Promise<PlanChangePreview> {
  // Only the licensed item (the plan) changes; metered items stay as they are and are not prorated.
  const item = licensedItem(subscription, tenant.slug);
  const customerId = typeof subscription.customer === 'string' ? subscription.customer : subscription.customer.id;
  const invoice = await ctx.stripe.invoices.createPreview({
    customer: customerId,
    subscription: subscription.id,
    subscription_details: { items: [{ id: item.id, price: price.id, quantity: 1 }], proration_behavior: 'create_prorations', proration_date: prorationDate },
  });
  // Lines of this change: prorations not yet invoice items (earlier changes' pending items carry theirs).
  const prorations = invoice.lines.data
    .filter((l) => l.parent?.subscription_item_details?.proration && !l.parent.subscription_item_details.invoice_item)
    .map((l) => ({ description: l.description, amount: l.amount, periodStart: l.period.start, periodEnd: l.period.end }));
  return {
    tenantId: tenant.id,
    customerId,
    subscriptionId: subscription.id,
    subscriptionItemId: item.id,
    fromPlan: subscription.metadata.plan ?? null,
    toPlan: tenant.plan,
    fromPrice: item.price.id,
    toPrice: price.id,
    prorationDate,
    currency: invoice.currency,
    prorations,
    prorationTotal: prorations.reduce((sum, l) => sum + l.amount, 0),
    nextInvoiceTotal: invoice.total,
    nextInvoiceAt: item.current_period_end,
  };
}

/**
 * Applies a previewed change to the existing licensed item (never a second subscription; the
 * metered items, not named, stay as they are),
 * with `proration_behavior: 'create_prorations'` and the preview's proration date; the
 * prorations are billed on the next invoice. Also lifts a pending cancellation (a tenant moved
 * back from free before its paid period ended).
 */
export async function applyPlanChange(ctx: BillingContext, tenant: BillingTenant, preview: PlanChangePreview, options: { uncancel?: boolean } = {}): Promise<Stripe.Subscription> {
  return ctx.stripe.subscriptions.update(
    preview.subscriptionId,
    {
      items: [{ id: preview.subscriptionItemId, price: preview.toPrice, quantity: 1 }],
      proration_behavior: 'create_prorations',
      proration_date: preview.prorationDate,
      metadata: tenantMetadata(tenant, { plan: preview.toPlan }),
      ...(options.uncancel ? { cancel_at_period_end: false } : {}),
    },
    { idempotencyKey: billingKeys.planChange(tenant.id, preview.subscriptionId, preview.toPlan, preview.prorationDate) },
  );
}
