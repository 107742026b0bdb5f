import type { Pool } from 'pg';

/** A row of tenancy.usage_reports (migrations/control-plane/0008_usage_reports.up.sql). */
export interface UsageReport {
  readonly tenantId: string;
  readonly slug?: string;
  readonly dimension: string;
  readonly windowStart: Date;
  readonly windowEnd: Date;
  readonly eventName: string;
  /** Null: not measured yet (the measurement failed). */
  readonly value: string | null;
  readonly stripeCustomerId: string;
  readonly identifier: string;
  readonly status: 'pending' | 'reported' | 'failed' | 'unconfirmed';
  readonly error: string | null;
  readonly attempts: number;
  readonly firstSentAt: Date | null;
  readonly reportedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A window to record before it is sent. */
export interface NewUsageReport {
  readonly tenantId: string;
  readonly dimension: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly eventName: string;
  readonly value: number | null;
  readonly stripeCustomerId: string;
  readonly identifier: string;
  /** Why value is null. */
  readonly error?: string;
}

const COLUMNS = `r.tenant_id::text AS "tenantId", t.slug, r.dimension, r.window_start AS "windowStart", r.window_end AS "windowEnd",
  r.event_name AS "eventName", r.value::text AS value, r.stripe_customer_id AS "stripeCustomerId", r.identifier, r.status, r.error,
  r.attempts, r.first_sent_at AS "firstSentAt", r.reported_at AS "reportedAt", r.created_at AS "createdAt", r.updated_at AS "updatedAt"`;

/** The control plane's record of usage reports: what the reporter writes, `tenancy usage show` reads. */
export class UsageReportStore {
  constructor(private readonly pool: Pool) {}

  /** The recorded reports among `identifiers` (any status). */
  async byIdentifiers(identifiers: readonly string[]): Promise<Map<string, UsageReport>> {
    const out = new Map<string, UsageReport>();
    for (let i = 0; i < identifiers.length; i += 5000) {
      const { rows } = await this.pool.query<UsageReport>(
        `SELECT ${COLUMNS} FROM tenancy.usage_reports r JOIN tenancy.tenants t ON t.id = r.tenant_id WHERE r.identifier = ANY($1::text[])`,
        [identifiers.slice(i, i + 5000)],
      );
      for (const r of rows) out.set(r.identifier, r);
    }
    return out;
  }

  /**
   * Records windows not recorded yet (pending, or failed when their value could not be measured);
   * a window already recorded keeps its row (its value is what was, or will be, sent). A failed
   * measurement recorded earlier gets the value now measured.
   */
  async record(reports: readonly NewUsageReport[]): Promise<void> {
    for (let i = 0; i < reports.length; i += 2000) {
      const chunk = reports.slice(i, i + 2000);
      await this.pool.query(
        `INSERT INTO tenancy.usage_reports (tenant_id, dimension, window_start, window_end, event_name, value, stripe_customer_id, identifier, status, error)
         SELECT tenant_id, dimension, to_timestamp(ws / 1000.0), to_timestamp(we / 1000.0), event_name, value, customer, identifier,
                CASE WHEN value IS NULL THEN 'failed' ELSE 'pending' END, error
           FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::float8[], $5::text[], $6::numeric[], $7::text[], $8::text[], $9::text[])
                AS n(tenant_id, dimension, ws, we, event_name, value, customer, identifier, error)
         ON CONFLICT (identifier) DO UPDATE SET value = EXCLUDED.value, status = EXCLUDED.status, error = EXCLUDED.error, updated_at = now()
           WHERE usage_reports.value IS NULL AND usage_reports.status = 'failed'`,
        [
          chunk.map((r) => r.tenantId),
          chunk.map((r) => r.dimension),
          chunk.map((r) => r.windowStart),
          chunk.map((r) => r.windowEnd),
          chunk.map((r) => r.eventName),
          chunk.map((r) => (r.value === null ? null : String(r.value))),
          chunk.map((r) => r.stripeCustomerId),
          chunk.map((r) => r.identifier),
          chunk.map((r) => r.error ?? null),
        ],
      );
    }
  }

  /** Marks rows as about to be sent (attempts + 1; the first send's time kept). */
  async markSending(identifiers: readonly string[]): Promise<void> {
    if (identifiers.length === 0) return;
    await this.pool.query(
      `UPDATE tenancy.usage_reports SET attempts = attempts + 1, first_sent_at = coalesce(first_sent_at, now()), updated_at = now()
        WHERE identifier = ANY($1::text[]) AND status <> 'reported'`,
      [identifiers],
    );
  }

  async markReported(identifiers: readonly string[]): Promise<void> {
    if (identifiers.length === 0) return;
    await this.pool.query(
      `UPDATE tenancy.usage_reports SET status = 'reported', error = NULL, reported_at = now(), updated_at = now()
        WHERE identifier = ANY($1::text[]) AND status <> 'reported'`,
      [identifiers],
    );
  }

  async markFailed(failures: readonly { identifier: string; error: string; status?: 'failed' | 'unconfirmed' }[]): Promise<void> {
    if (failures.length === 0) return;
    await this.pool.query(
      `UPDATE tenancy.usage_reports r SET status = f.status, error = f.error, updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::text[]) AS f(identifier, error, status)
        WHERE r.identifier = f.identifier AND r.status <> 'reported'`,
      [failures.map((f) => f.identifier), failures.map((f) => f.error.slice(0, 2000)), failures.map((f) => f.status ?? 'failed')],
    );
  }

  /** A tenant's reports, newest window first. */
  async forTenant(tenantId: string, limit = 500): Promise<UsageReport[]> {
    const { rows } = await this.pool.query<UsageReport>(
      `SELECT ${COLUMNS} FROM tenancy.usage_reports r JOIN tenancy.tenants t ON t.id = r.tenant_id
        WHERE r.tenant_id = $1 ORDER BY r.window_start DESC, r.dimension LIMIT $2`,
      [tenantId, limit],
    );
    return rows;
  }
}
