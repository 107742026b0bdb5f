import type { IConstruct } from 'constructs';
import { TAG_KEYS } from '../../tenant-tags';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

const TENANT_KEYS = [TAG_KEYS.tenantId, TAG_KEYS.tenantSlug, TAG_KEYS.model, TAG_KEYS.plan];

const defaultTags = (config: Record<string, any>): Record<string, string> =>
  Object.assign({}, ...((Array.isArray(config.default_tags) ? config.default_tags : []) as Record<string, any>[]).map((d) => d?.tags ?? {}));

/** TENANCY-TAG-1: a tenant stack's AWS provider tags every resource with the tenant, and no resource overrides that. */
export const TenantTagsRule: PolicyRule = {
  id: 'TENANCY-TAG-1',
  pack: 'tenancy',
  explanation: 'every AWS resource of a tenant carries its tenant id, slug, model and plan, so cost and audit evidence can be attributed per tenant',
  level: 'error',
  requirement: REFERENCE.soc2,
  check(node: IConstruct, ctx: PolicyContext) {
    if (ctx.scope === 'platform') return undefined;
    const type = ctx.typeOf(node);
    if (type === 'aws') {
      const tags = defaultTags(ctx.config(node)!);
      const missing = TENANT_KEYS.filter((k) => !tags[k]);
      if (missing.length) return `AWS provider default_tags lack ${missing.join(', ')}`;
      const t = ctx.tenant;
      if (t) {
        const expected: Record<string, string> = { [TAG_KEYS.tenantId]: t.id, [TAG_KEYS.tenantSlug]: t.slug, [TAG_KEYS.model]: t.model, [TAG_KEYS.plan]: t.plan };
        const wrong = TENANT_KEYS.filter((k) => tags[k] !== expected[k]);
        if (wrong.length) return wrong.map((k) => `AWS provider tag ${k} is ${JSON.stringify(tags[k])}, not the tenant's ${JSON.stringify(expected[k])}`);
      }
      return true;
    }
    // A resource's own tags win over the provider's default_tags: none may re-attribute it.
    if (type?.startsWith('aws_')) {
      // Read the configuration only of resources that set tags (or override them): resolving every resource is costly.
      const raw = node as unknown as { tagsInput?: unknown; rawOverrides?: Record<string, unknown> };
      if (raw.tagsInput === undefined && !(raw.rawOverrides && 'tags' in raw.rawOverrides)) return undefined;
      const tags = ctx.config(node)?.tags;
      if (!tags || typeof tags !== 'object') return undefined;
      const provider = ctx.elements('aws').map((p) => defaultTags(p.config))[0] ?? {};
      const overridden = TENANT_KEYS.filter((k) => k in tags && tags[k] !== provider[k]);
      return overridden.length ? `resource tags override ${overridden.map((k) => `${k}=${JSON.stringify(tags[k])}`).join(', ')}` : true;
    }
    return undefined;
  },
};
