import type { IConstruct } from 'constructs';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * TENANCY-K8S-1: a tenant stack that deploys to Kubernetes (it configures the helm provider)
 * installs exactly one platform release (charts/tenant-platform): the namespace and everything
 * that isolates it come from there, and the other TENANCY-K8S rules check its values.
 */
export const NamespaceReleaseRule: PolicyRule = {
  id: 'TENANCY-K8S-1',
  pack: 'tenancy',
  explanation: "a tenant's workloads run only in a namespace the platform release creates with its isolation (policies, quota, limits, Pod Security, RBAC); without it nothing isolates them",
  level: 'error',
  requirement: REFERENCE.namespaces,
  check(node: IConstruct, ctx: PolicyContext) {
    if (node !== ctx.stack || ctx.scope !== 'tenant' || ctx.elements('helm').length === 0) return undefined;
    const platform = ctx.elements('helm_release').filter((r) => ctx.releaseChart(r.node) === 'tenant-platform');
    if (platform.length === 1) return true;
    return platform.length === 0
      ? 'the stack deploys Helm releases but no platform release (charts/tenant-platform): the tenant namespace would have no isolation'
      : `${platform.length} platform releases (${platform.map((r) => r.address).join(', ')}); one tenant has one namespace`;
  },
};
