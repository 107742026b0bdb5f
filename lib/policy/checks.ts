import type { IConstruct } from 'constructs';
import { BridgeTenant } from '../bridge-tenant';
import { PLAN_PROFILES, REGULATED_MIN_BACKUP_RETENTION_DAYS, parseQuantity } from '../plans';
import { PoolTenant } from '../pool-tenant';
import { SiloTenant } from '../silo-tenant';
import { TAG_KEYS } from '../tenant-tags';
import { at, isExpression, isPrivateCidr, parseCidr } from './inspect';
import type { CheckResult, PolicyContext } from './policy-rule';

/**
 * Checks shared by several rules (each rule file picks one and gives it an id, a pack and a
 * reference): a HIPAA and a PCI rule may require the same configuration for different reasons.
 */

type Json = Record<string, any>;

/** Terraform types of databases holding tenant data. */
export const DATABASE_TYPES = ['aws_db_instance', 'aws_rds_cluster'] as const;
export const isDatabase = (ctx: PolicyContext, node: IConstruct): boolean => (DATABASE_TYPES as readonly string[]).includes(ctx.typeOf(node) ?? '');

/** The smallest backup retention any plan has: the floor for shared clusters, which hold tenants of every plan. */
export const SHARED_MIN_BACKUP_RETENTION_DAYS = Math.min(...Object.values(PLAN_PROFILES).map((p) => p.silo.backupRetentionDays));
export { REGULATED_MIN_BACKUP_RETENTION_DAYS };

/** The tenant's plan: the registry entry, else the `tenancy:plan` tag of the stack's AWS provider. */
export function planOf(ctx: PolicyContext): string | undefined {
  if (ctx.tenant) return ctx.tenant.plan;
  for (const { config } of ctx.elements('aws')) {
    const tags = Object.assign({}, ...((config.default_tags ?? []) as Json[]).map((d) => d?.tags ?? {})) as Record<string, string>;
    if (tags[TAG_KEYS.plan]) return tags[TAG_KEYS.plan];
  }
  return undefined;
}

/** Backups kept at least `minDays` (a database's `backup_retention_period`). */
export function backupRetentionCheck(ctx: PolicyContext, node: IConstruct, minDays: (type: string) => number): CheckResult {
  if (!isDatabase(ctx, node)) return undefined;
  const type = ctx.typeOf(node)!;
  const c = ctx.config(node)!;
  const min = minDays(type);
  const days = c.backup_retention_period;
  if (typeof days !== 'number') return `backup_retention_period is not set; keep at least ${min} days`;
  return days >= min ? true : `backup_retention_period is ${days} days; keep at least ${min}`;
}

/** Deletion protection on, and a final snapshot on deletion. */
export function deletionProtectionCheck(ctx: PolicyContext, node: IConstruct): CheckResult {
  if (!isDatabase(ctx, node)) return undefined;
  const c = ctx.config(node)!;
  const problems: string[] = [];
  if (c.deletion_protection !== true) problems.push('deletion_protection must be true');
  if (c.skip_final_snapshot === true) problems.push('skip_final_snapshot must be false (a final snapshot is the last backup)');
  return problems.length ? problems : true;
}

/** Regulated (HIPAA, PCI) databases: at least 30 days of backups and deletion protection. */
export function regulatedRetentionCheck(ctx: PolicyContext, node: IConstruct): CheckResult {
  if (ctx.typeOf(node) !== 'aws_db_instance') return undefined;
  const c = ctx.config(node)!;
  const problems: string[] = [];
  if (typeof c.backup_retention_period !== 'number' || c.backup_retention_period < REGULATED_MIN_BACKUP_RETENTION_DAYS) {
    problems.push(`backup_retention_period is ${c.backup_retention_period ?? 'unset'}; regulated data keeps at least ${REGULATED_MIN_BACKUP_RETENTION_DAYS} days`);
  }
  if (c.deletion_protection !== true) problems.push('deletion_protection must be true');
  return problems.length ? problems : true;
}

/** The KMS key of this stack a reference points to, with its rotation. */
function ownKey(ctx: PolicyContext, ref: unknown): { address: string; rotated: boolean } | undefined {
  const key = ctx.referenced(ref, 'aws_kms_key');
  return key ? { address: key.address, rotated: key.config.enable_key_rotation === true } : undefined;
}

/**
 * Storage encrypted at rest with a customer-managed KMS key that rotates (a database's own or
 * the platform's): `storage_encrypted` and a `kms_key_id`; when the key is in the stack, its rotation.
 */
export function encryptionAtRestCheck(ctx: PolicyContext, node: IConstruct): CheckResult {
  if (!isDatabase(ctx, node)) return undefined;
  const c = ctx.config(node)!;
  const problems: string[] = [];
  if (c.storage_encrypted !== true) problems.push('storage_encrypted must be true');
  if (!c.kms_key_id) problems.push('kms_key_id is not set: the AWS-managed key cannot be scoped or audited per tenant');
  const key = ownKey(ctx, c.kms_key_id);
  if (key && !key.rotated) problems.push(`${key.address} does not rotate (enable_key_rotation)`);
  return problems.length ? problems : true;
}

/**
 * A silo database encrypted with the tenant's own key: a KMS key of the tenant's stack, rotated,
 * for storage, the master secret and Performance Insights; and every Secrets Manager secret of
 * the stack encrypted with a key of the stack too. Deleting the stack's key then makes every
 * copy unreadable (snapshots, retained backups), and a breach stays scoped to one tenant.
 */
export function tenantOwnKeyCheck(ctx: PolicyContext, node: IConstruct): CheckResult {
  const type = ctx.typeOf(node);
  if (type === 'aws_secretsmanager_secret') {
    const key = ownKey(ctx, ctx.config(node)!.kms_key_id);
    if (!key) return `secret is not encrypted with a KMS key of the tenant's stack (kms_key_id ${JSON.stringify(ctx.config(node)!.kms_key_id ?? null)})`;
    return key.rotated ? true : `${key.address} does not rotate (enable_key_rotation)`;
  }
  if (type !== 'aws_db_instance') return undefined;
  const c = ctx.config(node)!;
  const problems: string[] = [];
  if (c.storage_encrypted !== true) problems.push('storage_encrypted must be true');
  const key = ownKey(ctx, c.kms_key_id);
  if (!key) problems.push(`kms_key_id ${JSON.stringify(c.kms_key_id ?? null)} is not a KMS key of the tenant's own stack`);
  else if (!key.rotated) problems.push(`${key.address} does not rotate (enable_key_rotation)`);
  if (c.manage_master_user_password === true && (!c.master_user_secret_kms_key_id || ownKey(ctx, c.master_user_secret_kms_key_id)?.address !== key?.address)) {
    problems.push('the master user secret is not encrypted with the same key (master_user_secret_kms_key_id)');
  }
  if (c.performance_insights_enabled === true && ownKey(ctx, c.performance_insights_kms_key_id)?.address !== key?.address) {
    problems.push('Performance Insights is not encrypted with the same key (performance_insights_kms_key_id)');
  }
  return problems.length ? problems : true;
}

/** The parameter group (in this stack) a database uses, as name → value. */
export function databaseParameters(ctx: PolicyContext, node: IConstruct): { group?: string; parameters: Map<string, string> } {
  const type = ctx.typeOf(node);
  const c = ctx.config(node) ?? {};
  const [attr, groupType] = type === 'aws_rds_cluster' ? ['db_cluster_parameter_group_name', 'aws_rds_cluster_parameter_group'] : ['parameter_group_name', 'aws_db_parameter_group'];
  const ref = c[attr];
  const group = ctx.referenced(ref, groupType) ?? ctx.elements(groupType).find((g) => g.config.name === ref && typeof ref === 'string');
  const parameters = new Map<string, string>();
  for (const p of (group?.config.parameter ?? []) as Json[]) if (p && typeof p.name === 'string') parameters.set(p.name, String(p.value));
  return { group: group?.address, parameters };
}

/** Whether a string setting is on ("1", "on", "true"). */
export const isOn = (v: string | undefined): boolean => v !== undefined && ['1', 'on', 'true'].includes(v.toLowerCase());

/** The platform release's values, when `node` is the tenant-platform helm_release. */
export function platformValues(ctx: PolicyContext, node: IConstruct): Json | undefined {
  return ctx.releaseChart(node) === 'tenant-platform' ? ctx.releaseValues(node) : undefined;
}

/**
 * Egress of a regulated tenant's namespace: only its database, i.e. private (RFC 1918) networks
 * on the PostgreSQL port; no partner or internet destination. DNS is a separate policy to kube-dns.
 */
export function regulatedEgressCheck(ctx: PolicyContext, node: IConstruct, port = 5432): CheckResult {
  const values = platformValues(ctx, node);
  if (!values) return undefined;
  const egress = values.egress;
  if (!Array.isArray(egress)) return 'values.egress is not a list';
  const problems: string[] = [];
  for (const d of egress as Json[]) {
    const ports = Array.isArray(d?.ports) ? d.ports : [];
    if (!isPrivateCidr(d?.cidr)) problems.push(`egress to ${JSON.stringify(d?.cidr)} leaves the private database networks`);
    if (ports.length === 0 || ports.some((p: unknown) => p !== port)) problems.push(`egress to ${JSON.stringify(d?.cidr)} allows ports ${JSON.stringify(ports)}; only ${port} (PostgreSQL) is allowed`);
  }
  const dnsNamespace = at(values, 'dns', 'namespace');
  if (dnsNamespace !== undefined && dnsNamespace !== 'kube-system') problems.push(`DNS egress goes to namespace ${JSON.stringify(dnsNamespace)}, not kube-system`);
  return problems.length ? problems : true;
}

/** The smallest allowed prefix length of an egress CIDR: a /16 is a VPC; anything wider is "the internet" in practice. */
export const MIN_EGRESS_PREFIX = 16;

/** Egress destinations of a namespace: each a valid CIDR no wider than /16 with listed TCP ports. */
export function egressProblems(egress: unknown): string[] {
  if (!Array.isArray(egress)) return ['values.egress is not a list'];
  const problems: string[] = [];
  for (const d of egress as Json[]) {
    const cidr = parseCidr(d?.cidr);
    if (!cidr) problems.push(`egress destination ${JSON.stringify(d?.cidr)} is not an IPv4 CIDR`);
    else if (cidr.prefix < MIN_EGRESS_PREFIX) problems.push(`egress to ${d.cidr} opens /${cidr.prefix}, wider than /${MIN_EGRESS_PREFIX}: list the destinations`);
    const ports = d?.ports;
    if (!Array.isArray(ports) || ports.length === 0) problems.push(`egress to ${JSON.stringify(d?.cidr)} lists no ports: every port would be open`);
    else if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) problems.push(`egress to ${JSON.stringify(d?.cidr)} has ports outside 1-65535`);
  }
  return problems;
}

/** Quota keys that must be in a tenant namespace's ResourceQuota: compute, storage and object counts. */
export const REQUIRED_QUOTA_KEYS = [
  'requests.cpu', 'limits.cpu', 'requests.memory', 'limits.memory', 'requests.storage',
  'pods', 'services', 'persistentvolumeclaims', 'configmaps', 'secrets', 'services.loadbalancers', 'services.nodeports',
] as const;

/** A quota's problems: missing keys, LoadBalancer and NodePort services allowed, above the plan ceiling. */
export function quotaProblems(hard: unknown, plan: string | undefined): string[] {
  if (typeof hard !== 'object' || hard === null || Array.isArray(hard)) return ['values.quota.hard is missing: the namespace would have no ResourceQuota'];
  const q = hard as Record<string, unknown>;
  const problems: string[] = [];
  const missing = REQUIRED_QUOTA_KEYS.filter((k) => q[k] === undefined || q[k] === null || q[k] === '');
  if (missing.length) problems.push(`the quota does not cover ${missing.join(', ')}`);
  for (const k of ['services.loadbalancers', 'services.nodeports']) {
    if (q[k] !== undefined && String(q[k]) !== '0') problems.push(`${k} is ${JSON.stringify(q[k])}; tenants get no LoadBalancer or NodePort services (0)`);
  }
  const ceiling = plan ? PLAN_PROFILES[plan as keyof typeof PLAN_PROFILES]?.quotaCeiling : undefined;
  if (ceiling) {
    const over = (key: string, value: unknown, max: string) => {
      try {
        if (value !== undefined && parseQuantity(String(value)) > parseQuantity(max)) problems.push(`${key} ${value} exceeds the ${plan} plan ceiling of ${max}`);
      } catch {
        problems.push(`${key} ${JSON.stringify(value)} is not a Kubernetes quantity`);
      }
    };
    for (const k of ['requests.cpu', 'limits.cpu']) over(k, q[k], ceiling.cpu);
    for (const k of ['requests.memory', 'limits.memory']) over(k, q[k], ceiling.memory);
    over('requests.storage', q['requests.storage'], ceiling.storage);
    over('pods', q.pods, String(ceiling.pods));
  }
  return problems;
}

/** Required node affinity to one node label value, and a NoSchedule toleration: pods only on dedicated nodes. */
export function dedicatedPlacementProblems(affinity: unknown, tolerations: unknown, what: string): string[] {
  const problems: string[] = [];
  const terms = at(affinity, 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution', 'nodeSelectorTerms');
  const pinned = Array.isArray(terms) && terms.length > 0 && (terms as Json[]).every((t) =>
    Array.isArray(t?.matchExpressions) && (t.matchExpressions as Json[]).some((e) => e?.operator === 'In' && Array.isArray(e.values) && e.values.length > 0));
  if (!pinned) problems.push(`${what}: no required node affinity to the dedicated nodes`);
  const tolerated = Array.isArray(tolerations) && (tolerations as Json[]).some((t) => t?.effect === 'NoSchedule' && typeof t.key === 'string' && t.key !== '' && t.operator !== 'Exists');
  if (!tolerated) problems.push(`${what}: no toleration of the dedicated nodes' NoSchedule taint`);
  return problems;
}

/** Whether a value is a literal (typed into the configuration) rather than an apply-time expression or a template. */
export const isLiteral = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && !isExpression(v) && !v.includes('{{');

/** The constructs that place a tenant's data: SiloTenant, BridgeTenant or PoolTenant. */
export function tenancyConstructs(ctx: PolicyContext): (SiloTenant | BridgeTenant | PoolTenant)[] {
  return ctx.stack.node.findAll().filter((n): n is SiloTenant | BridgeTenant | PoolTenant => n instanceof SiloTenant || n instanceof BridgeTenant || n instanceof PoolTenant);
}

/**
 * Regulated data lives in a dedicated database: no part of the tenant on the shared bridge or
 * pool clusters (found at the construct that puts it there), and an RDS instance of its own in
 * the stack (checked at the stack).
 */
export function siloModelCheck(ctx: PolicyContext, node: IConstruct, regime: string): CheckResult {
  if (node instanceof PoolTenant || node instanceof BridgeTenant) {
    const model = node instanceof PoolTenant ? 'pool (rows in shared tables)' : 'bridge (a schema on a shared cluster)';
    return `the tenant's data is placed on the ${model}; ${regime} tenants use the silo model (a dedicated database)`;
  }
  if (node !== ctx.stack || ctx.scope !== 'tenant') return undefined;
  return ctx.elements('aws_db_instance').length > 0 ? true : `no dedicated database (aws_db_instance) in the stack; ${regime} tenants use the silo model`;
}
