import { LowCreditMailer, type LowCreditDelivery } from '../billing/credits';
import { suspendOverdueTenants } from '../billing/webhooks';
import type { LifecycleServices } from './services';

export interface BillingUpkeepResult {
  /** Ids of the tenants suspended because their grace period after a failed payment ended. */
  readonly suspended: readonly string[];
  /** Low-credit mails sent (or failed again) that earlier attempts could not send. */
  readonly lowCreditMails: LowCreditDelivery;
  /** What failed, per part (the other parts ran all the same). */
  readonly errors: readonly string[];
}

/**
 * The billing upkeep the worker runs with the hourly usage report:
 *
 * - tenants `past_due` whose grace period (`billing.pastDueGraceDays`) ended are suspended. The
 *   webhook server (`tenancy webhooks serve`) sweeps too, but a platform must not depend on an
 *   event arriving after the grace period for a suspension to happen;
 * - low-credit mails that could not be sent when the balance crossed the threshold are sent again
 *   (the notice itself was recorded exactly once with the debit; lib/billing/credits).
 *
 * Each part runs even when the other fails; failures are returned, never thrown.
 */
export async function runBillingUpkeep(services: LifecycleServices, now: Date = new Date()): Promise<BillingUpkeepResult> {
  const errors: string[] = [];
  const suspended = await suspendOverdueTenants(services.pool, { now, actor: 'tenancy-worker' }).catch((e: unknown) => {
    errors.push(`suspending overdue tenants: ${messageOf(e)}`);
    return [] as string[];
  });
  let lowCreditMails: LowCreditDelivery = { sent: 0, failed: 0, errors: [] };
  try {
    const registry = await services.registry.load();
    const mailer = new LowCreditMailer(services.pool, {
      notifier: services.notifier,
      messageDomain: registry.platform.baseDomain,
      // The billing contact is the registry entry's adminEmail, found by the tenant's id.
      recipient: async (tenantId) => {
        const { rows } = await services.pool.query<{ slug: string }>('SELECT slug FROM tenancy.tenants WHERE id = $1', [tenantId]);
        return rows[0] ? (await services.registry.get(rows[0].slug))?.adminEmail : undefined;
      },
    });
    lowCreditMails = await mailer.deliverPending();
  } catch (e) {
    errors.push(`sending pending low-credit mails: ${messageOf(e)}`);
  }
  return { suspended, lowCreditMails, errors };
}

const messageOf = (e: unknown) => (e as { message?: string })?.message ?? String(e);
