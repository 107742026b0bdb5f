/**
 * The low-credit notification: when a debit takes a tenant's balance to 20% of its last grant or
 * below, once per grant. The debit's transaction records the notice (tenancy.credit_low_notices,
 * keyed by the grant) and this outbox event; the mail follows after commit ({@link LowCreditMailer}).
 */
export const LOW_CREDIT_EVENT = 'tenant.credits.low';

/** The outbox idempotency key: one event per tenant and grant. */
export const lowCreditEventKey = (tenantId: string, grantEntryId: string): string => `${LOW_CREDIT_EVENT}:${tenantId}:${grantEntryId}`;

/** The threshold, in percent of the last grant: at or below it the balance is low. */
export const LOW_CREDIT_THRESHOLD_PERCENT = 20;
