import Stripe from 'stripe';
import { BillingError, wasReplayed, type BillingContext } from './billing-context';
import { tenantMetadata, type BillingTenant } from './billing-tenant';
import { checkoutRequired, type CheckoutRequired } from './checkout';
import { billingKeys } from './idempotency-keys';
import type { UsageDimension } from './meters';
import { applyPlanChange, previewPlanChange, type PlanChangePreview } from './plan-change';
import { checkMeteredPricesFit, ensureMeteredItems, licensedItem, meteredItems } from './subscription-items';

/** Statuses after which a subscription never bills again. */
const ENDED = new Set(['canceled', 'incomplete_expired']);

export interface Subscribed {
  readonly kind: 'subscribed';
  /**
   * existing: already on the plan; adopted: found by metadata (not recorded yet); created: new;
   * replayed: Stripe replayed an earlier run's create; plan-changed: item updated with
   * prorations; uncanceled: a pending cancellation (move to free) was lifted.
   */
  readonly action: 'existing' | 'adopted' | 'created' | 'replayed' | 'plan-changed' | 'uncanceled';
  readonly subscriptionId: string;
  readonly status: string;
  readonly priceId: string;
  readonly trialEnd: number | null;
  readonly preview?: PlanChangePreview;
  /** Usage dimensions whose metered item this run added to an existing subscription (one created before they were priced). */
  readonly meteredItemsAdded: readonly UsageDimension[];
}

/** A plan without subscription (free): none, or the paid one running out at its period end. */
export interface Unsubscribed {
  readonly kind: 'none';
  readonly action: 'none' | 'cancel-at-period-end';
  readonly subscriptionId: string | null;
  /** When the remaining paid subscription ends. */
  readonly endsAt: number | null;
}

export type SubscriptionOutcome = Subscribed | Unsubscribed | CheckoutRequired;

/**
 * The tenant's one subscription: one licensed item on its plan's price plus one metered item per
 * priced usage dimension (usage-prices.ts, subscription-items.ts). Found by the recorded id and by listing the
 * customer's subscriptions for metadata tenant_id (a list is consistent at once, unlike search);
 * then:
 * - no subscription, paid plan: with a default payment method, created with
 *   `payment_behavior: 'error_if_incomplete'` (nothing is created if the first payment fails),
 *   tenant metadata, and the plan's trial on the tenant's first subscription; without one, or
 *   when the card is declined, a Checkout Session (see checkout.ts) — never an incomplete one;
 * - an existing subscription lacking metered items (created before usage billing): they are
 *   added, nothing else changes (so every rerun converges, none duplicates);
 * - a subscription on another price: a proration preview, then the same licensed item updated
 *   with `proration_behavior: 'create_prorations'` (see plan-change.ts); metered items untouched;
 * - a plan without price (free): the subscription is set to cancel at the end of its period.
 * The id is recorded in the control plane (compare-and-set).
 */
export async function ensureSubscription(ctx: BillingContext, tenant: BillingTenant, customerId: string): Promise<SubscriptionOutcome> {
  const price = await ctx.prices.resolve(tenant.plan);
  let recorded = (await ctx.records.stripeIds(tenant.id))?.subscriptionId ?? null;
  const record = async (id: string | null) => {
    if (id === recorded) return;
    await ctx.records.setStripeSubscriptionId(tenant.id, id, recorded);
    recorded = id;
  };
  const { current, ended } = await tenantSubscriptions(ctx, tenant, customerId, recorded);
  const adopted = current !== undefined && current.id !== recorded;

  if (!price) {
    await record(current?.id ?? null);
    if (!current) return { kind: 'none', action: 'none', subscriptionId: null, endsAt: null };
    const endsAt = current.items.data[0]?.current_period_end ?? null;
    if (current.cancel_at_period_end) return { kind: 'none', action: 'none', subscriptionId: current.id, endsAt };
    await ctx.stripe.subscriptions.update(current.id, { cancel_at_period_end: true, metadata: tenantMetadata(tenant, { plan: tenant.plan }) });
    return { kind: 'none', action: 'cancel-at-period-end', subscriptionId: current.id, endsAt };
  }

  if (current) {
    await record(current.id);
    const item = licensedItem(current, tenant.slug);
    if (current.status === 'incomplete') {
      if (item.price.id === price.id) return subscribed(adopted ? 'adopted' : 'existing', current, price.id);
      throw new BillingError(`tenant ${tenant.slug}: subscription ${current.id} is incomplete (its first payment has not succeeded); it cannot change plan until it is paid or expires`);
    }
    const metered = await ctx.usagePrices.resolve();
    checkMeteredPricesFit(price, metered);
    // First the missing metered items (not prorated), so a plan change's preview is of the licensed item alone.
    const { subscription: sub, added } = await ensureMeteredItems(ctx, tenant, current, metered);
    if (item.price.id === price.id) {
      if (!sub.cancel_at_period_end) return subscribed(adopted ? 'adopted' : 'existing', sub, price.id, added);
      const resumed = await ctx.stripe.subscriptions.update(sub.id, { cancel_at_period_end: false, metadata: tenantMetadata(tenant, { plan: tenant.plan }) });
      return subscribed('uncanceled', resumed, price.id, added);
    }
    const preview = await previewPlanChange(ctx, tenant, sub, price);
    await ctx.onPlanChangePreview?.(preview);
    const updated = await applyPlanChange(ctx, tenant, preview, { uncancel: sub.cancel_at_period_end });
    return { ...subscribed('plan-changed', updated, price.id, added), preview };
  }

  await record(null);
  const customer = await ctx.stripe.customers.retrieve(customerId);
  if ('deleted' in customer && customer.deleted) throw new BillingError(`tenant ${tenant.slug}: Stripe customer ${customerId} was deleted`);
  const live = customer as Stripe.Customer;
  // Only the tenant's first subscription gets a trial.
  const trialDays = ended === 0 ? ctx.trialDays(tenant.plan) : 0;
  const paymentMethod = live.invoice_settings?.default_payment_method ?? live.default_source ?? null;
  const metered = await ctx.usagePrices.resolve();
  checkMeteredPricesFit(price, metered);
  // Metered usage is billed too: a $0 plan with metered items needs a card like a paid one.
  if ((price.unitAmount > 0 || metered.length > 0) && !paymentMethod) return checkoutRequired(ctx, tenant, customerId, price, metered, trialDays, 'no-payment-method');

  const params: Stripe.SubscriptionCreateParams = {
    customer: customerId,
    items: [{ price: price.id, quantity: 1 }, ...meteredItems(metered)],
    payment_behavior: 'error_if_incomplete',
    metadata: tenantMetadata(tenant, { plan: tenant.plan }),
    ...(trialDays > 0 ? { trial_period_days: trialDays } : {}),
  };
  let created: Stripe.Subscription;
  try {
    const pm = typeof paymentMethod === 'string' || paymentMethod === null ? paymentMethod : paymentMethod.id;
    created = await ctx.stripe.subscriptions.create(params, { idempotencyKey: billingKeys.subscriptionCreate(tenant.id, ended, { params, paymentMethod: pm }) });
  } catch (e) {
    if (e instanceof Stripe.errors.StripeCardError) return checkoutRequired(ctx, tenant, customerId, price, metered, trialDays, 'card-declined');
    throw e;
  }
  await record(created.id);
  return subscribed(wasReplayed(created) ? 'replayed' : 'created', created, price.id);
}

function subscribed(action: Subscribed['action'], sub: Stripe.Subscription, priceId: string, meteredItemsAdded: readonly UsageDimension[] = []): Subscribed {
  return { kind: 'subscribed', action, subscriptionId: sub.id, status: sub.status, priceId, trialEnd: sub.trial_end, meteredItemsAdded };
}

/** The tenant's live subscription (at most one) and how many ended ones it had. */
async function tenantSubscriptions(ctx: BillingContext, tenant: BillingTenant, customerId: string, recorded: string | null): Promise<{ current?: Stripe.Subscription; ended: number }> {
  const mine: Stripe.Subscription[] = [];
  for await (const sub of ctx.stripe.subscriptions.list({ customer: customerId, status: 'all', limit: 100 })) {
    if (sub.metadata?.tenant_id === tenant.id || sub.id === recorded) mine.push(sub);
  }
  if (recorded && !mine.some((s) => s.id === recorded)) {
    throw new BillingError(`tenant ${tenant.slug}: recorded subscription ${recorded} is not a subscription of its customer ${customerId}`);
  }
  const live = mine.filter((s) => !ENDED.has(s.status));
  if (live.length > 1) {
    throw new BillingError(`tenant ${tenant.slug}: ${live.length} live Stripe subscriptions (${live.map((s) => s.id).join(', ')}); tenancy manages one per tenant — cancel the others in Stripe, then rerun`);
  }
  return { current: live[0], ended: mine.length - live.length };
}
