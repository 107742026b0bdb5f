// Prepaid credits: grants from paid Stripe objects are idempotent by the object's id (also for
// concurrent duplicates, as a replayed webhook delivers them), conflicts are refused, and the
// ledger is append-only for the runtime role.
import { Client } from 'pg';
import { creditBalance, creditEntries, creditsFromMetadata, grantCredits, verifyCreditLedger } from '../../lib/billing/credits';
import { inTransaction } from '../../lib/control-plane/transaction';
import { usePostgres } from '../support/postgres';
import { creditsControlPlane, CREDITS_RUNTIME, type CreditsControlPlane } from './credits-fixture';

jest.setTimeout(120_000);

const pg = usePostgres();
const DB = 'credits_grant';
let cp: CreditsControlPlane;

beforeAll(async () => {
  cp = await creditsControlPlane(pg(), DB);
});
afterAll(async () => {
  await cp?.close();
});

test('a Stripe object is granted once: the replay returns the first grant and changes nothing', async () => {
  const tenant = await cp.tenant();
  const first = await grantCredits(cp.pool, tenant.id, 500, { stripeObjectId: 'cs_test_once', actor: 'stripe-webhook' });
  expect(first).toMatchObject({ granted: true, tenantId: tenant.id, amount: 500, balance: 500, stripeObjectId: 'cs_test_once' });
  const replay = await grantCredits(cp.pool, tenant.id, 500, { stripeObjectId: 'cs_test_once', actor: 'stripe-webhook' });
  expect(replay).toEqual({ ...first, granted: false });
  expect(await creditBalance(cp.pool, tenant.id)).toBe(500);
  expect((await creditEntries(cp.pool, tenant.id)).map((e) => [e.kind, e.amount, e.stripeObjectId, e.actor, e.reason])).toEqual([['grant', 500, 'cs_test_once', 'stripe-webhook', 'stripe top-up']]);
  const audit = await pg().query("SELECT actor, details FROM tenancy.audit_log WHERE tenant_id = $1 AND action = 'credits.granted'", [tenant.id], DB);
  expect(audit).toEqual([{ actor: 'stripe-webhook', details: { entry: first.entryId, amount: 500, balance: 500, stripeObjectId: 'cs_test_once', reason: 'stripe top-up' } }]);
});

test('20 concurrent deliveries of the same two Stripe objects grant each once', async () => {
  const tenant = await cp.tenant();
  const clients = Array.from({ length: 20 }, () => cp.runtime(1));
  try {
    const grants = await Promise.all(clients.map((p, i) => grantCredits(p, tenant.id, i % 2 ? 300 : 200, { stripeObjectId: i % 2 ? 'in_test_dup_b' : 'cs_test_dup_a' })));
    expect(grants.filter((g) => g.granted).map((g) => g.stripeObjectId).sort()).toEqual(['cs_test_dup_a', 'in_test_dup_b']);
  } finally {
    await Promise.all(clients.map((p) => p.end()));
  }
  expect(await creditBalance(cp.pool, tenant.id)).toBe(500);
  expect(await verifyCreditLedger(cp.pool, tenant.id)).toEqual({ ok: true, balance: 500, ledgerSum: 500, problems: [] });
});

test('concurrent first grants of a tenant (different objects) add up', async () => {
  const tenant = await cp.tenant();
  const clients = Array.from({ length: 10 }, () => cp.runtime(1));
  try {
    await Promise.all(clients.map((p, i) => grantCredits(p, tenant.id, 10 + i, { stripeObjectId: `in_test_first_${i}` })));
  } finally {
    await Promise.all(clients.map((p) => p.end()));
  }
  expect(await verifyCreditLedger(cp.pool, tenant.id)).toEqual({ ok: true, balance: 145, ledgerSum: 145, problems: [] });
});

test('the same Stripe object for another tenant or amount is refused, never ignored', async () => {
  const [a, b] = [await cp.tenant(), await cp.tenant()];
  await grantCredits(cp.pool, a.id, 100, { stripeObjectId: 'cs_test_conflict' });
  await expect(grantCredits(cp.pool, b.id, 100, { stripeObjectId: 'cs_test_conflict' })).rejects.toMatchObject({
    name: 'CreditsError', code: 'grant-conflict', message: expect.stringContaining(`Stripe object cs_test_conflict was already granted (100 credits to tenant ${a.id})`),
  });
  await expect(grantCredits(cp.pool, a.id, 101, { stripeObjectId: 'cs_test_conflict' })).rejects.toMatchObject({ code: 'grant-conflict' });
  expect(await creditBalance(cp.pool, b.id)).toBe(0);
  expect(await creditBalance(cp.pool, a.id)).toBe(100);
});

test('bad input is refused before any write: unknown tenant, amount, Stripe id, metadata', async () => {
  const tenant = await cp.tenant();
  await expect(grantCredits(cp.pool, '00000000-0000-4000-8000-000000000000', 10)).rejects.toMatchObject({ code: 'unknown-tenant' });
  await expect(grantCredits(cp.pool, 'Acme', 10)).rejects.toMatchObject({ code: 'invalid-input' });
  for (const amount of [0, -1, 0.5, 2 ** 53]) await expect(grantCredits(cp.pool, tenant.id, amount)).rejects.toMatchObject({ code: 'invalid-amount' });
  await expect(grantCredits(cp.pool, tenant.id, 10, { stripeObjectId: "cs_1'; DROP TABLE x" })).rejects.toMatchObject({ code: 'invalid-input' });
  expect(await creditEntries(cp.pool, tenant.id)).toEqual([]);
  expect(creditsFromMetadata({ credits: '2500' })).toBe(2500);
  expect(creditsFromMetadata({ plan: 'pro' })).toBeUndefined();
  expect(creditsFromMetadata(null)).toBeUndefined();
  for (const credits of ['0', '-5', '1.5', '1e3', ' 10', '99999999999999999']) expect(() => creditsFromMetadata({ credits })).toThrow(/metadata.credits .* is not a positive whole number/);
});

test("inside the caller's transaction, the grant commits or rolls back with it", async () => {
  const tenant = await cp.tenant();
  await expect(inTransaction(cp.pool, async (c) => {
    await grantCredits(c, tenant.id, 70, { stripeObjectId: 'in_test_rolled_back' });
    throw new Error('the webhook handler failed after the grant');
  })).rejects.toThrow('the webhook handler failed');
  expect(await creditEntries(cp.pool, tenant.id)).toEqual([]);
  const g = await inTransaction(cp.pool, (c) => grantCredits(c, tenant.id, 70, { stripeObjectId: 'in_test_rolled_back' }));
  expect(g).toMatchObject({ granted: true, balance: 70 });
});

describe('the runtime role (member of tenancy_control_plane)', () => {
  const ATTACKS: readonly [string, string][] = [
    ['UPDATE a ledger entry', 'UPDATE tenancy.credit_entries SET amount = amount + 1000'],
    ['DELETE ledger entries', 'DELETE FROM tenancy.credit_entries'],
    ['TRUNCATE the ledger', 'TRUNCATE tenancy.credit_entries'],
    ['DELETE an account', 'DELETE FROM tenancy.credit_accounts'],
    ['DELETE a low-credit notice (to be notified again)', 'DELETE FROM tenancy.credit_low_notices'],
    ['re-point a low-credit notice', 'UPDATE tenancy.credit_low_notices SET grant_entry_id = grant_entry_id'],
  ];
  test.each(ATTACKS)('cannot %s', async (_what, sql) => {
    const c = new Client(pg().clientConfig({ ...CREDITS_RUNTIME, database: DB }));
    await c.connect();
    try {
      await expect(c.query(sql)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
  });

  test('the migration owner cannot rewrite ledger entries either (the append-only trigger)', async () => {
    const tenant = await cp.tenant();
    await grantCredits(cp.pool, tenant.id, 5);
    const c = new Client(pg().clientConfig({ user: 'credits_master', password: 'credits-master-pw (test only)', database: DB }));
    await c.connect();
    try {
      await expect(c.query('UPDATE tenancy.credit_entries SET amount = 1 WHERE tenant_id = $1', [tenant.id])).rejects.toMatchObject({ code: '42501', message: 'tenancy.credit_entries is append-only (UPDATE refused)' });
      await expect(c.query('DELETE FROM tenancy.credit_entries WHERE tenant_id = $1', [tenant.id])).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
  });
});
