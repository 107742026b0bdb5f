import type { PoolClient } from 'pg';
import { appendAudit } from '../../control-plane/transaction';
import { checkCreditAmount, checkCreditTenant, checkLedgerText, creditsFromColumn } from './credit-amount';
import { CreditsError } from './credits-error';
import { inCreditsTransaction, type CreditsDb } from './db-handle';

export interface GrantCreditsOptions {
  /**
   * The paid Stripe object the credits come from: a Checkout session (`cs_…`, mode=payment) or an
   * invoice (`in_…`). A second grant with the same id is a no-op. @default none (a manual grant)
   */
  readonly stripeObjectId?: string;
  /** Why, in the ledger. @default "stripe top-up" with a Stripe object id, else "grant" */
  readonly reason?: string;
  /** Who, in the ledger and the audit log. @default "credits" */
  readonly actor?: string;
}

export interface CreditGrant {
  /** False: this Stripe object was granted before (the values are that grant's); nothing changed. */
  readonly granted: boolean;
  readonly entryId: string;
  readonly tenantId: string;
  readonly amount: number;
  /** The balance after this call. */
  readonly balance: number;
  readonly stripeObjectId: string | null;
}

const STRIPE_ID = /^[A-Za-z0-9_]{1,255}$/;

/**
 * Adds `amount` credits to a tenant's balance: the grant entry, the balance, the last grant (the
 * base of the 20% low-credit threshold) and an audit entry, in one transaction. Idempotent by
 * `stripeObjectId`, also for concurrent duplicates (the unique index makes the second wait for
 * the first and then insert nothing). The same Stripe object for another tenant or amount is a
 * {@link CreditsError} (`grant-conflict`), never silently ignored.
 */
export async function grantCredits(db: CreditsDb, tenantId: string, amount: number, options: GrantCreditsOptions = {}): Promise<CreditGrant> {
  checkCreditTenant(tenantId);
  checkCreditAmount(amount);
  const stripeObjectId = options.stripeObjectId ?? null;
  if (stripeObjectId !== null && !STRIPE_ID.test(stripeObjectId)) throw new CreditsError('invalid-input', `Stripe object id ${JSON.stringify(stripeObjectId)} is malformed`);
  const reason = checkLedgerText(options.reason ?? (stripeObjectId ? 'stripe top-up' : 'grant'), 'reason');
  const actor = checkLedgerText(options.actor ?? 'credits', 'actor');

  return inCreditsTransaction(db, async (c) => {
    const tenant = await c.query('SELECT 1 FROM tenancy.tenants WHERE id = $1', [tenantId]);
    if (tenant.rowCount === 0) throw new CreditsError('unknown-tenant', `tenant ${tenantId} is not in the control plane: no credits granted`);
    // The account row is the tenant's lock: created once (concurrent first grants wait on its key), then held FOR UPDATE.
    await c.query('INSERT INTO tenancy.credit_accounts (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING', [tenantId]);
    const account = await c.query<{ balance: string }>('SELECT balance FROM tenancy.credit_accounts WHERE tenant_id = $1 FOR UPDATE', [tenantId]);
    const balance = creditsFromColumn(account.rows[0].balance) + amount;
    const entry = await c.query<{ id: string }>(
      `INSERT INTO tenancy.credit_entries (tenant_id, kind, amount, balance_after, reason, actor, stripe_object_id)
       VALUES ($1, 'grant', $2, $3, $4, $5, $6) ON CONFLICT (stripe_object_id) DO NOTHING RETURNING id::text`,
      [tenantId, amount, balance, reason, actor, stripeObjectId],
    );
    if (entry.rowCount === 0) return alreadyGranted(c, tenantId, amount, stripeObjectId!, creditsFromColumn(account.rows[0].balance));
    const entryId = entry.rows[0].id;
    await c.query(
      'UPDATE tenancy.credit_accounts SET balance = $2, last_grant_entry_id = $3, last_grant_amount = $4, updated_at = now() WHERE tenant_id = $1',
      [tenantId, balance, entryId, amount],
    );
    await appendAudit(c, actor, 'credits.granted', tenantId, { entry: entryId, amount, balance, stripeObjectId, reason });
    return { granted: true, entryId, tenantId, amount, balance, stripeObjectId };
  });
}

async function alreadyGranted(c: PoolClient, tenantId: string, amount: number, stripeObjectId: string, balance: number): Promise<CreditGrant> {
  const first = (await c.query<{ id: string; tenant_id: string; amount: string }>(
    'SELECT id::text, tenant_id::text, amount FROM tenancy.credit_entries WHERE stripe_object_id = $1',
    [stripeObjectId],
  )).rows[0];
  const firstAmount = creditsFromColumn(first.amount);
  if (first.tenant_id !== tenantId || firstAmount !== amount) {
    throw new CreditsError('grant-conflict', `Stripe object ${stripeObjectId} was already granted (${firstAmount} credits to tenant ${first.tenant_id}); refused granting ${amount} to tenant ${tenantId}`);
  }
  return { granted: false, entryId: first.id, tenantId, amount, balance, stripeObjectId };
}
