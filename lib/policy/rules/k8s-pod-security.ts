import type { IConstruct } from 'constructs';
import { TENANT_POD_SECURITY } from '../../kubernetes/namespace-policy';
import { platformValues } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * TENANCY-K8S-6: the tenant namespace enforces (and audits and warns on) Pod Security
 * `restricted`: no privileged containers, privilege escalation, added capabilities, root, host
 * namespaces, ports or paths.
 */
export const PodSecurityRule: PolicyRule = {
  id: 'TENANCY-K8S-6',
  pack: 'tenancy',
  explanation: 'a privileged or host-level pod escapes its namespace; Pod Security Admission "restricted" blocks every such pod at admission',
  level: 'error',
  requirement: REFERENCE.namespaces,
  check(node: IConstruct, ctx: PolicyContext) {
    const values = platformValues(ctx, node);
    if (!values) return undefined;
    const psa = values.podSecurity ?? {};
    const wrong = (Object.keys(TENANT_POD_SECURITY) as (keyof typeof TENANT_POD_SECURITY)[]).filter((mode) => psa[mode] !== TENANT_POD_SECURITY[mode]);
    return wrong.length ? wrong.map((mode) => `Pod Security ${mode} is ${JSON.stringify(psa[mode] ?? null)}, not "restricted"`) : true;
  },
};
