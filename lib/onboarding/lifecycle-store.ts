import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Tenant } from '../registry/tenant-schema';
import { appendAudit, inTransaction } from '../control-plane/transaction';

/**
 * The lifecycle tables of the control plane (migrations/control-plane/0003_lifecycle): one job per
 * tenant and kind (onboard, offboard), the steps it completed, the outbox, the claimed domains.
 * Every change is audited in `tenancy.audit_log` in the same transaction.
 */
export type JobKind = 'onboard' | 'offboard';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface LifecycleJob {
  readonly id: string;
  readonly tenantId: string;
  readonly kind: JobKind;
  readonly status: JobStatus;
  readonly request: Record<string, unknown>;
  readonly requestKey: string | null;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
}

export interface StepRecord {
  readonly step: string;
  readonly position: number;
  readonly result: Record<string, unknown>;
  readonly startedAt: Date;
  readonly finishedAt: Date;
}

export interface OutboxEvent {
  readonly eventType: string;
  readonly tenantId: string;
  /** One event per fact: a second insert with the same key is ignored. */
  readonly idempotencyKey: string;
  readonly payload: Record<string, unknown>;
}

const JOB_COLUMNS = `id::text, tenant_id::text AS "tenantId", kind, status, request, request_key AS "requestKey", attempts,
  last_error AS "lastError", created_at AS "createdAt", updated_at AS "updatedAt", finished_at AS "finishedAt"`;

/** A unique violation (SQLSTATE 23505) and the constraint it names. */
export function uniqueViolation(e: unknown): string | undefined {
  const err = e as { code?: string; constraint?: string };
  return err?.code === '23505' ? err.constraint ?? 'unique' : undefined;
}

export class LifecycleStore {
  constructor(readonly pool: Pool, readonly actor: string) {}

  /**
   * The control-plane side of an accepted onboarding request, in one transaction: the tenant
   * (status `provisioning`, with the placement `placeIn` decides first), its domains, its onboarding job (`queued`), audited. Throws a
   * unique violation (see {@link uniqueViolation}) when the slug, id or a domain was taken meanwhile.
   */
  async createOnboarding(tenant: Tenant, domains: readonly string[], request: Record<string, unknown>, requestKey?: string, placeIn?: (c: PoolClient) => Promise<Record<string, unknown> | undefined>): Promise<LifecycleJob> {
    return this.transaction(async (c) => {
      // The placement decided in this transaction (bridge shards: bridge-placement.ts); it may complete `request` too.
      const placement = (await placeIn?.(c)) ?? {};
      await c.query(
        `INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, $3, $4, 'provisioning', $5, $6::jsonb)`,
        [tenant.id, tenant.slug, tenant.model, tenant.plan, tenant.region, JSON.stringify(placement)],
      );
      await this.auditIn(c, 'tenant.registered', tenant.id, { slug: tenant.slug, model: tenant.model, plan: tenant.plan, region: tenant.region, status: 'provisioning', by: 'onboarding' });
      for (const domain of domains) await c.query('INSERT INTO tenancy.tenant_domains (domain, tenant_id) VALUES ($1, $2)', [domain, tenant.id]);
      const job = await this.insertJob(c, tenant.id, 'onboard', request, requestKey);
      await this.auditIn(c, 'onboard.requested', tenant.id, { job: job.id, slug: tenant.slug, domains, requestKey: requestKey ?? null });
      return job;
    });
  }

  /** The offboarding job of a tenant, created (queued) unless it exists; audited when created. */
  async ensureOffboarding(tenantId: string, request: Record<string, unknown>): Promise<{ job: LifecycleJob; created: boolean }> {
    return this.transaction(async (c) => {
      const existing = await c.query<LifecycleJob>(`SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs WHERE tenant_id = $1 AND kind = 'offboard' FOR UPDATE`, [tenantId]);
      if (existing.rows[0]) return { job: existing.rows[0], created: false };
      const job = await this.insertJob(c, tenantId, 'offboard', request);
      await this.auditIn(c, 'offboard.requested', tenantId, { job: job.id, ...request });
      return { job, created: true };
    });
  }

  private async insertJob(c: PoolClient, tenantId: string, kind: JobKind, request: Record<string, unknown>, requestKey?: string): Promise<LifecycleJob> {
    const r = await c.query<LifecycleJob>(
      `INSERT INTO tenancy.lifecycle_jobs (id, tenant_id, kind, status, request, request_key) VALUES ($1, $2, $3, 'queued', $4, $5) RETURNING ${JOB_COLUMNS}`,
      [randomUUID(), tenantId, kind, JSON.stringify(request), requestKey ?? null],
    );
    return r.rows[0];
  }

  async job(tenantId: string, kind: JobKind): Promise<LifecycleJob | undefined> {
    return (await this.pool.query<LifecycleJob>(`SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs WHERE tenant_id = $1 AND kind = $2`, [tenantId, kind])).rows[0];
  }

  async jobById(id: string): Promise<LifecycleJob | undefined> {
    return (await this.pool.query<LifecycleJob>(`SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs WHERE id = $1`, [id])).rows[0];
  }

  async jobByRequestKey(key: string): Promise<LifecycleJob | undefined> {
    return (await this.pool.query<LifecycleJob>(`SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs WHERE request_key = $1`, [key])).rows[0];
  }

  /**
   * The unfinished onboarding job of a request with these parameters (requestFingerprint), whose
   * tenant still holds its slug: a resubmission without a request key is that request's retry.
   */
  async pendingOnboardingByFingerprint(fingerprint: string): Promise<LifecycleJob | undefined> {
    return (await this.pool.query<LifecycleJob>(
      `SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs j
        WHERE j.kind = 'onboard' AND j.status <> 'succeeded' AND j.request->>'requestFingerprint' = $1
          AND EXISTS (SELECT 1 FROM tenancy.tenants t WHERE t.id = j.tenant_id AND t.status = 'provisioning')
        ORDER BY j.created_at LIMIT 1`,
      [fingerprint],
    )).rows[0];
  }

  /** Jobs recorded and not finished (queued or running), oldest first: each must be on the queue. */
  async unfinishedJobs(): Promise<LifecycleJob[]> {
    return (await this.pool.query<LifecycleJob>(`SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs WHERE status IN ('queued', 'running') ORDER BY created_at`)).rows;
  }

  /** Every job of a tenant, oldest first. */
  async jobsOf(tenantId: string): Promise<LifecycleJob[]> {
    return (await this.pool.query<LifecycleJob>(`SELECT ${JOB_COLUMNS} FROM tenancy.lifecycle_jobs WHERE tenant_id = $1 ORDER BY created_at`, [tenantId])).rows;
  }

  /**
   * Slugs and domains the control plane holds (for request validation): those of every tenant not
   * offboarded. A fully offboarded tenant's slug and domains are free for a new tenant (migration 0006).
   */
  async takenNames(): Promise<{ slugs: Set<string>; domains: Set<string> }> {
    const slugs = (await this.pool.query<{ slug: string }>("SELECT slug FROM tenancy.tenants WHERE status <> 'offboarded'")).rows.map((r) => r.slug);
    const domains = (await this.pool.query<{ domain: string }>('SELECT domain FROM tenancy.tenant_domains WHERE released_at IS NULL')).rows.map((r) => r.domain);
    return { slugs: new Set(slugs), domains: new Set(domains) };
  }

  /** Ends a tenant's domain claims inside a transaction (its offboarding finalizes); the rows stay. Audited with the domains released. */
  async releaseDomainsIn(c: PoolClient, tenantId: string): Promise<string[]> {
    const r = await c.query<{ domain: string }>('UPDATE tenancy.tenant_domains SET released_at = now() WHERE tenant_id = $1 AND released_at IS NULL RETURNING domain', [tenantId]);
    const domains = r.rows.map((row) => row.domain).sort();
    if (domains.length) await this.auditIn(c, 'tenant.domains_released', tenantId, { domains });
    return domains;
  }

  /**
   * A job attempt starts: status running, attempts + 1, a lease of `leaseMs` held by `worker`
   * (see {@link renewLease}); audited.
   */
  async startAttempt(job: LifecycleJob, worker: string, leaseMs: number): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(
        `UPDATE tenancy.lifecycle_jobs SET status = 'running', attempts = attempts + 1, updated_at = now(), worker = $2, lease_expires_at = now() + make_interval(secs => $3::double precision / 1000) WHERE id = $1`,
        [job.id, worker, leaseMs],
      );
      await this.auditIn(c, `${job.kind}.attempt`, job.tenantId, { job: job.id, attempt: job.attempts + 1, worker });
    });
  }

  /**
   * Extends a running attempt's lease (its worker is alive); a job `running` whose lease lapsed
   * lost its worker and is shown `stalled` (status.ts). False when the job is not this worker's
   * running attempt any more.
   */
  async renewLease(jobId: string, worker: string, leaseMs: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE tenancy.lifecycle_jobs SET lease_expires_at = now() + make_interval(secs => $3::double precision / 1000) WHERE id = $1 AND status = 'running' AND worker = $2`,
      [jobId, worker, leaseMs],
    );
    return Boolean(r.rowCount);
  }

  /** An attempt stopped between two steps (its worker is shutting down): queued again, the lease ended; audited. */
  async interrupt(job: LifecycleJob, reason: string): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(`UPDATE tenancy.lifecycle_jobs SET status = 'queued', lease_expires_at = NULL, updated_at = now() WHERE id = $1 AND status = 'running'`, [job.id]);
      await this.auditIn(c, `${job.kind}.interrupted`, job.tenantId, { job: job.id, reason });
    });
  }

  async steps(jobId: string): Promise<StepRecord[]> {
    return (await this.pool.query<StepRecord>(
      `SELECT step, position, result, started_at AS "startedAt", finished_at AS "finishedAt" FROM tenancy.lifecycle_steps WHERE job_id = $1 ORDER BY position`,
      [jobId],
    )).rows;
  }

  /**
   * Records a completed step and audits it, in one transaction with whatever `alongside` writes
   * (e.g. the status change and the outbox event of the last step): they commit together or not at all.
   */
  async recordStep(job: LifecycleJob, step: string, position: number, result: Record<string, unknown>, startedAt: Date, alongside?: (c: PoolClient) => Promise<void>): Promise<void> {
    await this.transaction(async (c) => {
      if (alongside) await alongside(c);
      const r = await c.query(
        'INSERT INTO tenancy.lifecycle_steps (job_id, step, position, result, started_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING step',
        [job.id, step, position, JSON.stringify(result), startedAt],
      );
      if (r.rowCount) await this.auditIn(c, `${job.kind}.step`, job.tenantId, { job: job.id, step, result });
    });
  }

  /** The job's end (or a failed attempt): audited. */
  async finish(job: LifecycleJob, status: 'succeeded' | 'failed', error?: string): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(
        `UPDATE tenancy.lifecycle_jobs SET status = $2, last_error = $3, updated_at = now(), lease_expires_at = NULL, finished_at = CASE WHEN $2 = 'succeeded' THEN now() ELSE finished_at END WHERE id = $1`,
        [job.id, status, error ?? null],
      );
      await this.auditIn(c, `${job.kind}.${status}`, job.tenantId, { job: job.id, ...(error ? { error } : {}) });
    });
  }

  /** A failed attempt the queue will retry: back to `queued`, the error kept as `last_error`; audited. */
  async retryLater(job: LifecycleJob, error: string): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(`UPDATE tenancy.lifecycle_jobs SET status = 'queued', last_error = $2, updated_at = now(), lease_expires_at = NULL WHERE id = $1`, [job.id, error]);
      await this.auditIn(c, `${job.kind}.attempt-failed`, job.tenantId, { job: job.id, error });
    });
  }

  /** Sets a tenant's status inside a transaction, audited as tenant.status (as ControlPlane.setStatus does). */
  async setTenantStatusIn(c: PoolClient, tenantId: string, status: string): Promise<boolean> {
    const r = await c.query('UPDATE tenancy.tenants SET status = $2, updated_at = now() WHERE id = $1 AND status IS DISTINCT FROM $2 RETURNING id', [tenantId, status]);
    if (r.rowCount) await this.auditIn(c, 'tenant.status', tenantId, { status });
    return Boolean(r.rowCount);
  }

  /** Sets a tenant's status in its own transaction. */
  async setTenantStatus(tenantId: string, status: string): Promise<boolean> {
    return this.transaction((c) => this.setTenantStatusIn(c, tenantId, status));
  }

  /** Writes an event to the outbox inside a transaction; false when that fact was already announced. */
  async emitIn(c: PoolClient, event: OutboxEvent): Promise<boolean> {
    const r = await c.query(
      'INSERT INTO tenancy.outbox (event_type, tenant_id, idempotency_key, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id',
      [event.eventType, event.tenantId, event.idempotencyKey, JSON.stringify(event.payload)],
    );
    return Boolean(r.rowCount);
  }

  async outbox(tenantId: string): Promise<(OutboxEvent & { createdAt: Date; publishedAt: Date | null })[]> {
    return (await this.pool.query(
      `SELECT event_type AS "eventType", tenant_id::text AS "tenantId", idempotency_key AS "idempotencyKey", payload, created_at AS "createdAt", published_at AS "publishedAt"
         FROM tenancy.outbox WHERE tenant_id = $1 ORDER BY id`,
      [tenantId],
    )).rows;
  }

  async audit(action: string, tenantId: string | null, details: Record<string, unknown> = {}): Promise<void> {
    await appendAudit(this.pool, this.actor, action, tenantId, details);
  }

  auditIn(c: PoolClient, action: string, tenantId: string | null, details: Record<string, unknown>): Promise<void> {
    return appendAudit(c, this.actor, action, tenantId, details);
  }

  transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }
}
