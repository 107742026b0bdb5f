import type { IConstruct } from 'constructs';
import { parseQuantity } from '../../plans';
import { platformValues } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** TENANCY-K8S-5: the tenant namespace has a LimitRange: default requests and limits and a maximum per container. */
export const LimitRangeRule: PolicyRule = {
  id: 'TENANCY-K8S-5',
  pack: 'tenancy',
  explanation: 'with a quota in place a container without requests and limits is refused or escapes accounting; the LimitRange gives every container defaults and a ceiling',
  level: 'error',
  requirement: REFERENCE.quota,
  check(node: IConstruct, ctx: PolicyContext) {
    const values = platformValues(ctx, node);
    if (!values) return undefined;
    const limits = values.limits ?? {};
    const problems: string[] = [];
    const parsed: Record<string, Record<string, number>> = {};
    for (const part of ['defaultRequest', 'default', 'max']) {
      for (const resource of ['cpu', 'memory']) {
        const v = limits[part]?.[resource];
        try {
          (parsed[part] ??= {})[resource] = parseQuantity(String(v));
        } catch {
          problems.push(`values.limits.${part}.${resource} is ${v === undefined ? 'missing' : JSON.stringify(v)}`);
        }
      }
    }
    if (problems.length === 0) {
      for (const resource of ['cpu', 'memory']) {
        if (parsed.defaultRequest[resource] > parsed.default[resource]) problems.push(`the default ${resource} request exceeds the default limit`);
        if (parsed.default[resource] > parsed.max[resource]) problems.push(`the default ${resource} limit exceeds the maximum`);
      }
    }
    return problems.length ? problems : true;
  },
};
