import type { Plan, TenancyModel } from './registry/tenant-schema';

/** How a silo tenant's RDS instance is sized and protected on a plan. */
export interface SiloDatabaseProfile {
  readonly instanceClass: string;
  readonly allocatedStorageGb: number;
  readonly maxAllocatedStorageGb: number;
  readonly backupRetentionDays: number;
  readonly multiAz: boolean;
  /** 0 turns Performance Insights off (the smallest classes do not support it). */
  readonly performanceInsightsRetentionDays: 0 | 7 | 731;
}

/** Upper bounds a tenant's quota overrides must stay within. */
export interface QuotaCeiling {
  readonly cpu: string;
  readonly memory: string;
  readonly storage: string;
  readonly pods: number;
}

/** How a silo tenant's PgBouncer pool is sized on a plan (transaction pooling). */
export interface PgbouncerProfile {
  /** PgBouncer pods in front of the database. */
  readonly replicas: number;
  /** Server connections per database/user pair, per PgBouncer pod. */
  readonly defaultPoolSize: number;
  /** Extra server connections allowed when clients wait too long. */
  readonly reservePoolSize: number;
  /** Client connections one PgBouncer pod accepts. */
  readonly maxClientConn: number;
}

/** A tenant namespace's ResourceQuota on a plan: compute, storage and object counts. */
export interface NamespaceQuota {
  /** Sum of CPU requests and of CPU limits. */
  readonly cpu: string;
  /** Sum of memory requests and of memory limits. */
  readonly memory: string;
  /** Sum of persistent volume claim requests. */
  readonly storage: string;
  readonly pods: number;
  readonly services: number;
  readonly persistentVolumeClaims: number;
  readonly configMaps: number;
  readonly secrets: number;
}

/** Per-container defaults and maximum of a tenant namespace's LimitRange. */
export interface ContainerLimits {
  readonly defaultRequest: { readonly cpu: string; readonly memory: string };
  readonly defaultLimit: { readonly cpu: string; readonly memory: string };
  readonly max: { readonly cpu: string; readonly memory: string };
}

/**
 * Limits of a tenant's own database login role (bridge and silo: `tenant_<slug>_app`), set on the
 * role by provisioning (ALTER ROLE … CONNECTION LIMIT / SET) and re-applied on every run, so a plan
 * change takes effect at the next post-apply. They keep one bridge tenant from taking every
 * connection slot of the shared cluster (max_connections is shared by all its tenants) or holding
 * locks and snapshots for ever.
 */
export interface DatabaseRoleLimits {
  /** Concurrent sessions of the role (PgBouncer's server connections count here). */
  readonly connectionLimit: number;
  /** Longest statement, in ms (`statement_timeout`). */
  readonly statementTimeoutMs: number;
  /** Longest wait for a lock, in ms (`lock_timeout`): a tenant never queues behind a DDL for long. */
  readonly lockTimeoutMs: number;
  /** A session idle inside a transaction is ended after this many ms (it holds locks and the xmin horizon). */
  readonly idleInTransactionSessionTimeoutMs: number;
}

export interface PlanProfile {
  readonly plan: Plan;
  /** Isolation models a tenant on this plan may use. */
  readonly models: readonly TenancyModel[];
  readonly silo: SiloDatabaseProfile;
  readonly pgbouncer: PgbouncerProfile;
  /** Namespace quota when the tenant sets no override. */
  readonly quota: NamespaceQuota;
  readonly quotaCeiling: QuotaCeiling;
  readonly containerLimits: ContainerLimits;
  /** Replicas of the tenant workload. */
  readonly replicas: number;
  /** Limits of the tenant's database login role (bridge, silo). */
  readonly databaseRole: DatabaseRoleLimits;
}

/**
 * Every plan-dependent default lives here, so that changing what "pro" means is one edit.
 * Instance classes below db.t3.medium do not support Performance Insights.
 * `databaseRole.connectionLimit` is PgBouncer's share (replicas × (defaultPoolSize +
 * reservePoolSize)) plus headroom for the workload's own direct connections; a bridge cluster's
 * max_connections must exceed the sum over its tenants plus the platform's reserve.
 */
export const PLAN_PROFILES: Readonly<Record<Plan, PlanProfile>> = {
  free: {
    plan: 'free',
    models: ['pool'],
    silo: { instanceClass: 'db.t3.micro', allocatedStorageGb: 20, maxAllocatedStorageGb: 50, backupRetentionDays: 7, multiAz: false, performanceInsightsRetentionDays: 0 },
    pgbouncer: { replicas: 1, defaultPoolSize: 5, reservePoolSize: 0, maxClientConn: 100 },
    quota: { cpu: '1', memory: '2Gi', storage: '5Gi', pods: 10, services: 5, persistentVolumeClaims: 2, configMaps: 10, secrets: 10 },
    quotaCeiling: { cpu: '1', memory: '2Gi', storage: '5Gi', pods: 10 },
    containerLimits: { defaultRequest: { cpu: '50m', memory: '64Mi' }, defaultLimit: { cpu: '250m', memory: '256Mi' }, max: { cpu: '500m', memory: '1Gi' } },
    replicas: 1,
    databaseRole: { connectionLimit: 10, statementTimeoutMs: 15_000, lockTimeoutMs: 5_000, idleInTransactionSessionTimeoutMs: 30_000 },
  },
  starter: {
    plan: 'starter',
    models: ['pool', 'bridge', 'silo'],
    silo: { instanceClass: 'db.t3.micro', allocatedStorageGb: 20, maxAllocatedStorageGb: 100, backupRetentionDays: 7, multiAz: false, performanceInsightsRetentionDays: 0 },
    pgbouncer: { replicas: 2, defaultPoolSize: 10, reservePoolSize: 2, maxClientConn: 200 },
    quota: { cpu: '2', memory: '4Gi', storage: '20Gi', pods: 20, services: 10, persistentVolumeClaims: 5, configMaps: 20, secrets: 20 },
    quotaCeiling: { cpu: '4', memory: '8Gi', storage: '50Gi', pods: 30 },
    containerLimits: { defaultRequest: { cpu: '100m', memory: '128Mi' }, defaultLimit: { cpu: '500m', memory: '512Mi' }, max: { cpu: '1', memory: '2Gi' } },
    replicas: 2,
    databaseRole: { connectionLimit: 30, statementTimeoutMs: 30_000, lockTimeoutMs: 5_000, idleInTransactionSessionTimeoutMs: 60_000 },
  },
  pro: {
    plan: 'pro',
    models: ['pool', 'bridge', 'silo'],
    silo: { instanceClass: 'db.t3.medium', allocatedStorageGb: 50, maxAllocatedStorageGb: 500, backupRetentionDays: 14, multiAz: false, performanceInsightsRetentionDays: 7 },
    pgbouncer: { replicas: 2, defaultPoolSize: 20, reservePoolSize: 5, maxClientConn: 1000 },
    quota: { cpu: '8', memory: '16Gi', storage: '100Gi', pods: 50, services: 20, persistentVolumeClaims: 10, configMaps: 50, secrets: 50 },
    quotaCeiling: { cpu: '16', memory: '32Gi', storage: '200Gi', pods: 100 },
    containerLimits: { defaultRequest: { cpu: '100m', memory: '128Mi' }, defaultLimit: { cpu: '1', memory: '1Gi' }, max: { cpu: '4', memory: '8Gi' } },
    replicas: 3,
    databaseRole: { connectionLimit: 60, statementTimeoutMs: 60_000, lockTimeoutMs: 10_000, idleInTransactionSessionTimeoutMs: 120_000 },
  },
  enterprise: {
    plan: 'enterprise',
    models: ['pool', 'bridge', 'silo'],
    silo: { instanceClass: 'db.m6g.large', allocatedStorageGb: 100, maxAllocatedStorageGb: 2000, backupRetentionDays: 35, multiAz: true, performanceInsightsRetentionDays: 731 },
    pgbouncer: { replicas: 3, defaultPoolSize: 40, reservePoolSize: 10, maxClientConn: 5000 },
    quota: { cpu: '32', memory: '64Gi', storage: '500Gi', pods: 200, services: 50, persistentVolumeClaims: 50, configMaps: 200, secrets: 200 },
    quotaCeiling: { cpu: '64', memory: '128Gi', storage: '1Ti', pods: 500 },
    containerLimits: { defaultRequest: { cpu: '250m', memory: '256Mi' }, defaultLimit: { cpu: '2', memory: '2Gi' }, max: { cpu: '8', memory: '32Gi' } },
    replicas: 4,
    databaseRole: { connectionLimit: 160, statementTimeoutMs: 300_000, lockTimeoutMs: 30_000, idleInTransactionSessionTimeoutMs: 300_000 },
  },
};

/** Regulated data (HIPAA, PCI) keeps at least this many days of backups, whatever the plan. */
export const REGULATED_MIN_BACKUP_RETENTION_DAYS = 30;

/** Instance classes that cannot run Performance Insights. */
export const CLASSES_WITHOUT_PERFORMANCE_INSIGHTS: ReadonlySet<string> = new Set([
  'db.t2.micro', 'db.t2.small', 'db.t3.micro', 'db.t3.small', 'db.t4g.micro', 'db.t4g.small',
]);

const UNITS: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
};

/** Parses a Kubernetes quantity ("500m", "16Gi") into a number, for ceiling comparisons. */
export function parseQuantity(quantity: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(quantity);
  if (!match) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(quantity)}`);
  return Number(match[1]) * UNITS[match[2] ?? ''];
}
