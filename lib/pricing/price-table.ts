/**
 * Monthly list prices (USD, 730 hours, us-east-1 on-demand, single-AZ) used for estimates.
 * The db.t3 figures are the domain reference's RDS table (10 × t3.micro ≈ $150, 50 × t3.small
 * ≈ $1,250, 100 × t3.medium ≈ $4,800); the others follow AWS's public price list as of 2025.
 * Estimates, not quotes: regions differ by up to ~25%, and I/O, backups beyond the free
 * allowance and data transfer are not counted.
 */
export const PRICES = {
  /** RDS PostgreSQL instance, per month. Multi-AZ doubles it. */
  rdsInstance: {
    'db.t3.micro': 15,
    'db.t3.small': 25,
    'db.t3.medium': 48,
    'db.t3.large': 105,
    'db.t4g.medium': 47,
    'db.m6g.large': 123,
    'db.m6g.xlarge': 245,
    'db.r6g.large': 164,
    'db.r6g.xlarge': 329,
  } as Record<string, number>,
  /** Aurora PostgreSQL instance, per month. */
  auroraInstance: {
    'db.t4g.medium': 53,
    'db.r6g.large': 190,
    'db.r6g.xlarge': 379,
  } as Record<string, number>,
  /** gp3 storage per GiB-month (multi-AZ doubles it). */
  gp3PerGb: 0.115,
  /** Aurora storage per GiB-month; a shared cluster is assumed to hold 100 GiB. */
  auroraStoragePerGb: 0.1,
  auroraAssumedStorageGb: 100,
  /** Customer-managed KMS key per month. */
  kmsKey: 1,
  /** Secrets Manager secret per month. */
  secret: 0.4,
  /** Performance Insights beyond the 7-day free tier, per vCPU-month (long-term retention). */
  performanceInsightsLongTermPerVcpu: 7.3,
  /** vCPUs of the classes above, for Performance Insights. */
  vcpus: { 'db.t3.medium': 2, 'db.m6g.large': 2, 'db.m6g.xlarge': 4, 'db.r6g.large': 2, 'db.r6g.xlarge': 4 } as Record<string, number>,
} as const;
