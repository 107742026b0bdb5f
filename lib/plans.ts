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

export interface PlanProfile {
  readonly plan: Plan;
  /** Isolation models a tenant on this plan may use. */
  readonly models: readonly TenancyModel[];
  readonly silo: SiloDatabaseProfile;
  readonly quotaCeiling: QuotaCeiling;
  readonly replicas: number;
}

/**
 * Every plan-dependent default lives here, so that changing what "pro" means is one edit.
 * Instance classes below db.t3.medium do not support Performance Insights.
 */
export const PLAN_PROFILES: Readonly<Record<Plan, PlanProfile>> = {
  free: {
    plan: 'free',
    models: ['pool'],
    silo: { instanceClass: 'db.t3.micro', allocatedStorageGb: 20, maxAllocatedStorageGb: 50, backupRetentionDays: 7, multiAz: false, performanceInsightsRetentionDays: 0 },
    quotaCeiling: { cpu: '1', memory: '2Gi', storage: '5Gi', pods: 10 },
    replicas: 1,
  },
  starter: {
    plan: 'starter',
    models: ['pool', 'bridge', 'silo'],
    silo: { instanceClass: 'db.t3.micro', allocatedStorageGb: 20, maxAllocatedStorageGb: 100, backupRetentionDays: 7, multiAz: false, performanceInsightsRetentionDays: 0 },
    quotaCeiling: { cpu: '4', memory: '8Gi', storage: '50Gi', pods: 30 },
    replicas: 2,
  },
  pro: {
    plan: 'pro',
    models: ['pool', 'bridge', 'silo'],
    silo: { instanceClass: 'db.t3.medium', allocatedStorageGb: 50, maxAllocatedStorageGb: 500, backupRetentionDays: 14, multiAz: false, performanceInsightsRetentionDays: 7 },
    quotaCeiling: { cpu: '16', memory: '32Gi', storage: '200Gi', pods: 100 },
    replicas: 3,
  },
  enterprise: {
    plan: 'enterprise',
    models: ['pool', 'bridge', 'silo'],
    silo: { instanceClass: 'db.m6g.large', allocatedStorageGb: 100, maxAllocatedStorageGb: 2000, backupRetentionDays: 35, multiAz: true, performanceInsightsRetentionDays: 731 },
    quotaCeiling: { cpu: '64', memory: '128Gi', storage: '1Ti', pods: 500 },
    replicas: 4,
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
