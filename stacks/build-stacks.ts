import type { Construct } from 'constructs';
import type { Registry } from '../lib/registry/load-registry';
import { PlatformStack } from './platform-stack';
import type { Selection } from './select-tenants';
import { TenantStack } from './tenant-stack';

export interface TenancyStacks {
  readonly platform: readonly PlatformStack[];
  readonly tenants: readonly TenantStack[];
}

/** Adds the selected platform and tenant stacks to `app`. */
export function buildStacks(app: Construct, registry: Registry, selection: Selection): TenancyStacks {
  return {
    platform: selection.platformRegions.map((region) => new PlatformStack(app, { platform: registry.platform, region })),
    tenants: selection.tenants.map((tenant) => new TenantStack(app, { tenant, platform: registry.platform })),
  };
}
