import { readFileSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { LifecycleServices } from '../onboarding/services';
import type Stripe from 'stripe';
import { createStripeClient, resolveStripeKey, type StripeConnection } from '../billing';
import { TenantRouter } from '../runtime/router';
import type { SecretResolver } from '../runtime/secret-resolver';
import { DEFAULT_SEATS_QUERY, RouterSeatCounter } from './seat-usage';
import { S3StorageMeasure } from './storage-usage';
import { USAGE_REPORT_JOB } from './usage-keys';
import { UsageReporter, type UsageReporterOptions, type UsageRunSummary } from './usage-reporter';

/**
 * The hourly usage report on the lifecycle queue: a BullMQ job scheduler (a repeatable job; one
 * per queue whichever worker upserts it; `tenancy worker` with TENANCY_USAGE_REPORT=hourly) adds a
 * `usage-report` job every hour at minute TENANCY_USAGE_REPORT_MINUTE (default 10, after the hour
 * closed); the worker that takes it runs UsageReporter (one run at a time per control plane: a
 * run that finds another running, a manual one say, is skipped).
 */
export { USAGE_REPORT_JOB };

export async function scheduleUsageReports(queue: Queue, minute = 10): Promise<void> {
  if (!Number.isInteger(minute) || minute < 0 || minute > 59) throw new Error(`usage report minute ${minute} must be 0-59`);
  await queue.upsertJobScheduler(USAGE_REPORT_JOB, { pattern: `0 ${minute} * * * *`, tz: 'UTC' }, {
    name: USAGE_REPORT_JOB,
    data: {},
    opts: { attempts: 1, removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } },
  });
}

export async function unscheduleUsageReports(queue: Queue): Promise<void> {
  await queue.removeJobScheduler(USAGE_REPORT_JOB);
}

/** The reporter's connections from the lifecycle's (the worker and the CLI). */
export function usagePartsOf(services: LifecycleServices): UsageReporterParts {
  return {
    pool: services.pool,
    redis: services.redis,
    secrets: { resolve: (ref) => services.databases.credentials(ref) },
    sslCaFile: services.config.sslCaFile,
    insecureNoTls: services.config.insecureNoTls,
  };
}

/** What a reporter is built from: the lifecycle's connections plus the environment. */
export interface UsageReporterParts {
  readonly pool: Pool;
  readonly redis: Redis;
  /** Resolves tenant database secrets (active seats). */
  readonly secrets: SecretResolver;
  readonly sslCaFile?: string;
  readonly insecureNoTls?: boolean;
}

export class UsageConfigError extends Error {}

/**
 * A UsageReporter configured by the environment, or undefined when no Stripe key is configured:
 *
 * - STRIPE_SECRET_KEY / STRIPE_SECRET_KEY_REF, TENANCY_STRIPE_API_URL (as billing);
 * - storage: TENANCY_USAGE_BUCKET (unset: storage is not reported), TENANCY_USAGE_PREFIX
 *   (default `tenants/{tenant_id}/`), the AWS SDK's usual settings (AWS_REGION, AWS_ENDPOINT_URL, …);
 * - seats: TENANCY_USAGE_SEATS_QUERY (default: COUNT of users with a login in the last 30 days),
 *   TENANCY_USAGE_SEATS=off to not report seats;
 * - TENANCY_USAGE_LOOKBACK_HOURS (default 168), TENANCY_USAGE_CLOSE_AFTER_SECONDS (default 300),
 *   TENANCY_USAGE_CONCURRENCY (meter events in flight, default 16), TENANCY_USAGE_BATCH (windows
 *   recorded reported per control-plane write, default 500).
 *
 * Returns the reporter and what to close after it.
 */
export async function usageReporterFromEnv(parts: UsageReporterParts, env: NodeJS.ProcessEnv, overrides: Partial<UsageReporterOptions> = {}): Promise<{ reporter: UsageReporter; close: () => Promise<void> } | undefined> {
  const resolved = await resolveStripeKey({ env });
  if (!resolved && !overrides.stripe) return undefined;
  const stripe: Stripe = overrides.stripe ?? createStripeClient(resolved!.key, stripeConnectionFromEnv(env));
  const closers: (() => Promise<void> | void)[] = [];

  let storage: S3StorageMeasure | undefined;
  if (env.TENANCY_USAGE_BUCKET) {
    const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    const client = new S3Client({ region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1', ...(endpoint ? { endpoint, forcePathStyle: true } : {}) });
    closers.push(() => client.destroy());
    storage = new S3StorageMeasure({ client, bucket: env.TENANCY_USAGE_BUCKET, prefix: env.TENANCY_USAGE_PREFIX || undefined });
  }

  let seats: RouterSeatCounter | undefined;
  if (env.TENANCY_USAGE_SEATS !== 'off') {
    const ca = parts.sslCaFile ? readFileSync(parts.sslCaFile, 'utf8') : undefined;
    const router = new TenantRouter({
      controlPlane: parts.pool,
      secrets: parts.secrets,
      connectionBudget: 8,
      maxConnectionsPerPool: 1,
      tenantCacheTtlMs: 0,
      // Reporting counts every billable tenant, whatever it may do right now (a suspended tenant still pays for its seats).
      allowedStatuses: ['active', 'suspended', 'past_due'],
      poolConfig: { ssl: parts.insecureNoTls ? false : { rejectUnauthorized: true, ...(ca ? { ca } : {}) }, idleTimeoutMillis: 5_000 },
    });
    closers.push(() => router.close());
    seats = new RouterSeatCounter(router, env.TENANCY_USAGE_SEATS_QUERY || DEFAULT_SEATS_QUERY);
  }

  const number = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^\d+$/.test(v)) throw new UsageConfigError(`${name} must be a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const closeAfter = number('TENANCY_USAGE_CLOSE_AFTER_SECONDS');
  const reporter = new UsageReporter({
    pool: parts.pool,
    redis: parts.redis,
    stripe,
    storage,
    seats,
    lookbackHours: number('TENANCY_USAGE_LOOKBACK_HOURS'),
    concurrency: number('TENANCY_USAGE_CONCURRENCY'),
    sendBatchSize: number('TENANCY_USAGE_BATCH'),
    closeAfterMs: closeAfter === undefined ? undefined : closeAfter * 1000,
    ...overrides,
  });
  return {
    reporter,
    close: async () => {
      for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
    },
  };
}

/** TENANCY_STRIPE_API_URL as the SDK's connection (the local server in tests and benchmarks). */
export function stripeConnectionFromEnv(env: NodeJS.ProcessEnv): StripeConnection | undefined {
  if (!env.TENANCY_STRIPE_API_URL) return undefined;
  const u = new URL(env.TENANCY_STRIPE_API_URL);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageConfigError('TENANCY_STRIPE_API_URL must be an http(s) URL');
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)), protocol: u.protocol === 'https:' ? 'https' : 'http' };
}

/** Runs one report with a reporter built from the environment; `undefined` when no Stripe key is configured. */
export async function runUsageReport(parts: UsageReporterParts, env: NodeJS.ProcessEnv): Promise<UsageRunSummary | { skipped: string }> {
  const built = await usageReporterFromEnv(parts, env);
  if (!built) return { skipped: 'no Stripe key configured' };
  try {
    return await built.reporter.run();
  } finally {
    await built.close();
  }
}
