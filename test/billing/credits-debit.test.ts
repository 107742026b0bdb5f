// Prepaid credits: atomic debits under concurrency, refusal below zero, exactly one low-credit
// notification per grant. Both debit strategies run through the same tests, on a real
// PostgreSQL as the least-privileged runtime role.
import { Pool } from 'pg';
import {
  creditAccount, creditBalance, creditEntries, debitCredits, DEBIT_STRATEGIES, grantCredits, InsufficientCreditsError,
  LOW_CREDIT_EVENT, lowCreditEventKey, verifyCreditLedger, type DebitStrategy,
} from '../../lib/billing/credits';
import { usePostgres } from '../support/postgres';
import { creditsControlPlane, type CreditsControlPlane } from './credits-fixture';

jest.setTimeout(180_000);

const pg = usePostgres();
let cp: CreditsControlPlane;

beforeAll(async () => {
  cp = await creditsControlPlane(pg(), 'credits_debit');
});
afterAll(async () => {
  await cp?.close();
});

interface ClientOutcome {
  readonly accepted: { cost: number; entryId: string; balance: number; low: boolean }[];
  readonly refusals: InsufficientCreditsError[];
}

/**
 * One client on its own connection: debits `cost` until refused, then 1 until refused (so the
 * clients together take the balance to exactly zero).
 */
async function spendToZero(pool: Pool, tenantId: string, cost: number, strategy: DebitStrategy): Promise<ClientOutcome> {
  const accepted: ClientOutcome['accepted'] = [];
  const refusals: InsufficientCreditsError[] = [];
  for (let c = cost; c >= 1; ) {
    try {
      const d = await debitCredits(pool, tenantId, c, { strategy, reason: `client cost ${c}` });
      accepted.push({ cost: c, entryId: d.entryId, balance: d.balance, low: Boolean(d.lowCredit) });
    } catch (e) {
      if (!(e instanceof InsufficientCreditsError)) throw e;
      refusals.push(e);
      c = c === 1 ? 0 : 1;
    }
  }
  return { accepted, refusals };
}

describe.each(DEBIT_STRATEGIES.map((s) => [s]))('debit strategy %s', (strategy) => {
  test('50 concurrent clients on separate connections spend one balance to zero: no lost or double debit, one low-credit notification', async () => {
    const tenant = await cp.tenant();
    const GRANT = 1_000;
    const grant = await grantCredits(cp.pool, tenant.id, GRANT, { stripeObjectId: `cs_test_${strategy.replace(/-/g, '_')}_spend` });
    const clients = Array.from({ length: 50 }, () => cp.runtime(1));
    // Every client holds its own connection before the race starts.
    await Promise.all(clients.map((p) => p.query('SELECT 1')));
    expect(clients.reduce((n, p) => n + p.totalCount, 0)).toBe(50);

    const outcomes = await Promise.all(clients.map((p, i) => spendToZero(p, tenant.id, 1 + (i % 3), strategy))).finally(() => Promise.all(clients.map((p) => p.end())));

    const accepted = outcomes.flatMap((o) => o.accepted);
    const acceptedCredits = accepted.reduce((n, d) => n + d.cost, 0);
    // Every credit spent once: the balance is the grant minus the accepted debits, and it is zero.
    expect(acceptedCredits).toBe(GRANT);
    expect(await creditBalance(cp.pool, tenant.id)).toBe(GRANT - acceptedCredits);
    expect(await creditBalance(cp.pool, tenant.id)).toBe(0);
    // The ledger holds exactly the accepted debits, each once, and adds up to the balance.
    const entries = await creditEntries(cp.pool, tenant.id);
    const debits = entries.filter((e) => e.kind === 'debit');
    expect(debits.map((e) => e.id).sort()).toEqual(accepted.map((d) => d.entryId).sort());
    expect(debits.reduce((n, e) => n + e.amount, 0)).toBe(acceptedCredits);
    expect(entries.filter((e) => e.kind === 'grant').map((e) => e.id)).toEqual([grant.entryId]);
    expect(await verifyCreditLedger(cp.pool, tenant.id)).toEqual({ ok: true, balance: 0, ledgerSum: 0, problems: [] });
    // Each debit saw a distinct balance (serialized): no two debits were taken from the same state.
    expect(new Set(accepted.map((d) => d.balance)).size).toBe(accepted.length);
    // Every client was finally refused with the typed error, never below zero.
    for (const o of outcomes) {
      expect(o.refusals.at(-1)).toMatchObject({ tenantId: tenant.id, cost: 1, balance: 0 });
    }

    // Exactly one low-credit notification: one debit reported it, one notice, one outbox event.
    const low = accepted.filter((d) => d.low);
    expect(low).toHaveLength(1);
    expect(low[0].balance).toBeLessThanOrEqual(GRANT / 5);
    expect(low[0].balance + low[0].cost).toBeGreaterThan(GRANT / 5);
    const notices = await pg().query('SELECT grant_entry_id::text, debit_entry_id::text, balance FROM tenancy.credit_low_notices WHERE tenant_id = $1', [tenant.id], 'credits_debit');
    expect(notices).toEqual([{ grant_entry_id: grant.entryId, debit_entry_id: low[0].entryId, balance: String(low[0].balance) }]);
    const events = await pg().query('SELECT event_type, idempotency_key, payload FROM tenancy.outbox WHERE tenant_id = $1', [tenant.id], 'credits_debit');
    expect(events).toEqual([{
      event_type: LOW_CREDIT_EVENT,
      idempotency_key: lowCreditEventKey(tenant.id, grant.entryId),
      payload: { tenantId: tenant.id, balance: low[0].balance, grantAmount: GRANT, grantEntryId: grant.entryId, debitEntryId: low[0].entryId, thresholdPercent: 20 },
    }]);
  });

  test('a debit that would take the balance below zero is refused with a typed error naming tenant, balance and cost; nothing is written', async () => {
    const tenant = await cp.tenant();
    await grantCredits(cp.pool, tenant.id, 10, { reason: 'test grant' });
    await debitCredits(cp.pool, tenant.id, 7, { strategy });
    const refused = debitCredits(cp.pool, tenant.id, 4, { strategy });
    await expect(refused).rejects.toBeInstanceOf(InsufficientCreditsError);
    await expect(refused).rejects.toMatchObject({ tenantId: tenant.id, balance: 3, cost: 4, status: 402, message: `tenant ${tenant.id} has 3 credits, 4 needed: debit refused` });
    expect(await creditBalance(cp.pool, tenant.id)).toBe(3);
    expect((await creditEntries(cp.pool, tenant.id)).map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([['grant', 10, 10], ['debit', 7, 3]]);
    // Exactly the balance is allowed.
    expect(await debitCredits(cp.pool, tenant.id, 3, { strategy })).toMatchObject({ balance: 0 });
  });

  test('a tenant that never had credits is refused (balance 0); bad costs are refused before any write', async () => {
    const tenant = await cp.tenant();
    await expect(debitCredits(cp.pool, tenant.id, 1, { strategy })).rejects.toMatchObject({ name: 'InsufficientCreditsError', tenantId: tenant.id, balance: 0, cost: 1 });
    for (const cost of [0, -5, 1.5, Number.NaN, 2 ** 53]) {
      await expect(debitCredits(cp.pool, tenant.id, cost, { strategy })).rejects.toMatchObject({ name: 'CreditsError', code: 'invalid-amount' });
    }
    expect(await creditAccount(cp.pool, tenant.id)).toBeUndefined();
  });

  test('one low-credit notification per grant: a top-up re-arms it, a debit below the threshold does not notify again', async () => {
    const tenant = await cp.tenant();
    const first = await grantCredits(cp.pool, tenant.id, 100, { stripeObjectId: `in_${strategy.replace(/-/g, '_')}_first` });
    expect((await debitCredits(cp.pool, tenant.id, 79, { strategy })).lowCredit).toBeUndefined(); // 21 left: above 20%
    expect((await debitCredits(cp.pool, tenant.id, 1, { strategy })).lowCredit).toEqual({ grantEntryId: first.entryId, grantAmount: 100 }); // 20: at 20%
    expect((await debitCredits(cp.pool, tenant.id, 10, { strategy })).lowCredit).toBeUndefined(); // 10: still low, already notified
    const second = await grantCredits(cp.pool, tenant.id, 50, { stripeObjectId: `in_${strategy.replace(/-/g, '_')}_second` }); // 60 > 20% of 50
    expect((await debitCredits(cp.pool, tenant.id, 50, { strategy })).lowCredit).toEqual({ grantEntryId: second.entryId, grantAmount: 50 }); // 10 ≤ 10
    const keys = await pg().query('SELECT idempotency_key FROM tenancy.outbox WHERE tenant_id = $1 ORDER BY id', [tenant.id], 'credits_debit');
    expect(keys.map((k) => k.idempotency_key)).toEqual([lowCreditEventKey(tenant.id, first.entryId), lowCreditEventKey(tenant.id, second.entryId)]);
    expect((await verifyCreditLedger(cp.pool, tenant.id)).ok).toBe(true);
  });
});

test('an unknown strategy is refused', async () => {
  const tenant = await cp.tenant();
  await expect(debitCredits(cp.pool, tenant.id, 1, { strategy: 'optimistic' as DebitStrategy })).rejects.toThrow('unknown debit strategy "optimistic" (expected one of conditional-update, select-for-update)');
});
