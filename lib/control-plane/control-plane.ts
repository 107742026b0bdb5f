import type { Pool, PoolClient } from 'pg';
import { secretLikePlacementKeys } from './placement';
import { appendAudit, inTransaction } from './transaction';

/** A tenant as the control plane records it. */
export interface TenantRecord {
  readonly id: string;
  readonly slug: string;
  readonly model: 'silo' | 'bridge' | 'pool';
  readonly plan: string;
  readonly status: string;
  readonly region: string;
  /** host, port, database, schema, role and secret_ref: where the data is, never a password. */
  readonly placement: Record<string, unknown>;
}

/** The Stripe objects of a tenant (columns stripe_customer_id, stripe_subscription_id). */
export interface StripeIds {
  readonly customerId: string | null;
  readonly subscriptionId: string | null;
}

/** A recorded hook run. */
export interface HookRun {
  readonly hook: string;
  readonly inputHash: string;
  readonly status: 'succeeded' | 'failed';
  readonly result: Record<string, unknown>;
  readonly error: string | null;
  readonly finishedAt: Date;
}

/**
 * The control-plane database (schema `tenancy`, migrations/control-plane): tenants, hook runs and
 * the append-only audit log. Every write that changes a tenant is audited in the same transaction.
 */
export class ControlPlane {
  constructor(readonly pool: Pool, readonly actor: string) {}

  /** Creates or updates a tenant; audited as tenant.registered or tenant.updated (nothing when unchanged). */
  async upsertTenant(t: TenantRecord): Promise<'created' | 'updated' | 'unchanged'> {
    const secrets = secretLikePlacementKeys(t.placement);
    if (secrets.length) throw new Error(`tenant ${t.slug}: placement must not hold a secret (${secrets.join(', ')}); store a reference such as secret_ref`);
    return this.transaction(async (c) => {
      const before = await c.query('SELECT slug, model, plan, status, region, placement FROM tenancy.tenants WHERE id = $1 FOR UPDATE', [t.id]);
      const row = { slug: t.slug, model: t.model, plan: t.plan, status: t.status, region: t.region, placement: t.placement };
      if (before.rowCount === 0) {
        await c.query(
          'INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [t.id, t.slug, t.model, t.plan, t.status, t.region, JSON.stringify(t.placement)],
        );
        await this.auditIn(c, 'tenant.registered', t.id, row);
        return 'created';
      }
      if (JSON.stringify(canonical(before.rows[0])) === JSON.stringify(canonical(row))) return 'unchanged';
      await c.query(
        'UPDATE tenancy.tenants SET slug = $2, model = $3, plan = $4, status = $5, region = $6, placement = $7, updated_at = now() WHERE id = $1',
        [t.id, t.slug, t.model, t.plan, t.status, t.region, JSON.stringify(t.placement)],
      );
      await this.auditIn(c, 'tenant.updated', t.id, { before: before.rows[0], after: row });
      return 'updated';
    });
  }

  async tenantById(id: string): Promise<TenantRecord | undefined> {
    const r = await this.pool.query('SELECT id, slug, model, plan, status, region, placement FROM tenancy.tenants WHERE id = $1', [id]);
    return r.rows[0];
  }

  /**
   * The tenant a slug names: the live one (a slug is unique among tenants not offboarded,
   * migration 0006), else the newest offboarded one (its record and audit trail are kept; a new
   * tenant may have taken the slug since). Use {@link tenantById} for any other offboarded one.
   */
  async tenantBySlug(slug: string): Promise<TenantRecord | undefined> {
    const r = await this.pool.query(
      `SELECT id, slug, model, plan, status, region, placement FROM tenancy.tenants WHERE slug = $1 ORDER BY status = 'offboarded', created_at DESC LIMIT 1`,
      [slug],
    );
    return r.rows[0];
  }

  /** Sets a tenant's status; audited. */
  async setStatus(id: string, status: string): Promise<void> {
    await this.transaction(async (c) => {
      const r = await c.query('UPDATE tenancy.tenants SET status = $2, updated_at = now() WHERE id = $1 AND status IS DISTINCT FROM $2 RETURNING id', [id, status]);
      if (r.rowCount) await this.auditIn(c, 'tenant.status', id, { status });
    });
  }

  /**
   * Records a confirmed plan change (`tenancy plan`): the tenant's plan and one audit entry
   * `tenant.plan_changed` (from, to and `details`: the Stripe amounts, its `prorationDate`) in one
   * transaction, only while the recorded plan is still `expected` (another plan is refused: a
   * concurrent change). When the plan is `to` already, the change is audited only if no entry of
   * it (same `to` and proration date) exists: a retry audits nothing twice, while a plan that
   * something else synced first (a Stripe webhook) still gets the entry of the confirmed change.
   */
  async recordPlanChange(id: string, change: { expected: string; from: string; to: string }, details: Record<string, unknown> & { prorationDate: number | null }): Promise<'recorded' | 'unchanged'> {
    const { expected, from, to } = change;
    return this.transaction(async (c) => {
      const before = await c.query('SELECT plan FROM tenancy.tenants WHERE id = $1 FOR UPDATE', [id]);
      if (before.rowCount === 0) throw new Error(`tenant ${id}: not registered in the control plane`);
      const current: string = before.rows[0].plan;
      if (current === to) {
        if (await this.planChangeAudited(id, to, details.prorationDate, c)) return 'unchanged';
      } else {
        if (current !== expected) throw new Error(`tenant ${id}: plan ${current} is recorded, expected ${expected}; not recording ${to}`);
        await c.query('UPDATE tenancy.tenants SET plan = $2, updated_at = now() WHERE id = $1', [id, to]);
      }
      await this.auditIn(c, 'tenant.plan_changed', id, { ...details, from, to });
      return 'recorded';
    });
  }

  /** Whether the change of tenant `id` to `to` at `prorationDate` has its `tenant.plan_changed` audit entry. */
  async planChangeAudited(id: string, to: string, prorationDate: number | null, c: Pick<PoolClient, 'query'> = this.pool): Promise<boolean> {
    const r = await c.query(
      `SELECT 1 FROM tenancy.audit_log WHERE tenant_id = $1 AND action = 'tenant.plan_changed' AND details->>'to' = $2 AND details->'prorationDate' = $3::jsonb LIMIT 1`,
      [id, to, JSON.stringify(prorationDate)],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** The latest run of a hook for a tenant. */
  async lastHookRun(tenantId: string, hook: string): Promise<HookRun | undefined> {
    const r = await this.pool.query(
      `SELECT hook, input_hash AS "inputHash", status, result, error, finished_at AS "finishedAt"
         FROM tenancy.hook_runs WHERE tenant_id = $1 AND hook = $2 ORDER BY id DESC LIMIT 1`,
      [tenantId, hook],
    );
    return r.rows[0];
  }

  /** Records a hook run and audits it. */
  async recordHookRun(tenantId: string, run: Omit<HookRun, 'finishedAt'> & { startedAt: Date }): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(
        'INSERT INTO tenancy.hook_runs (tenant_id, hook, input_hash, status, result, error, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [tenantId, run.hook, run.inputHash, run.status, JSON.stringify(run.result), run.error, run.startedAt],
      );
      await this.auditIn(c, `hook.${run.status}`, tenantId, { hook: run.hook, inputHash: run.inputHash, ...(run.error ? { error: run.error } : {}) });
    });
  }

  /** The Stripe ids recorded for a tenant (lib/billing); undefined when the tenant is not registered. */
  async stripeIds(id: string): Promise<StripeIds | undefined> {
    const r = await this.pool.query('SELECT stripe_customer_id AS "customerId", stripe_subscription_id AS "subscriptionId" FROM tenancy.tenants WHERE id = $1', [id]);
    return r.rows[0];
  }

  /**
   * Records the tenant's Stripe customer; audited as tenant.stripe_customer. The same id again
   * changes nothing; another id is refused (a tenant has one customer, never silently replaced).
   */
  async setStripeCustomerId(id: string, customerId: string): Promise<'recorded' | 'unchanged'> {
    return this.transaction(async (c) => {
      const before = await c.query('SELECT stripe_customer_id FROM tenancy.tenants WHERE id = $1 FOR UPDATE', [id]);
      if (before.rowCount === 0) throw new Error(`tenant ${id}: not registered in the control plane`);
      const current: string | null = before.rows[0].stripe_customer_id;
      if (current === customerId) return 'unchanged';
      if (current !== null) throw new Error(`tenant ${id}: Stripe customer ${current} is recorded; refusing to replace it with ${customerId}`);
      await c.query('UPDATE tenancy.tenants SET stripe_customer_id = $2, updated_at = now() WHERE id = $1', [id, customerId]);
      await this.auditIn(c, 'tenant.stripe_customer', id, { customer: customerId });
      return 'recorded';
    });
  }

  /**
   * Records the tenant's Stripe subscription (null clears it) when the recorded one is still
   * `expected` (compare-and-set: a concurrent run that recorded another id wins, this one throws);
   * audited as tenant.stripe_subscription.
   */
  async setStripeSubscriptionId(id: string, subscriptionId: string | null, expected: string | null): Promise<'recorded' | 'unchanged'> {
    return this.transaction(async (c) => {
      const before = await c.query('SELECT stripe_subscription_id FROM tenancy.tenants WHERE id = $1 FOR UPDATE', [id]);
      if (before.rowCount === 0) throw new Error(`tenant ${id}: not registered in the control plane`);
      const current: string | null = before.rows[0].stripe_subscription_id;
      if (current === subscriptionId) return 'unchanged';
      if (current !== expected) throw new Error(`tenant ${id}: Stripe subscription ${current ?? 'none'} is recorded, expected ${expected ?? 'none'}; not recording ${subscriptionId ?? 'none'}`);
      await c.query('UPDATE tenancy.tenants SET stripe_subscription_id = $2, updated_at = now() WHERE id = $1', [id, subscriptionId]);
      await this.auditIn(c, 'tenant.stripe_subscription', id, { subscription: subscriptionId, previous: current });
      return 'recorded';
    });
  }

  /** Appends to the audit log. */
  async audit(action: string, tenantId: string | null, details: Record<string, unknown> = {}): Promise<void> {
    await appendAudit(this.pool, this.actor, action, tenantId, details);
  }

  private auditIn(c: PoolClient, action: string, tenantId: string | null, details: Record<string, unknown>): Promise<void> {
    return appendAudit(c, this.actor, action, tenantId, details);
  }

  private transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }
}

/** JSON with sorted keys, for comparing rows whatever the key order jsonb returns. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object' && !(v instanceof Date)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}
