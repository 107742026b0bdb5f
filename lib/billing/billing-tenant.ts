import type { TenantOutputs } from '../hooks/deploy-outputs';
import type { Plan } from '../registry/tenant-schema';

/**
 * A tenant as billing sees it. `id` is the registry's immutable UUID: it keys the Stripe
 * objects (metadata `tenant_id`) and the idempotency keys. The slug, name and email may change;
 * they are kept up to date on the customer but never part of a create request.
 */
export interface BillingTenant {
  readonly id: string;
  readonly slug: string;
  readonly plan: Plan;
  /** The billing contact (the registry's adminEmail), when known. */
  readonly email?: string;
  /** The customer name (the registry's company). @default the slug */
  readonly name?: string;
}

/** Contact details the deploy outputs do not carry (e.g. from the registry: adminEmail, company). */
export interface BillingProfile {
  readonly email?: string;
  readonly name?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function billingTenantOf(outputs: TenantOutputs, profile?: BillingProfile): BillingTenant {
  return { id: outputs.tenant_id, slug: outputs.slug, plan: outputs.plan, ...(profile?.email ? { email: profile.email } : {}), ...(profile?.name ? { name: profile.name } : {}) };
}

/** Refuses anything but a lowercase UUID: the id goes into search queries and idempotency keys. */
export function checkTenantId(id: string): string {
  if (!UUID.test(id)) throw new Error(`tenant id ${JSON.stringify(id)} is not a lowercase UUID`);
  return id;
}

/** The metadata every Stripe object of a tenant carries. */
export function tenantMetadata(tenant: BillingTenant, extra: Record<string, string> = {}): Record<string, string> {
  return { tenant_id: tenant.id, tenant_slug: tenant.slug, ...extra };
}
