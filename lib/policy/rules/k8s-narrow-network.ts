import type { IConstruct } from 'constructs';
import { egressProblems, MIN_EGRESS_PREFIX, platformValues } from '../checks';
import { at } from '../inspect';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

const NAMESPACE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * TENANCY-K8S-3: the exceptions to default deny stay narrow: ingress only from the ingress
 * controller's namespace (never a tenant's), egress only to listed CIDRs no wider than /16 on
 * listed ports, DNS only to the cluster DNS.
 */
export const NarrowNetworkRule: PolicyRule = {
  id: 'TENANCY-K8S-3',
  pack: 'tenancy',
  explanation: `an allow rule to 0.0.0.0/0, to any namespace or on every port undoes default deny; destinations are listed, at most /${MIN_EGRESS_PREFIX} wide`,
  level: 'error',
  requirement: REFERENCE.networkPolicy,
  check(node: IConstruct, ctx: PolicyContext) {
    const values = platformValues(ctx, node);
    if (!values) return undefined;
    const problems = egressProblems(values.egress);
    const ingress = values.ingressControllerNamespace;
    if (typeof ingress !== 'string' || !NAMESPACE.test(ingress)) problems.push(`values.ingressControllerNamespace ${JSON.stringify(ingress)} is not one namespace`);
    else if (ingress.startsWith('tenant-') || ingress === values.namespace) problems.push(`ingress is allowed from ${ingress}, a tenant namespace`);
    const dns = at(values, 'dns', 'namespace');
    if (dns !== undefined && (typeof dns !== 'string' || dns.startsWith('tenant-') || dns === '')) problems.push(`DNS egress goes to namespace ${JSON.stringify(dns)}`);
    const dnsPods = at(values, 'dns', 'podLabels');
    if (dns !== undefined && (typeof dnsPods !== 'object' || dnsPods === null || Object.keys(dnsPods).length === 0)) problems.push('DNS egress selects every pod of its namespace (values.dns.podLabels is empty)');
    return problems.length ? problems : true;
  },
};
