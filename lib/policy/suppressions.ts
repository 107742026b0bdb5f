import type { IConstruct } from 'constructs';

/** Rule ids look like TENANCY-K8S-2 or HIPAA-SILO-1. */
export const RULE_ID_PATTERN = /^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$/;
/** A reason an auditor can read: at least this many characters. */
export const MIN_REASON_LENGTH = 10;

/**
 * A suppression in a registry entry (`compliance.suppressions`): rule `rule` does not count as
 * failed at the construct `path` (relative to the tenant's stack, e.g. "namespace/release") and
 * below it, for `reason`. The finding is still listed in the compliance report, as suppressed.
 */
export interface Suppression {
  readonly rule: string;
  readonly path: string;
  readonly reason: string;
}

/** A suppression declared on a construct (it covers the construct and everything under it). */
export interface ConstructSuppression {
  readonly rule: string;
  readonly reason: string;
}

const byConstruct = new WeakMap<IConstruct, ConstructSuppression[]>();

function checkSuppression(rule: unknown, reason: unknown, where: string): void {
  if (typeof rule !== 'string' || !RULE_ID_PATTERN.test(rule)) throw new Error(`${where}: rule ${JSON.stringify(rule)} is not a rule id such as "TENANCY-K8S-2"`);
  if (typeof reason !== 'string' || reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(`${where}: suppressing ${rule} needs a reason (at least ${MIN_REASON_LENGTH} characters) that an auditor can read`);
  }
}

/**
 * Construct-level suppressions, the code counterpart of the registry's
 * `compliance.suppressions`: explicit, per rule, with a mandatory reason, and listed in the
 * compliance report.
 *
 *   PolicySuppressions.add(stack.namespace, [{ rule: 'TENANCY-K8S-3', reason: 'partner VPN range, ticket SEC-123' }]);
 */
export const PolicySuppressions = {
  add(construct: IConstruct, suppressions: readonly ConstructSuppression[]): void {
    for (const s of suppressions) checkSuppression(s.rule, s.reason, `PolicySuppressions ${construct.node.path}`);
    byConstruct.set(construct, [...(byConstruct.get(construct) ?? []), ...suppressions.map((s) => ({ rule: s.rule, reason: s.reason.trim() }))]);
  },

  /** Suppressions declared on this construct itself. */
  of(construct: IConstruct): readonly ConstructSuppression[] {
    return byConstruct.get(construct) ?? [];
  },

  /** The suppression of `rule` that covers `construct` (declared on it or an ancestor), if any. */
  covering(construct: IConstruct, rule: string): { readonly suppression: ConstructSuppression; readonly on: IConstruct } | undefined {
    for (const scope of [...construct.node.scopes].reverse()) {
      const found = byConstruct.get(scope)?.find((s) => s.rule === rule);
      if (found) return { suppression: found, on: scope };
    }
    return undefined;
  },

  /** Checks a registry suppression's fields (the registry schema checks them too). */
  validate(s: Suppression, where: string): void {
    checkSuppression(s.rule, s.reason, where);
    if (typeof s.path !== 'string' || s.path.trim() === '') throw new Error(`${where}: suppressing ${s.rule} needs the construct path it applies to`);
  },
};

/** Whether a registry suppression's path covers a construct path relative to its stack. */
export function suppressionCovers(suppressionPath: string, stackId: string, constructPath: string): boolean {
  const want = normalizePath(suppressionPath, stackId);
  const rel = constructPath === stackId ? '' : constructPath.startsWith(`${stackId}/`) ? constructPath.slice(stackId.length + 1) : constructPath;
  return want === '' ? true : rel === want || rel.startsWith(`${want}/`);
}

/** A suppression path relative to the stack: a leading "<stack>/" or "/" is dropped; "." or "" is the whole stack. */
export function normalizePath(path: string, stackId: string): string {
  let p = path.trim().replace(/\/+$/, '');
  if (p.startsWith('/')) p = p.slice(1);
  if (p === stackId || p === '.') return '';
  if (p.startsWith(`${stackId}/`)) p = p.slice(stackId.length + 1);
  return p;
}
