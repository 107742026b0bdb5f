import type { IConstruct } from 'constructs';
import { platformValues } from '../checks';
import { at } from '../inspect';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** TENANCY-K8S-2: the tenant namespace denies all ingress and all egress by default. */
export const DefaultDenyRule: PolicyRule = {
  id: 'TENANCY-K8S-2',
  pack: 'tenancy',
  explanation: 'a default-deny NetworkPolicy in both directions is what blocks cross-namespace traffic; every other policy only adds a narrow exception',
  level: 'error',
  requirement: REFERENCE.networkPolicy,
  check(node: IConstruct, ctx: PolicyContext) {
    const values = platformValues(ctx, node);
    if (!values) return undefined;
    const deny = at(values, 'networkPolicy', 'defaultDeny') ?? {};
    const missing = (['ingress', 'egress'] as const).filter((d) => deny[d] !== true);
    return missing.length ? `values.networkPolicy.defaultDeny does not deny ${missing.join(' and ')}` : true;
  },
};
