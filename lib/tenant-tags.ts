import type { Tenant } from './registry/tenant-schema';
import { terraformLiteral } from './terraform-literal';

/** Tag keys every tenant resource carries, so cost and audit tools can attribute it. */
export const TAG_KEYS = {
  tenantId: 'tenancy:tenant-id',
  tenantSlug: 'tenancy:tenant-slug',
  model: 'tenancy:model',
  plan: 'tenancy:plan',
  managedBy: 'tenancy:managed-by',
} as const;

/** The tags, as Terraform reads them literally (the values are the tenant's: terraformLiteral). */
export function tenantTags(tenant: Pick<Tenant, 'id' | 'slug' | 'model' | 'plan'>): Record<string, string> {
  return {
    [TAG_KEYS.tenantId]: terraformLiteral(tenant.id),
    [TAG_KEYS.tenantSlug]: terraformLiteral(tenant.slug),
    [TAG_KEYS.model]: terraformLiteral(tenant.model),
    [TAG_KEYS.plan]: terraformLiteral(tenant.plan),
    [TAG_KEYS.managedBy]: 'cdktf-tenancy',
  };
}
