import type { IConstruct } from 'constructs';
import { planOf, platformValues, quotaProblems } from '../checks';
import { at } from '../inspect';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * TENANCY-K8S-4: the tenant namespace has a ResourceQuota over compute (CPU and memory requests
 * and limits), storage and object counts (pods, services, PVCs, ConfigMaps, Secrets), with no
 * LoadBalancer or NodePort service, within the plan's ceiling.
 */
export const NamespaceQuotaRule: PolicyRule = {
  id: 'TENANCY-K8S-4',
  pack: 'tenancy',
  explanation: 'without a quota on compute, storage and object counts one tenant can starve the others (noisy neighbour) or exhaust the API server',
  level: 'error',
  requirement: REFERENCE.quota,
  check(node: IConstruct, ctx: PolicyContext) {
    const values = platformValues(ctx, node);
    if (!values) return undefined;
    const problems = quotaProblems(at(values, 'quota', 'hard'), planOf(ctx));
    return problems.length ? problems : true;
  },
};
