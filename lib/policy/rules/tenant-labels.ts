import type { IConstruct } from 'constructs';
import { at } from '../inspect';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * TENANCY-TAG-2: the tenant's Helm releases carry its identity: the charts label every
 * Kubernetes object (and the namespace tenant-<slug>) from `values.tenant`.
 */
export const TenantLabelsRule: PolicyRule = {
  id: 'TENANCY-TAG-2',
  pack: 'tenancy',
  explanation: "every Kubernetes object of a tenant is labelled with its tenant id, slug, plan and model and lives in the tenant's namespace, so policies, quotas and audit evidence select it",
  level: 'error',
  requirement: REFERENCE.helm,
  check(node: IConstruct, ctx: PolicyContext) {
    const chart = ctx.releaseChart(node);
    if (chart !== 'tenant-platform' && chart !== 'tenant-app') return undefined;
    const values = ctx.releaseValues(node)!;
    const identity = at(values, 'tenant') ?? {};
    const problems: string[] = [];
    for (const key of ['id', 'slug', 'plan', 'model']) {
      if (typeof identity[key] !== 'string' || identity[key] === '') problems.push(`values.tenant.${key} is missing`);
    }
    const t = ctx.tenant;
    if (t) {
      const expected: Record<string, string> = { id: t.id, slug: t.slug, plan: t.plan, model: t.model };
      for (const key of Object.keys(expected)) {
        if (identity[key] !== undefined && identity[key] !== expected[key]) problems.push(`values.tenant.${key} is ${JSON.stringify(identity[key])}, not the tenant's ${JSON.stringify(expected[key])}`);
      }
      const namespace = chart === 'tenant-platform' ? values.namespace : ctx.config(node)?.namespace;
      if (namespace !== `tenant-${t.slug}`) problems.push(`the release targets namespace ${JSON.stringify(namespace)}, not tenant-${t.slug}`);
    }
    return problems.length ? problems : true;
  },
};
