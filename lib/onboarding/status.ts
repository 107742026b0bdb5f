import type { Pool } from 'pg';
import { tenantSqlNames } from '../db/sql';
import { billingStatuses, type BillingStatusView } from './billing-status';
import { ESCALATION_PLANS } from './escalation';
import type { JobKind, JobStatus } from './lifecycle-store';
import { OFFBOARDING_STEPS, ONBOARDING_STEPS } from './step-names';

/**
 * `tenancy status`: per tenant, from the control plane only (no Redis, no cloud): lifecycle
 * status, the onboarding and offboarding jobs with their completed steps and last error, the
 * migration version, and the Stripe ids.
 */
/**
 * A job's status as shown: the control plane's, except that a `running` job whose lease lapsed
 * (its worker died or lost the control plane; job-runner.ts) is `stalled`: the queue hands it to
 * another worker, which resumes it at its first unrecorded step.
 */
export type JobViewStatus = JobStatus | 'stalled';

export interface JobView {
  readonly id: string;
  readonly kind: JobKind;
  readonly status: JobViewStatus;
  readonly attempts: number;
  readonly stepsDone: readonly string[];
  /** The next step to run, by the job's plan (undefined when done). */
  readonly nextStep?: string;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export interface TenantStatusView {
  readonly id: string;
  readonly slug: string;
  readonly model: string;
  readonly plan: string;
  readonly region: string;
  readonly status: string;
  readonly jobs: readonly JobView[];
  readonly lastError: string | null;
  readonly migration: { readonly target: string; readonly version: number | null; readonly status: string | null };
  readonly stripe: { readonly customerId: string | null; readonly subscriptionId: string | null };
  /** Billing as the Stripe webhooks last synced it (absent before any event for the tenant). */
  readonly billing?: BillingStatusView;
  readonly updatedAt: string;
}

interface Row {
  id: string; slug: string; model: string; plan: string; region: string; status: string; updated_at: Date;
  stripe_customer_id: string | null; stripe_subscription_id: string | null;
  billing_result: Record<string, unknown> | null; migrate_result: Record<string, unknown> | null; migration: { version: number; status: string } | null;
}

/**
 * Every tenant (or every tenant with one slug), in slug order; per slug the live tenant first, then
 * offboarded ones, newest first (a new tenant may reuse an offboarded tenant's slug).
 */
export async function tenantStatuses(pool: Pool, slug?: string): Promise<TenantStatusView[]> {
  const rows = (await pool.query<Row>(
    `SELECT t.id::text, t.slug, t.model, t.plan, t.region, t.status, t.updated_at, t.stripe_customer_id, t.stripe_subscription_id,
            (SELECT h.result FROM tenancy.hook_runs h WHERE h.tenant_id = t.id AND h.hook = 'billing' AND h.status = 'succeeded' ORDER BY h.id DESC LIMIT 1) AS billing_result,
            (SELECT h.result FROM tenancy.hook_runs h WHERE h.tenant_id = t.id AND h.hook = 'migrate' AND h.status = 'succeeded' ORDER BY h.id DESC LIMIT 1) AS migrate_result,
            (SELECT jsonb_build_object('version', m.version, 'status', m.status) FROM tenancy.tenant_migrations m
              WHERE m.target = CASE WHEN t.model = 'pool' THEN 'pool' ELSE 'tenant_' || replace(t.slug, '-', '_') END
                AND (t.model = 'pool' OR m.tenant_id IS NULL OR m.tenant_id = t.id)) AS migration
       FROM tenancy.tenants t WHERE $1::text IS NULL OR t.slug = $1
      ORDER BY t.slug, t.status = 'offboarded', t.created_at DESC`,
    [slug ?? null],
  )).rows;
  if (rows.length === 0) return [];
  const jobs = (await pool.query<{ id: string; tenant_id: string; kind: JobKind; status: JobViewStatus; attempts: number; last_error: string | null; created_at: Date; finished_at: Date | null; steps: string[] | null }>(
    `SELECT j.id::text, j.tenant_id::text, j.kind,
            CASE WHEN j.status = 'running' AND (j.lease_expires_at IS NULL OR j.lease_expires_at < now()) THEN 'stalled' ELSE j.status END AS status,
            j.attempts, j.last_error, j.created_at, j.finished_at,
            (SELECT array_agg(s.step ORDER BY s.position) FROM tenancy.lifecycle_steps s WHERE s.job_id = j.id) AS steps
       FROM tenancy.lifecycle_jobs j WHERE j.tenant_id = ANY($1::uuid[]) ORDER BY j.created_at`,
    [rows.map((r) => r.id)],
  )).rows;
  const billingViews = await billingStatuses(pool, new Map(rows.map((r) => [r.id, r.plan])));
  return rows.map((r) => {
    const mine = jobs.filter((j) => j.tenant_id === r.id).map<JobView>((j) => {
      const done = j.steps ?? [];
      const plan = plannedSteps(j.kind, r.model, r.plan);
      return {
        id: j.id, kind: j.kind, status: j.status, attempts: j.attempts, stepsDone: done,
        nextStep: j.status === 'succeeded' ? undefined : plan.find((s) => !done.includes(s)),
        lastError: j.status === 'succeeded' ? null : j.last_error,
        createdAt: j.created_at.toISOString(), finishedAt: j.finished_at ? j.finished_at.toISOString() : null,
      };
    });
    const target = r.model === 'pool' ? 'pool' : tenantSqlNames(r.slug).schema;
    const hookVersion = typeof r.migrate_result?.version === 'number' ? r.migrate_result.version : null;
    const billing = r.billing_result ?? {};
    const pick = (...keys: string[]) => keys.map((k) => billing[k]).find((v): v is string => typeof v === 'string') ?? null;
    return {
      id: r.id, slug: r.slug, model: r.model, plan: r.plan, region: r.region, status: r.status, jobs: mine,
      lastError: [...mine].reverse().find((j) => j.lastError)?.lastError ?? null,
      migration: { target, version: r.migration?.version ?? hookVersion, status: r.migration?.status ?? (hookVersion !== null ? 'applied' : null) },
      stripe: { customerId: r.stripe_customer_id ?? pick('customerId', 'customer_id', 'customer'), subscriptionId: r.stripe_subscription_id ?? pick('subscriptionId', 'subscription_id', 'subscription') },
      ...(billingViews.has(r.id) ? { billing: billingViews.get(r.id) } : {}),
      updatedAt: r.updated_at.toISOString(),
    };
  });
}

/** The steps a job of this kind runs for this model and plan (synthesize of offboarding: cdktf deploys only). */
export function plannedSteps(kind: JobKind, model: string, plan: string): string[] {
  if (kind === 'onboard') return ONBOARDING_STEPS.filter((s) => s !== 'escalation' || ESCALATION_PLANS.has(plan));
  const only: Record<string, string> = { snapshot: 'silo', 'lift-deletion-protection': 'silo', 'erase-schema': 'bridge', 'erase-rows': 'pool' };
  return OFFBOARDING_STEPS.filter((s) => !only[s] || only[s] === model);
}
