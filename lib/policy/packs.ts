import type { TerraformStack } from 'cdktf';
import { PolicyAspect, type PolicyOptions } from './policy-aspect';
import { PACK_NAMES, type PackName, type PolicyRule, type TenantProfile } from './policy-rule';
import { GdprErasureRule } from './rules/gdpr-erasure';
import { GdprPoolErasureRule } from './rules/gdpr-pool-erasure';
import { GdprResidencyRule } from './rules/gdpr-residency';
import { HipaaEgressRule } from './rules/hipaa-egress';
import { HipaaOwnKeyRule } from './rules/hipaa-own-key';
import { HipaaRetentionRule } from './rules/hipaa-retention';
import { HipaaSiloRule } from './rules/hipaa-silo';
import { DefaultDenyRule } from './rules/k8s-default-deny';
import { LimitRangeRule } from './rules/k8s-limit-range';
import { NamespaceReleaseRule } from './rules/k8s-namespace-release';
import { NarrowNetworkRule } from './rules/k8s-narrow-network';
import { PodSecurityRule } from './rules/k8s-pod-security';
import { NamespaceQuotaRule } from './rules/k8s-quota';
import { TenantRbacRule } from './rules/k8s-tenant-rbac';
import { NoPlaintextDbPasswordRule } from './rules/no-plaintext-db-password';
import { NoPublicDatabaseRule } from './rules/no-public-database';
import { NoSecretLiteralsRule } from './rules/no-secret-literals';
import { PciDedicatedNodesRule } from './rules/pci-dedicated-nodes';
import { PciEgressRule } from './rules/pci-egress';
import { PciOwnKeyRule } from './rules/pci-own-key';
import { PciRetentionRule } from './rules/pci-retention';
import { PciSiloRule } from './rules/pci-silo';
import { AccessLoggingRule } from './rules/soc2-access-logging';
import { BackupRetentionRule } from './rules/soc2-backup-retention';
import { DeletionProtectionRule } from './rules/soc2-deletion-protection';
import { EncryptionAtRestRule } from './rules/soc2-encryption-at-rest';
import { SslEnforcedRule } from './rules/soc2-ssl';
import { StaleSuppressionRule } from './rules/stale-suppression';
import { TenantLabelsRule } from './rules/tenant-labels';
import { TenantTagsRule } from './rules/tenant-tags';
import type { Suppression } from './suppressions';

/** A compliance pack: its rules, and in plain words what it covers and what it leaves to others. */
export interface PolicyPack {
  readonly name: PackName;
  readonly title: string;
  /** Who it applies to. */
  readonly appliesTo: string;
  readonly covers: readonly string[];
  readonly doesNotCover: readonly string[];
  readonly rules: readonly PolicyRule[];
}

export const PACKS: Readonly<Record<PackName, PolicyPack>> = {
  tenancy: {
    name: 'tenancy',
    title: 'Tenant isolation (Kubernetes multi-tenancy benchmark, platform baseline)',
    appliesTo: 'every stack',
    covers: [
      'the MTB profile-level-1 checks that configuration can prove: namespace per tenant, default-deny NetworkPolicies both ways with narrow exceptions, ResourceQuota over compute, storage and object counts (no LoadBalancer or NodePort services), LimitRange, Pod Security restricted, tenant RBAC without wildcards, platform-owned kinds or cluster-scoped resources',
      'attribution: tenant tags on every AWS resource, tenant labels on every Kubernetes object',
      'no public database, no database password or other secret value in the synthesized configuration',
    ],
    doesNotCover: [
      'what only the running cluster shows: that PSA is enabled, that the CNI enforces NetworkPolicy, drift of objects edited by hand (helm get manifest | kubectl diff)',
      'admission policies beyond PSA (image registries, pull policy) and runtime behaviour',
    ],
    rules: [
      TenantTagsRule, TenantLabelsRule, NoPlaintextDbPasswordRule, NoSecretLiteralsRule, NoPublicDatabaseRule,
      NamespaceReleaseRule, DefaultDenyRule, NarrowNetworkRule, NamespaceQuotaRule, LimitRangeRule, PodSecurityRule, TenantRbacRule,
      StaleSuppressionRule,
    ],
  },
  soc2: {
    name: 'soc2',
    title: 'SOC 2 Type II',
    appliesTo: 'every stack',
    covers: [
      'databases: deletion protection and a final snapshot, backups kept at least the plan\'s retention, encryption at rest with a rotated customer-managed key, SSL forced (and TLS from PgBouncer), connection logging exported and kept a year',
      'the evidence report adds the live side: the RLS audit of the pool, migration state and audit-log coverage from the control plane',
    ],
    doesNotCover: [
      'the organisational controls (access reviews, change management, incident response) and the operating effectiveness over the audit period, which auditors sample',
      'access logging in the application (who read which tenant row): the control-plane audit log records platform actions only',
    ],
    rules: [DeletionProtectionRule, BackupRetentionRule, EncryptionAtRestRule, SslEnforcedRule, AccessLoggingRule],
  },
  hipaa: {
    name: 'hipaa',
    title: 'HIPAA',
    appliesTo: 'tenants with compliance.hipaa',
    covers: [
      'PHI isolatable: the silo model only',
      'encryption at rest with the tenant\'s own rotated KMS key (database, master secret, Performance Insights, credentials)',
      'at least 30 days of backups and deletion protection',
      'egress of the namespace only to the database networks on PostgreSQL',
    ],
    doesNotCover: ['the BAA itself, workforce training, risk analysis, and PHI in application logs or third-party services'],
    rules: [HipaaSiloRule, HipaaOwnKeyRule, HipaaRetentionRule, HipaaEgressRule],
  },
  pci: {
    name: 'pci',
    title: 'PCI DSS',
    appliesTo: 'tenants with compliance.pci',
    covers: [
      'cardholder data never comingled: the silo model only, with the tenant\'s own rotated KMS key',
      'at least 30 days of backups and deletion protection',
      'dedicated nodes for every pod of the tenant (required node affinity and toleration)',
      'network segmentation: egress only to the database networks on PostgreSQL',
    ],
    doesNotCover: ['tokenisation, PAN handling in the application, vulnerability scans, penetration tests and the QSA assessment'],
    rules: [PciSiloRule, PciOwnKeyRule, PciRetentionRule, PciDedicatedNodesRule, PciEgressRule],
  },
  gdpr: {
    name: 'gdpr',
    title: 'GDPR',
    appliesTo: 'tenants with compliance.gdpr',
    covers: [
      'data residency declared and kept: every AWS provider, backup copy and replication target of the stack in the residency',
      'the erasure path of the tenant\'s model exists and reaches only the tenant (a warning for the pool, where erasure is a DELETE across tables)',
    ],
    doesNotCover: [
      'running an erasure (offboarding does), records of processing, consent and data-subject requests',
      'residency of the shared platform stack and of services outside this project (the platform stack of the tenant\'s region is in the same region)',
    ],
    rules: [GdprResidencyRule, GdprErasureRule, GdprPoolErasureRule],
  },
};

/** Every rule of every pack, in pack order. */
export const ALL_RULES: readonly PolicyRule[] = PACK_NAMES.flatMap((p) => PACKS[p].rules);

/** The packs that apply to a tenant: tenancy and soc2 always, hipaa, pci and gdpr by its compliance flags; a platform stack gets tenancy and soc2. */
export function packsFor(tenant?: Pick<TenantProfile, 'compliance'>): PackName[] {
  const packs: PackName[] = ['tenancy', 'soc2'];
  if (tenant?.compliance.hipaa) packs.push('hipaa');
  if (tenant?.compliance.pci) packs.push('pci');
  if (tenant?.compliance.gdpr) packs.push('gdpr');
  return packs;
}

/** The rules of some packs. */
export function rulesOf(packs: readonly PackName[]): PolicyRule[] {
  return PACK_NAMES.filter((p) => packs.includes(p)).flatMap((p) => PACKS[p].rules);
}

/** The pack a rule belongs to. */
export const packOf = (rule: PolicyRule): PackName => rule.pack ?? 'tenancy';

export interface ComplianceOptions extends Omit<PolicyOptions, 'tenant'> {
  /** The stack's tenant: its compliance flags choose the packs. Omit for a platform stack. */
  readonly tenant?: TenantProfile;
  /** Packs to apply instead of those the tenant's flags choose. */
  readonly packs?: readonly PackName[];
  readonly suppressions?: readonly Suppression[];
}

const packsByAspect = new WeakMap<PolicyAspect, readonly PackName[]>();

/**
 * Adds the compliance packs of a stack as an aspect (cdk-nag style): the packs the tenant's flags
 * choose (tenancy and soc2 for everyone), with the tenant's suppressions. Works on any stack, also
 * one built directly from constructs.
 */
export function applyCompliance(stack: TerraformStack, options: ComplianceOptions = {}): PolicyAspect {
  const packs = options.packs ?? packsFor(options.tenant);
  const aspect = PolicyAspect.applyTo(stack, rulesOf(packs), {
    tenant: options.tenant,
    scope: options.scope ?? (options.tenant ? 'tenant' : 'platform'),
    suppressions: options.suppressions,
  });
  packsByAspect.set(aspect, packs);
  return aspect;
}

/** The packs `applyCompliance` gave an aspect (those of its rules otherwise). */
export function packsOfAspect(aspect: PolicyAspect): readonly PackName[] {
  return packsByAspect.get(aspect) ?? PACK_NAMES.filter((p) => aspect.rules.some((r) => packOf(r) === p));
}

/** Rules every platform stack passes (the tenancy and soc2 packs). */
export const PLATFORM_RULES: readonly PolicyRule[] = rulesOf(['tenancy', 'soc2']);
/** Rules every tenant stack passes, whatever its compliance flags (the tenancy and soc2 packs). */
export const TENANT_RULES: readonly PolicyRule[] = PLATFORM_RULES;
