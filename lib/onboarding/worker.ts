import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DelayedError, Worker, type Job } from 'bullmq';
import { offboardingSteps, type OffboardingContext } from '../offboarding/steps';
import type { Registry } from '../registry/load-registry';
import { TenantSchema } from '../registry/tenant-schema';
import { runJob, type JobRunResult, type RunJobOptions } from './job-runner';
import type { LifecycleJob } from './lifecycle-store';
import { PROCESS_LOCK_ID } from './lock';
import { QUEUE_DEFAULTS, redisOptionsFromUrl, type LifecycleJobData } from './queue';
import type { TenantEntry } from './registry-source';
import type { LifecycleServices } from './services';
import { onboardingSteps, type OnboardingContext } from './steps';
import { USAGE_REPORT_JOB } from '../metering/usage-keys';

/**
 * The lifecycle worker: takes jobs from the queue and runs them (job-runner.ts) with the
 * onboarding or offboarding steps. `runLifecycleJob` runs one job directly, without the queue
 * (`tenancy worker --job <id>`; tests).
 */
export const workerName = () => `${hostname()}/${process.pid}/${PROCESS_LOCK_ID}`;

export type StepHooks = Pick<RunJobOptions<never>, 'beforeStep' | 'afterStep' | 'signal' | 'lockWaitMs' | 'willRetry'>;

export async function runLifecycleJob(services: LifecycleServices, jobId: string, hooks: StepHooks = {}): Promise<JobRunResult> {
  const job = await services.store.jobById(jobId);
  if (!job) throw new Error(`no lifecycle job ${jobId}`);
  const common = { jobId, store: services.store, lock: services.lock, worker: workerName(), ...hooks };
  if (job.kind === 'onboard') {
    return runJob<OnboardingContext>({ ...common, steps: onboardingSteps(), context: (j, results) => onboardingContext(services, j, results) });
  }
  return runJob<OffboardingContext>({ ...common, steps: offboardingSteps(), context: (j, results) => offboardingContext(services, j, results) });
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** A job's working directory, `<kind>-<slug>-<tenant id>`: a later tenant with the slug never finds this one's files. */
function workDirs(services: LifecycleServices, slug: string, tenantId: string, kind: string): { workDir: string; outdir: string } {
  const workDir = join(services.config.workDir, 'jobs', `${kind}-${slug}-${tenantId.toLowerCase()}`);
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  return { workDir, outdir: join(workDir, 'cdktf.out') };
}

async function onboardingContext(services: LifecycleServices, job: LifecycleJob, results: Map<string, Record<string, unknown>>): Promise<OnboardingContext> {
  const entry = job.request.entry as TenantEntry | undefined;
  if (!entry || entry.id !== job.tenantId) throw new Error(`onboarding job ${job.id} has no registry entry for tenant ${job.tenantId}`);
  const record = await services.controlPlane.tenantById(job.tenantId);
  if (record && (record.status === 'offboarding' || record.status === 'offboarded')) throw new Error(`tenant ${entry.slug} is ${record.status}; its onboarding stops here`);
  const registry = memo<Registry>(() => services.registry.load());
  return {
    job,
    results,
    services,
    entry,
    registry,
    tenant: memo(async () => {
      const tenant = (await registry()).tenants.find((t) => t.id === entry.id);
      if (!tenant || tenant.slug !== entry.slug) throw new Error(`tenant ${entry.slug} (${entry.id}) is not in the registry (${services.registry.describe()})`);
      return tenant;
    }),
    ...workDirs(services, entry.slug, entry.id, 'onboard'),
  };
}

async function offboardingContext(services: LifecycleServices, job: LifecycleJob, results: Map<string, Record<string, unknown>>): Promise<OffboardingContext> {
  const record = await services.controlPlane.tenantById(job.tenantId);
  if (!record) throw new Error(`no tenant ${job.tenantId} in the control plane`);
  // The registry's entry, or (a retry after the registry step archived it) the archived one.
  const active = await services.registry.get(record.slug);
  const entry = active && String(active.id).toLowerCase() === record.id ? active : await services.registry.archived(record.slug, record.id);
  if (!entry) {
    throw new Error(active
      ? `registry entry ${record.slug} has id ${String(active.id)}, the control plane ${record.id}`
      : `tenant ${record.slug} has no registry entry (${services.registry.describe()})`);
  }
  const tenant = TenantSchema.parse(entry);
  return { job, results, services, tenant, record, registry: memo(() => services.registry.load()), ...workDirs(services, record.slug, record.id, 'offboard') };
}

export interface LifecycleWorkerOptions {
  /** Jobs run at once by this process. @default 1 */
  readonly concurrency?: number;
  /** BullMQ lock of an active job (a dead worker's job is taken over after it). @default 30000 */
  readonly lockDurationMs?: number;
  readonly onResult?: (result: JobRunResult) => void;
  readonly hooks?: StepHooks;
  /** Runs a `usage-report` job (lib/metering/usage-job.ts, the hourly scheduler on this queue). @default such jobs fail: this worker does not report usage */
  readonly usageReport?: () => Promise<unknown>;
}

/**
 * How many times BullMQ may find a job's worker gone (its BullMQ lock expired: killed, or cut off
 * from Redis) and put the job back before it fails it: practically never. BullMQ's default, 1,
 * failed a job whose worker died twice ("job stalled more than allowable limit") although each
 * death left the job resumable at its recorded steps. A job fails only when its steps fail, after
 * its retry attempts (QUEUE_DEFAULTS.attempts); a worker that keeps dying on one job (a step that
 * exhausts its memory, say) shows in `tenancy status` as `stalled` with a growing attempt count.
 */
export const MAX_STALLED_COUNT = 1_000_000;

/**
 * A BullMQ worker on the lifecycle queue. A job that succeeded (or had already) completes; a
 * failed attempt throws (BullMQ retries it with backoff); a job whose tenant lock is held by
 * another worker, or that stopped between two steps because this worker is shutting down, goes
 * back to delayed without using an attempt.
 */
export function startLifecycleWorker(services: LifecycleServices, options: LifecycleWorkerOptions = {}): Worker<LifecycleJobData, JobRunResult> {
  const lockDuration = options.lockDurationMs ?? 30_000;
  return new Worker<LifecycleJobData, JobRunResult>(
    services.config.queueName,
    async (bull: Job<LifecycleJobData, JobRunResult>, token?: string) => {
      // The queue also carries the hourly usage report (no lifecycle job behind it).
      if (bull.name === USAGE_REPORT_JOB) {
        if (!options.usageReport) throw new Error('this worker does not report usage (no usage reporter configured)');
        return (await options.usageReport()) as JobRunResult;
      }
      // BullMQ retries a failed attempt while attempts are left: the job is then `queued`, not `failed`.
      const willRetry = bull.attemptsMade + 1 < (bull.opts.attempts ?? 1);
      const result = await runLifecycleJob(services, bull.data.jobId, { ...options.hooks, willRetry });
      options.onResult?.(result);
      if (result.outcome === 'locked' || result.outcome === 'interrupted') {
        await bull.moveToDelayed(Date.now() + (result.outcome === 'locked' ? QUEUE_DEFAULTS.lockedRetryMs : 0), token);
        throw new DelayedError();
      }
      if (result.outcome === 'failed') throw new Error(result.error ?? 'failed');
      return result;
    },
    {
      connection: redisOptionsFromUrl(services.config.redisUrl),
      concurrency: options.concurrency ?? 1,
      lockDuration,
      // How often workers look for jobs whose worker died (their BullMQ lock expired).
      stalledInterval: Math.min(30_000, lockDuration),
      maxStalledCount: MAX_STALLED_COUNT,
    },
  );
}
