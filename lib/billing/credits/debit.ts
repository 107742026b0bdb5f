import type { Pool, PoolClient } from 'pg';
import { inTransaction } from '../../control-plane/transaction';
import { checkCreditAmount, checkCreditTenant, checkLedgerText, creditsFromColumn } from './credit-amount';
import { InsufficientCreditsError } from './insufficient-credits-error';
import { LOW_CREDIT_EVENT, lowCreditEventKey } from './low-credit-notice';

/**
 * How a debit is made atomic. Both are safe under any concurrency (no lost or double debit, never
 * below zero: test/billing/credits-debit.test.ts runs both through the same tests).
 * - `conditional-update` (default): one statement. `UPDATE … SET balance = balance - cost WHERE
 *   balance >= cost RETURNING` with the ledger entry, the low-credit notice and its outbox event
 *   inserted by the same statement (data-modifying CTEs): one round trip, the row lock held only
 *   for the statement. A concurrent debit re-checks the condition on the row it waited for.
 * - `select-for-update`: the reference's transaction. BEGIN, `SELECT balance … FOR UPDATE`, the
 *   check in the application, UPDATE, INSERT the entry (and the notice), COMMIT: five round
 *   trips, and the row lock held across all of them.
 * `bench/billing-debits.ts` measures both on one hot tenant (docs/BENCHMARKS.md).
 */
export type DebitStrategy = 'conditional-update' | 'select-for-update';
export const DEBIT_STRATEGIES: readonly DebitStrategy[] = ['conditional-update', 'select-for-update'];
export const DEFAULT_DEBIT_STRATEGY: DebitStrategy = 'conditional-update';

export interface DebitCreditsOptions {
  /** @default DEFAULT_DEBIT_STRATEGY ("conditional-update") */
  readonly strategy?: DebitStrategy;
  /** Why, in the ledger (e.g. "api call", "GET /reports"). @default "usage" */
  readonly reason?: string;
  /** Who, in the ledger. @default "credits" */
  readonly actor?: string;
}

/** The low-credit notice a debit raised: the first debit that took the balance to 20% of the last grant or below. */
export interface LowCreditCrossing {
  readonly grantEntryId: string;
  readonly grantAmount: number;
}

export interface CreditDebit {
  readonly tenantId: string;
  readonly cost: number;
  readonly entryId: string;
  /** The balance this debit left. */
  readonly balance: number;
  /** Set on the one debit per grant that raised the low-credit notice (outbox event tenant.credits.low, mail pending). */
  readonly lowCredit?: LowCreditCrossing;
}

/**
 * Takes `cost` credits from a tenant's balance, with a ledger entry, atomically. Refused with an
 * {@link InsufficientCreditsError} (nothing written) when the balance is below `cost`, including a
 * tenant that never had credits. The debit that takes the balance to 20% of the last grant or
 * below writes the grant's low-credit notice and the outbox event `tenant.credits.low` in its own
 * transaction: once per grant (the notice's key is the grant). Mail: {@link LowCreditMailer}.
 */
export async function debitCredits(pool: Pool, tenantId: string, cost: number, options: DebitCreditsOptions = {}): Promise<CreditDebit> {
  checkCreditTenant(tenantId);
  checkCreditAmount(cost, 'cost');
  const reason = checkLedgerText(options.reason ?? 'usage', 'reason');
  const actor = checkLedgerText(options.actor ?? 'credits', 'actor');
  const strategy = options.strategy ?? DEFAULT_DEBIT_STRATEGY;
  switch (strategy) {
    case 'conditional-update':
      return debitWithConditionalUpdate(pool, tenantId, cost, reason, actor);
    case 'select-for-update':
      return debitWithSelectForUpdate(pool, tenantId, cost, reason, actor);
    default:
      throw new Error(`unknown debit strategy ${JSON.stringify(strategy)} (expected one of ${DEBIT_STRATEGIES.join(', ')})`);
  }
}

// $1 tenant, $2 cost, $3 reason, $4 actor, $5 event type. "crossed": this debit took the balance
// from above 20% of the last grant to 20% or below (RETURNING sees the new balance; the old one is
// new + cost, of the same row version). A grant always leaves the balance above 20% of itself, so
// this happens at most once per grant; the notice's primary key (the grant) makes sure of it.
const CONDITIONAL_DEBIT_SQL = `
WITH debited AS (
  UPDATE tenancy.credit_accounts SET balance = balance - $2, updated_at = now()
   WHERE tenant_id = $1 AND balance >= $2
  RETURNING tenant_id, balance, last_grant_entry_id, last_grant_amount,
            (last_grant_entry_id IS NOT NULL AND balance * 5 <= last_grant_amount AND (balance + $2) * 5 > last_grant_amount) AS crossed
), entry AS (
  INSERT INTO tenancy.credit_entries (tenant_id, kind, amount, balance_after, reason, actor)
  SELECT tenant_id, 'debit', $2, balance, $3, $4 FROM debited
  RETURNING id
), notice AS (
  INSERT INTO tenancy.credit_low_notices (grant_entry_id, tenant_id, debit_entry_id, balance, grant_amount)
  SELECT d.last_grant_entry_id, d.tenant_id, e.id, d.balance, d.last_grant_amount FROM debited d CROSS JOIN entry e WHERE d.crossed
  ON CONFLICT (grant_entry_id) DO NOTHING
  RETURNING grant_entry_id, tenant_id, debit_entry_id, balance, grant_amount
), event AS (
  INSERT INTO tenancy.outbox (event_type, tenant_id, idempotency_key, payload)
  SELECT $5, n.tenant_id, $5 || ':' || n.tenant_id || ':' || n.grant_entry_id,
         jsonb_build_object('tenantId', n.tenant_id, 'balance', n.balance, 'grantAmount', n.grant_amount,
                            'grantEntryId', n.grant_entry_id::text, 'debitEntryId', n.debit_entry_id::text, 'thresholdPercent', 20)
    FROM notice n
  ON CONFLICT (idempotency_key) DO NOTHING
)
SELECT d.balance, e.id::text AS entry_id, n.grant_entry_id::text AS low_grant_entry_id, n.grant_amount AS low_grant_amount
  FROM debited d CROSS JOIN entry e LEFT JOIN notice n ON true`;

async function debitWithConditionalUpdate(pool: Pool, tenantId: string, cost: number, reason: string, actor: string): Promise<CreditDebit> {
  const r = await pool.query<{ balance: string; entry_id: string; low_grant_entry_id: string | null; low_grant_amount: string | null }>(
    CONDITIONAL_DEBIT_SQL,
    [tenantId, cost, reason, actor, LOW_CREDIT_EVENT],
  );
  const row = r.rows[0];
  if (!row) throw new InsufficientCreditsError(tenantId, await currentBalance(pool, tenantId), cost);
  return debitOf(tenantId, cost, row.entry_id, row.balance, row.low_grant_entry_id, row.low_grant_amount);
}

async function debitWithSelectForUpdate(pool: Pool, tenantId: string, cost: number, reason: string, actor: string): Promise<CreditDebit> {
  return inTransaction(pool, async (c) => {
    const account = (await c.query<{ balance: string; last_grant_entry_id: string | null; last_grant_amount: string }>(
      'SELECT balance, last_grant_entry_id::text, last_grant_amount FROM tenancy.credit_accounts WHERE tenant_id = $1 FOR UPDATE',
      [tenantId],
    )).rows[0];
    const before = account ? creditsFromColumn(account.balance) : 0;
    if (before < cost) throw new InsufficientCreditsError(tenantId, before, cost);
    const balance = before - cost;
    await c.query('UPDATE tenancy.credit_accounts SET balance = $2, updated_at = now() WHERE tenant_id = $1', [tenantId, balance]);
    const entryId = (await c.query<{ id: string }>(
      `INSERT INTO tenancy.credit_entries (tenant_id, kind, amount, balance_after, reason, actor) VALUES ($1, 'debit', $2, $3, $4, $5) RETURNING id::text`,
      [tenantId, cost, balance, reason, actor],
    )).rows[0].id;
    const grantAmount = creditsFromColumn(account.last_grant_amount);
    const crossed = account.last_grant_entry_id !== null && balance * 5 <= grantAmount && before * 5 > grantAmount;
    const noticed = crossed && (await recordLowCreditNotice(c, tenantId, account.last_grant_entry_id!, entryId, balance, grantAmount));
    return debitOf(tenantId, cost, entryId, balance, noticed ? account.last_grant_entry_id : null, noticed ? grantAmount : null);
  });
}

/** The notice and its outbox event (the conditional statement's last two CTEs); false when the grant had its notice. */
async function recordLowCreditNotice(c: PoolClient, tenantId: string, grantEntryId: string, debitEntryId: string, balance: number, grantAmount: number): Promise<boolean> {
  const notice = await c.query(
    `INSERT INTO tenancy.credit_low_notices (grant_entry_id, tenant_id, debit_entry_id, balance, grant_amount) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (grant_entry_id) DO NOTHING RETURNING grant_entry_id`,
    [grantEntryId, tenantId, debitEntryId, balance, grantAmount],
  );
  if (notice.rowCount === 0) return false;
  await c.query(
    `INSERT INTO tenancy.outbox (event_type, tenant_id, idempotency_key, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING`,
    [LOW_CREDIT_EVENT, tenantId, lowCreditEventKey(tenantId, grantEntryId),
      JSON.stringify({ tenantId, balance, grantAmount, grantEntryId, debitEntryId, thresholdPercent: 20 })],
  );
  return true;
}

async function currentBalance(pool: Pool, tenantId: string): Promise<number> {
  const r = await pool.query<{ balance: string }>('SELECT balance FROM tenancy.credit_accounts WHERE tenant_id = $1', [tenantId]);
  return r.rows[0] ? creditsFromColumn(r.rows[0].balance) : 0;
}

function debitOf(tenantId: string, cost: number, entryId: string, balance: string | number, lowGrant: string | null, lowAmount: string | number | null): CreditDebit {
  return {
    tenantId,
    cost,
    entryId,
    balance: creditsFromColumn(balance),
    ...(lowGrant !== null && lowAmount !== null ? { lowCredit: { grantEntryId: lowGrant, grantAmount: creditsFromColumn(lowAmount) } } : {}),
  };
}
