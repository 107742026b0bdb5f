import type { Tenant } from '../registry/tenant-schema';

/**
 * The escalation policy of enterprise tenants (the plan with an SLA): who is paged, and how fast,
 * when the tenant's stack or data plane fails. Pluggable: anything with `ensurePolicy`.
 *
 * Shipped:
 * - `WebhookEscalationPolicy`: POSTs the tenant (id, slug, company, region, model, plan,
 *   admin email) as JSON to an HTTPS endpoint of the on-call system (an integration of PagerDuty,
 *   Opsgenie or an internal service), with header `Idempotency-Key: escalation.<tenant id>`; the
 *   endpoint answers 2xx with `{ "policyId": "…" }`. It must create the policy once per key.
 * - `RecordOnlyEscalationPolicy`: records the requirement (the step's result and the audit log)
 *   for a team that creates policies by hand; the default when nothing is configured.
 *
 * The step runs for plan `enterprise` only, after billing and before the welcome notification.
 */
export interface EscalationPolicy {
  readonly name: string;
  /** Creates (or finds) the tenant's policy; idempotent per tenant. */
  ensurePolicy(tenant: Tenant): Promise<{ policyId: string; [key: string]: unknown }>;
}

/** Plans whose tenants get an escalation policy. */
export const ESCALATION_PLANS: ReadonlySet<string> = new Set(['enterprise']);

export class RecordOnlyEscalationPolicy implements EscalationPolicy {
  readonly name = 'record-only';
  async ensurePolicy(tenant: Tenant): Promise<{ policyId: string; action: string }> {
    return { policyId: `manual:${tenant.id}`, action: 'create the enterprise escalation policy in the on-call system by hand' };
  }
}

export interface WebhookEscalationOptions {
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly timeoutMs?: number;
}

export class WebhookEscalationPolicy implements EscalationPolicy {
  readonly name = 'webhook';

  constructor(private readonly options: WebhookEscalationOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))) {
      throw new Error('the escalation webhook must be https:// (http:// only on the loopback, for tests)');
    }
  }

  async ensurePolicy(tenant: Tenant): Promise<{ policyId: string; status: number }> {
    const res = await fetch(this.options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': `escalation.${tenant.id}`,
        ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
      },
      body: JSON.stringify({ tenantId: tenant.id, slug: tenant.slug, company: tenant.company, plan: tenant.plan, model: tenant.model, region: tenant.region, contact: tenant.adminEmail }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`escalation webhook answered ${res.status}: ${body.slice(0, 200)}`);
    let policyId: unknown;
    try {
      policyId = (JSON.parse(body) as { policyId?: unknown }).policyId;
    } catch {
      // handled below
    }
    if (typeof policyId !== 'string' || policyId === '') throw new Error('escalation webhook answered without a policyId');
    return { policyId, status: res.status };
  }
}
