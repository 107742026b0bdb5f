import type { Requirement } from './policy-rule';

/**
 * The domain reference the rules implement: `docs/reference/multi-tenant-saas-reference.md` (a copy
 * of the project's domain reference, kept in the repository so links and tests work anywhere).
 * Rules link to its sections by heading and anchor (GitHub's slug of the heading), which stay
 * stable as long as the headings do; a test checks every anchor against it.
 */
export const REFERENCE_FILE = 'multi-tenant-saas-reference.md';
/** The reference from the repository root (for links in README and the reports written under it). */
export const REFERENCE_PATH_FROM_REPO = `docs/reference/${REFERENCE_FILE}`;

const section = (heading: string): Requirement => ({ section: heading, anchor: headingAnchor(heading) });

/** The sections rules link to. */
export const REFERENCE = {
  soc2: section('SOC 2 Type II'),
  hipaa: section('HIPAA'),
  gdpr: section('GDPR'),
  pci: section('PCI DSS'),
  compliance: section('Compliance and Data Isolation'),
  whenSilo: section('When to Use Silo'),
  silo: section('Silo Model: Database per Tenant'),
  provisioning: section('Database / Schema Provisioning'),
  namespaces: section('Kubernetes Namespace-per-Tenant Isolation'),
  networkPolicy: section('NetworkPolicy: Block Cross-Namespace Traffic'),
  quota: section('ResourceQuota and LimitRange'),
  rbac: section('Tenant-Scoped RBAC'),
  helm: section('Helm Chart: One Chart, Values per Tenant'),
} as const;

/** GitHub's anchor for a Markdown heading: lowercase, punctuation dropped, each space a hyphen. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** A link to a requirement: `referencePath` (the reference file, by default its bare name) and the anchor. */
export function requirementHref(requirement: Requirement, referencePath: string = REFERENCE_FILE): string {
  return `${referencePath}#${requirement.anchor}`;
}
