import { didYouMean } from '../lib/registry/closest-name';
import type { Registry } from '../lib/registry/load-registry';
import type { Tenant } from '../lib/registry/tenant-schema';

/** Environment variable that limits synthesis to some stacks (comma-separated slugs or ids). */
export const SELECT_ENV = 'TENANCY_SELECT';
/** cdktf context key with the same meaning (cdktf.json "context", or CDKTF_CONTEXT_JSON). */
export const SELECT_CONTEXT = 'tenancySelect';
/** Selector token for the platform stacks. */
export const PLATFORM_TOKEN = 'platform';

export interface Selection {
  /** Tenants whose stacks are built. */
  readonly tenants: readonly Tenant[];
  /** Regions whose platform stacks are built. */
  readonly platformRegions: readonly string[];
  /** False when everything is built. */
  readonly partial: boolean;
}

/**
 * Resolves a selector such as "acme,globex" or "platform,3f1c…" to stacks. No selector builds
 * every stack. Offboarded tenants never get a stack. An unknown name is an error, so a
 * pipeline's typo never synthesizes (and then deploys) nothing.
 */
export function selectStacks(registry: Registry, selector: string | undefined): Selection {
  const live = registry.tenants.filter((t) => t.status !== 'offboarded');
  const allRegions = [...new Set([registry.platform.controlPlaneRegion, ...live.map((t) => t.region)])].sort();
  const tokens = (selector ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (tokens.length === 0 || (tokens.length === 1 && tokens[0] === '*')) {
    return { tenants: live, platformRegions: allRegions, partial: false };
  }
  const bySlug = new Map(registry.tenants.map((t) => [t.slug, t]));
  const byId = new Map(registry.tenants.map((t) => [t.id.toLowerCase(), t]));
  const picked = new Map<string, Tenant>();
  let platform = false;
  const errors: string[] = [];
  for (const token of tokens) {
    if (token === PLATFORM_TOKEN) {
      platform = true;
      continue;
    }
    const tenant = bySlug.get(token) ?? byId.get(token.toLowerCase());
    if (!tenant) errors.push(`no tenant with slug or id ${JSON.stringify(token)}${didYouMean(token, [PLATFORM_TOKEN, ...live.map((t) => t.slug)])}`);
    else if (tenant.status === 'offboarded') errors.push(`tenant ${tenant.slug} is offboarded and has no stack`);
    else picked.set(tenant.slug, tenant);
  }
  if (errors.length > 0) throw new Error(`${SELECT_ENV}=${selector}: ${errors.join('; ')}`);
  return { tenants: [...picked.values()], platformRegions: platform ? allRegions : [], partial: true };
}
