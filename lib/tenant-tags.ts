import type { Tenant } from './registry/tenant-schema';

/** Tag keys every tenant resource carries, so cost and audit tools can attribute it. */
export const TAG_KEYS = {
  tenantId: 'tenancy:tenant-id',
  tenantSlug: 'tenancy:tenant-slug',
  model: 'tenancy:model',
  plan: 'tenancy:plan',
  managedBy: 'tenancy:managed-by',
} as const;

export function tenantTags(tenant: Pick<Tenant, 'id' | 'slug' | 'model' | 'plan'>): Record<string, string> {
  return {
    [TAG_KEYS.tenantId]: tenant.id,
    [TAG_KEYS.tenantSlug]: tenant.slug,
    [TAG_KEYS.model]: tenant.model,
    [TAG_KEYS.plan]: tenant.plan,
    [TAG_KEYS.managedBy]: 'cdktf-tenancy',
  };
}
