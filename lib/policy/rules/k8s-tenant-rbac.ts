import type { IConstruct } from 'constructs';
import { CLUSTER_SCOPED_RESOURCES, ESCALATING_VERBS, PLATFORM_OWNED_RESOURCES } from '../../kubernetes/namespace-policy';
import { platformValues } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
/** "deployments/scale" names deployments' subresource: the resource is its first part. */
const baseResource = (r: string) => r.split('/')[0].toLowerCase();

/**
 * TENANCY-K8S-7: the tenant's RBAC is one namespaced Role without wildcards, without any verb on
 * what the platform owns (quota, limits, policies, RBAC) or on cluster-scoped resources, and
 * without escalate, bind or impersonate; the chart renders no ClusterRole or ClusterRoleBinding.
 */
export const TenantRbacRule: PolicyRule = {
  id: 'TENANCY-K8S-7',
  pack: 'tenancy',
  explanation: 'a tenant that can edit its quota, policies or roles, or reach cluster-scoped resources, can undo its isolation or read other tenants',
  level: 'error',
  requirement: REFERENCE.rbac,
  check(node: IConstruct, ctx: PolicyContext) {
    const values = platformValues(ctx, node);
    if (!values) return undefined;
    const rbac = values.rbac;
    if (!rbac || !Array.isArray(rbac.rules)) return 'values.rbac.rules is missing';
    const problems: string[] = [];
    const extra = Object.keys(rbac).filter((k) => k !== 'rules');
    if (extra.length) problems.push(`values.rbac has ${extra.join(', ')}: tenant RBAC is one namespaced Role`);
    (rbac.rules as Record<string, unknown>[]).forEach((rule, i) => {
      const where = `rbac.rules[${i}]`;
      const [groups, resources, verbs] = [list(rule.apiGroups), list(rule.resources), list(rule.verbs)];
      if ([...groups, ...resources, ...verbs].includes('*')) problems.push(`${where} uses a wildcard`);
      if (list(rule.nonResourceURLs).length) problems.push(`${where} grants nonResourceURLs (cluster-wide)`);
      const owned = resources.map(baseResource).filter((r) => (PLATFORM_OWNED_RESOURCES as readonly string[]).includes(r));
      if (owned.length) problems.push(`${where} grants ${verbs.join(',')} on ${owned.join(', ')}, which the platform owns`);
      const cluster = resources.map(baseResource).filter((r) => (CLUSTER_SCOPED_RESOURCES as readonly string[]).includes(r));
      if (cluster.length) problems.push(`${where} names cluster-scoped ${cluster.join(', ')}`);
      const escalating = verbs.filter((v) => (ESCALATING_VERBS as readonly string[]).includes(v.toLowerCase()));
      if (escalating.length) problems.push(`${where} grants ${escalating.join(', ')}`);
    });
    return problems.length ? problems : true;
  },
};
