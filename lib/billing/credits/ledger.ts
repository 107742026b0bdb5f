import type { Pool } from 'pg';
import { checkCreditTenant, creditsFromColumn } from './credit-amount';

export interface CreditEntry {
  readonly id: string;
  readonly kind: 'grant' | 'debit';
  readonly amount: number;
  readonly balanceAfter: number;
  readonly reason: string;
  readonly actor: string;
  readonly stripeObjectId: string | null;
  readonly createdAt: Date;
}

export interface CreditAccount {
  readonly tenantId: string;
  readonly balance: number;
  /** The base of the low-credit threshold (0 before the first grant). */
  readonly lastGrantAmount: number;
  readonly lastGrantEntryId: string | null;
}

/** A tenant's balance (0 when it never had credits). */
export async function creditBalance(pool: Pool, tenantId: string): Promise<number> {
  checkCreditTenant(tenantId);
  const r = await pool.query<{ balance: string }>('SELECT balance FROM tenancy.credit_accounts WHERE tenant_id = $1', [tenantId]);
  return r.rows[0] ? creditsFromColumn(r.rows[0].balance) : 0;
}

export async function creditAccount(pool: Pool, tenantId: string): Promise<CreditAccount | undefined> {
  checkCreditTenant(tenantId);
  const r = await pool.query<{ balance: string; last_grant_amount: string; last_grant_entry_id: string | null }>(
    'SELECT balance, last_grant_amount, last_grant_entry_id::text FROM tenancy.credit_accounts WHERE tenant_id = $1',
    [tenantId],
  );
  const row = r.rows[0];
  return row && { tenantId, balance: creditsFromColumn(row.balance), lastGrantAmount: creditsFromColumn(row.last_grant_amount), lastGrantEntryId: row.last_grant_entry_id };
}

/** A tenant's ledger, oldest first. */
export async function creditEntries(pool: Pool, tenantId: string): Promise<CreditEntry[]> {
  checkCreditTenant(tenantId);
  const r = await pool.query(
    `SELECT e.id::text, e.kind, e.amount, e.balance_after, e.reason, e.actor, e.stripe_object_id, e.created_at
       FROM tenancy.credit_entries e WHERE e.tenant_id = $1 ORDER BY e.id`,
    [tenantId],
  );
  return r.rows.map((row) => ({
    id: row.id, kind: row.kind, amount: creditsFromColumn(row.amount), balanceAfter: creditsFromColumn(row.balance_after),
    reason: row.reason, actor: row.actor, stripeObjectId: row.stripe_object_id, createdAt: row.created_at,
  }));
}

/**
 * Checks the balance against the ledger: grants minus debits, and each entry's balance_after
 * against the running sum (entries in id order; ids follow the account row's lock order).
 */
export async function verifyCreditLedger(pool: Pool, tenantId: string): Promise<{ ok: boolean; balance: number; ledgerSum: number; problems: string[] }> {
  const [entries, balance] = await Promise.all([creditEntries(pool, tenantId), creditBalance(pool, tenantId)]);
  const problems: string[] = [];
  let sum = 0;
  for (const e of entries) {
    sum += e.kind === 'grant' ? e.amount : -e.amount;
    if (e.balanceAfter !== sum) problems.push(`entry ${e.id}: balance_after ${e.balanceAfter}, the entries before it add up to ${sum}`);
  }
  if (sum !== balance) problems.push(`balance ${balance}, the ledger adds up to ${sum}`);
  return { ok: problems.length === 0, balance, ledgerSum: sum, problems };
}
