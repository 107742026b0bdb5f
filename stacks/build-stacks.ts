import type { Construct } from 'constructs';
import { PolicyGate } from '../lib/policy/policy-gate';
import { annotateFleet } from '../lib/fleet/fleet-metadata';
import type { Registry } from '../lib/registry/load-registry';
import { PlatformStack } from './platform-stack';
import type { Selection } from './select-tenants';
import { TenantStack } from './tenant-stack';

export interface TenancyStacks {
  readonly platform: readonly PlatformStack[];
  readonly tenants: readonly TenantStack[];
}

/**
 * Adds the selected platform and tenant stacks to `app`. Their policy errors fail the app's
 * synth once, all of them listed (PolicyGate), rather than at the first stack with one.
 */
export function buildStacks(app: Construct, registry: Registry, selection: Selection): TenancyStacks {
  PolicyGate.attach(app);
  const stacks = {
    platform: selection.platformRegions.map((region) => new PlatformStack(app, { platform: registry.platform, region })),
    tenants: selection.tenants.map((tenant) => new TenantStack(app, { tenant, platform: registry.platform })),
  };
  // What `tenancy fleet plan` compares with the last apply (lib/fleet).
  annotateFleet(stacks, registry);
  return stacks;
}
