import type { PoolClient } from 'pg';
import type Stripe from 'stripe';
import { appendAudit } from '../../control-plane/transaction';
import { BILLING_HOOK_NAME } from '../billing-hook';

/**
 * After a subscription-mode Checkout completed: the post-apply `billing` hook of the tenant last
 * failed asking for exactly this payment (BillingActionRequiredError), so its run is recorded as
 * succeeded now, under that failed run's input hash — the next post-apply finds billing
 * `unchanged` instead of needing a second run to notice the payment, and `tenancy status` shows
 * the subscription from it. Nothing is recorded when the hook's last run did not fail (it
 * succeeded already, or never ran: post-apply will run it).
 */
export async function completeBillingHookRun(
  c: PoolClient,
  actor: string,
  tenantId: string,
  session: Stripe.Checkout.Session,
  sub: { id: string; status: string; price: string | null; trialEnd: number | null },
  event: Stripe.Event,
  now: Date,
): Promise<'recorded' | 'not-needed'> {
  const last = await c.query<{ input_hash: string; status: string }>(
    'SELECT input_hash, status FROM tenancy.hook_runs WHERE tenant_id = $1 AND hook = $2 ORDER BY id DESC LIMIT 1',
    [tenantId, BILLING_HOOK_NAME],
  );
  if (last.rows[0]?.status !== 'failed') return 'not-needed';
  const inputHash = last.rows[0].input_hash;
  const result = {
    mode: event.livemode ? 'live' : 'test',
    customer: typeof session.customer === 'string' ? session.customer : (session.customer?.id ?? null),
    customer_action: 'existing',
    subscription: sub.id,
    subscription_action: 'checkout-completed',
    status: sub.status,
    price: sub.price,
    trial_end: sub.trialEnd,
    source: 'stripe-webhook',
    checkout_session: session.id,
    event: event.id,
  };
  await c.query(
    `INSERT INTO tenancy.hook_runs (tenant_id, hook, input_hash, status, result, error, started_at) VALUES ($1, $2, $3, 'succeeded', $4, NULL, $5)`,
    [tenantId, BILLING_HOOK_NAME, inputHash, JSON.stringify(result), now],
  );
  await appendAudit(c, actor, 'hook.succeeded', tenantId, { hook: BILLING_HOOK_NAME, inputHash, source: 'stripe-webhook', event: event.id, checkout_session: session.id });
  return 'recorded';
}
