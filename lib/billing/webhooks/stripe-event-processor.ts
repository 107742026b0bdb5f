import type { Pool } from 'pg';
import type Stripe from 'stripe';
import { inTransaction } from '../../control-plane/transaction';
import { DEFAULT_PLAN_PRICES, checkPlanPrices, type PlanPrices } from '../plan-prices';
import { completeBillingHookRun } from './checkout-completed';
import { grantTopUp } from './credit-top-up';
import { syncSubscription, type LockedTenant, type SyncContext } from './subscription-sync';

export interface StripeEventProcessorOptions {
  /** The control plane. */
  readonly pool: Pool;
  /** The SDK for the account the events come from: subscriptions are re-fetched from it. */
  readonly stripe: Stripe;
  /** platform.yaml billing.pastDueGraceDays. */
  readonly pastDueGraceDays: number;
  /** Plan → price mapping, to name a subscription's plan. @default DEFAULT_PLAN_PRICES */
  readonly prices?: PlanPrices;
  /** @default the system clock */
  readonly now?: () => Date;
  /** The audit log's actor. @default 'stripe-webhook' */
  readonly actor?: string;
}

/** What handling an event did. */
export type EventOutcome =
  | { readonly duplicate: true; readonly event: string }
  | { readonly duplicate: false; readonly event: string; readonly tenantId: string | null; readonly outcome: Record<string, unknown> };

/** The event types that change the control plane; others are recorded and otherwise ignored. */
export const HANDLED_EVENT_TYPES = [
  'checkout.session.completed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'invoice.paid',
  'invoice.payment_failed',
] as const;

const idOf = (v: string | { id: string } | null | undefined): string | null => (v === null || v === undefined ? null : typeof v === 'string' ? v : v.id);

/** The customer and subscription an event is about (null: not a handled type). */
function referencesOf(event: Stripe.Event): { customer: string | null; subscription: string | null } | null {
  const object = event.data.object as unknown as Record<string, any>;
  switch (event.type) {
    case 'checkout.session.completed':
      return { customer: idOf(object.customer), subscription: object.mode === 'subscription' ? idOf(object.subscription) : null };
    case 'invoice.paid':
    case 'invoice.payment_failed':
      return { customer: idOf(object.customer), subscription: idOf(object.parent?.subscription_details?.subscription) };
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted':
      return { customer: idOf(object.customer), subscription: object.id };
    default:
      return null;
  }
}

/**
 * Applies one verified Stripe event to the control plane, exactly once: its id is inserted into
 * tenancy.stripe_events first, in the transaction that applies it, so a replay or a concurrent
 * duplicate finds it and does nothing (the duplicate's insert waits for the first transaction and
 * then conflicts); a failure rolls the id back with everything else, and Stripe's retry applies it.
 *
 * Out-of-order delivery: state is never taken from the event's payload, which may be older than
 * what was applied already. The tenant (by its recorded Stripe customer — never by metadata, which
 * anyone editing the Stripe object could set) is locked, then its subscription is fetched from
 * Stripe and its current state applied (subscription-sync.ts). Any order of the same events ends
 * in Stripe's final state. Comparing `created` instead would need a per-object high-water mark
 * and still tie within a second (Stripe's resolution), and a payload never says what happened
 * after it.
 */
export async function processStripeEvent(options: StripeEventProcessorOptions, event: Stripe.Event): Promise<EventOutcome> {
  const prices = checkPlanPrices(options.prices ?? DEFAULT_PLAN_PRICES);
  const actor = options.actor ?? 'stripe-webhook';
  const now = options.now?.() ?? new Date();
  return inTransaction(options.pool, async (c) => {
    const inserted = await c.query(
      'INSERT INTO tenancy.stripe_events (id, type, created, livemode, received_at) VALUES ($1, $2, to_timestamp($3), $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id',
      [event.id, event.type, event.created, event.livemode === true, now],
    );
    if (!inserted.rowCount) return { duplicate: true, event: event.id };
    const finish = async (tenantId: string | null, outcome: Record<string, unknown>): Promise<EventOutcome> => {
      await c.query('UPDATE tenancy.stripe_events SET tenant_id = $2, outcome = $3 WHERE id = $1', [event.id, tenantId, JSON.stringify(outcome)]);
      return { duplicate: false, event: event.id, tenantId, outcome };
    };

    const refs = referencesOf(event);
    if (!refs) return finish(null, { ignored: `event type ${event.type} changes nothing here` });
    if (!refs.customer) return finish(null, { ignored: 'the event names no customer' });
    const found = await c.query<LockedTenant>(
      `SELECT id::text, slug, status, plan, stripe_subscription_id FROM tenancy.tenants WHERE stripe_customer_id = $1 FOR UPDATE`,
      [refs.customer],
    );
    const tenant = found.rows[0];
    if (!tenant) return finish(null, { ignored: `no tenant has Stripe customer ${refs.customer}` });

    const ctx: SyncContext = { c, stripe: options.stripe, prices, graceDays: options.pastDueGraceDays, now, actor, event };
    const outcome: Record<string, unknown> = { tenant: tenant.slug };
    if (refs.subscription) outcome.sync = await syncSubscription(ctx, tenant, refs.subscription);

    const object = event.data.object as unknown as Record<string, any>;
    if (event.type === 'checkout.session.completed') {
      const session = object as Stripe.Checkout.Session;
      const sync = outcome.sync as { ignored?: string; subscription: string; subscription_status: string; price: string | null; trial_end: number | null } | undefined;
      if (session.mode === 'subscription' && sync && sync.ignored === undefined) {
        const sub = { id: sync.subscription, status: sync.subscription_status, price: sync.price, trialEnd: sync.trial_end };
        outcome.billing_hook = await completeBillingHookRun(c, actor, tenant.id, session, sub, event, now);
      } else if (session.mode === 'payment' && session.payment_status === 'paid') {
        const topUp = await grantTopUp(c, actor, tenant.id, { id: session.id, metadata: session.metadata });
        if (topUp) outcome.top_up = topUp;
      }
    } else if (event.type === 'invoice.paid') {
      const topUp = await grantTopUp(c, actor, tenant.id, { id: object.id, metadata: object.metadata });
      if (topUp) outcome.top_up = topUp;
    }
    return finish(tenant.id, outcome);
  });
}
