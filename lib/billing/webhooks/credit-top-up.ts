import type { PoolClient } from 'pg';
import { creditsFromMetadata, grantCredits } from '../credits';

/**
 * A paid top-up: a payment-mode Checkout Session or an invoice whose metadata carries `credits`
 * grants them to the tenant, idempotently by the Stripe object's id (lib/billing/credits), in the
 * transaction that records the event. Put `credits` on one of the two objects of a purchase
 * only: a Checkout that also creates an invoice would otherwise grant twice (two object ids).
 */
export async function grantTopUp(
  c: PoolClient,
  actor: string,
  tenantId: string,
  object: { id: string; metadata?: Record<string, string> | null },
): Promise<Record<string, unknown> | undefined> {
  const amount = creditsFromMetadata(object.metadata);
  if (amount === undefined) return undefined;
  const grant = await grantCredits(c, tenantId, amount, { stripeObjectId: object.id, reason: 'stripe top-up', actor });
  return { credits: amount, granted: grant.granted, balance: grant.balance, stripe_object: object.id };
}
