import type { IConstruct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { TAG_KEYS } from '../../tenant-tags';
import type { PolicyRule } from '../policy-rule';

/** TENANCY-TAG-1: a tenant stack's AWS provider tags every resource with the tenant. */
export const TenantTagsRule: PolicyRule = {
  id: 'TENANCY-TAG-1',
  explanation: 'every AWS resource of a tenant carries its tenant id, slug, model and plan, so cost and audit evidence can be attributed per tenant',
  level: 'error',
  check(node: IConstruct) {
    if (!(node instanceof AwsProvider)) return undefined;
    const blocks = Array.isArray(node.defaultTags) ? node.defaultTags : [];
    const tags: Record<string, string> = Object.assign({}, ...blocks.map((d) => d.tags ?? {}));
    const missing = [TAG_KEYS.tenantId, TAG_KEYS.tenantSlug, TAG_KEYS.model, TAG_KEYS.plan].filter((k) => !tags[k]);
    return missing.length ? `AWS provider default_tags lack ${missing.join(', ')}` : undefined;
  },
};
