import type { PoolClient } from 'pg';
import type { LifecycleJob, LifecycleStore } from './lifecycle-store';
import { LockLostError, type RedisLock } from './lock';

/**
 * Runs a lifecycle job (onboarding or offboarding) as a list of steps, resumably:
 *
 * - a job that already succeeded returns at once (`already-succeeded`), before any lock is taken;
 * - otherwise the tenant's Redis lock (`tenancy:lock:tenant:<id>`, see lock.ts) is taken for the
 *   whole job; a job whose lock is held elsewhere returns `locked` without doing anything (the
 *   queue retries it later);
 * - steps recorded as completed in the control plane are skipped; each other step runs, then is
 *   recorded (with its result, and with anything the step must commit together with it) and
 *   audited; the lock is checked before every step;
 * - while the attempt runs, its lease in the control plane (lifecycle_jobs.lease_expires_at) is
 *   extended with every lock renewal: a job whose worker died shows `stalled` in `tenancy status`
 *   once the lease lapsed (one lock ttl), never `running`;
 * - a stop signal (the worker's SIGTERM) ends the attempt between two steps: the running step is
 *   finished and recorded, then the job goes back to `queued` (outcome `interrupted`) and the lock
 *   is released; the next attempt resumes at the following step;
 * - a failing step ends the attempt: the job is marked `failed` with the error, and the next
 *   attempt resumes at that step. Every step must therefore be idempotent: a worker can die after
 *   a step's effect and before its record (test/onboarding/fault-injection.test.ts kills a real
 *   worker process there, through the test's own preload, test/support/fault-exit-preload.js).
 */
export interface Step<C> {
  readonly name: string;
  /** Whether the step applies to this job (e.g. per model or plan). @default always */
  readonly when?: (ctx: C) => boolean;
  /** Does the work (idempotently); returns a small JSON result that is recorded. */
  run(ctx: C): Promise<Record<string, unknown>>;
  /** Writes that commit in the same transaction as the step's record (status changes, outbox events). */
  readonly commitWith?: (ctx: C, client: PoolClient, result: Record<string, unknown>) => Promise<void>;
}

export interface StepContextBase {
  readonly job: LifecycleJob;
  /** Results of the steps completed so far (in earlier attempts too). */
  readonly results: Map<string, Record<string, unknown>>;
}

export type JobOutcome = 'succeeded' | 'already-succeeded' | 'locked' | 'interrupted' | 'failed';

export interface JobRunResult {
  readonly jobId: string;
  readonly tenantId: string;
  readonly kind: LifecycleJob['kind'];
  readonly outcome: JobOutcome;
  /** Steps run in this attempt. */
  readonly ran: readonly string[];
  /** Steps skipped because an earlier attempt completed them. */
  readonly resumed: readonly string[];
  readonly error?: string;
}

export interface RunJobOptions<C extends StepContextBase> {
  readonly jobId: string;
  readonly store: LifecycleStore;
  readonly lock: RedisLock;
  readonly steps: readonly Step<C>[];
  /** Builds the steps' context once the lock is held. */
  readonly context: (job: LifecycleJob, results: Map<string, Record<string, unknown>>) => Promise<C>;
  /** Who runs it (host/pid/process id), for the audit log and the job's lease. */
  readonly worker: string;
  /** Aborted: stop before the next step (the worker is shutting down). */
  readonly signal?: AbortSignal;
  /**
   * The queue retries this attempt if it fails (attempts left): a failed attempt then leaves the job
   * `queued` with its error as `last_error` (audited `<kind>.attempt-failed`), not `failed`, so
   * `tenancy status` does not report as failed a job that is about to be retried.
   * @default false (a manual run: a failed attempt fails the job)
   */
  readonly willRetry?: boolean;
  /** How long to wait for the tenant's lock when another holder has it (e.g. a crashed worker's, until its ttl expires). @default 0 */
  readonly lockWaitMs?: number;
  /** Called around each step (progress; tests use it to pause a worker at a step). */
  readonly beforeStep?: (step: string, job: LifecycleJob) => Promise<void> | void;
  readonly afterStep?: (step: string, result: Record<string, unknown>, job: LifecycleJob) => void;
}

export async function runJob<C extends StepContextBase>(options: RunJobOptions<C>): Promise<JobRunResult> {
  const { store, lock } = options;
  const initial = await store.jobById(options.jobId);
  if (!initial) throw new Error(`no lifecycle job ${options.jobId}`);
  const base = { jobId: initial.id, tenantId: initial.tenantId, kind: initial.kind };
  if (initial.status === 'succeeded') return { ...base, outcome: 'already-succeeded', ran: [], resumed: [] };

  if (options.signal?.aborted) return { ...base, outcome: 'interrupted', ran: [], resumed: [] };
  const name = `tenant:${initial.tenantId}`;
  const handle = options.lockWaitMs
    ? await lock.acquire(name, { waitMs: options.lockWaitMs }).catch(() => undefined)
    : await lock.tryAcquire(name);
  if (!handle) return { ...base, outcome: 'locked', ran: [], resumed: [] };

  const ran: string[] = [];
  const resumed: string[] = [];
  let lease: NodeJS.Timeout | undefined;
  try {
    // Re-read under the lock: another worker may have finished it meanwhile.
    const job = (await store.jobById(options.jobId))!;
    if (job.status === 'succeeded') return { ...base, outcome: 'already-succeeded', ran, resumed };
    await store.startAttempt(job, options.worker, lock.ttlMs);
    // The lease follows the lock: extended as often, for as long. A failed extension (the control
    // plane unreachable a moment) only lets the lease lapse early: `status` then says stalled.
    lease = setInterval(() => {
      store.renewLease(job.id, options.worker, lock.ttlMs).catch(() => undefined);
    }, lock.renewalMs);
    lease.unref();
    const records = await store.steps(job.id);
    const results = new Map(records.map((r) => [r.step, r.result]));
    try {
      const ctx = await options.context(job, results);
      for (const [position, step] of options.steps.entries()) {
        if (results.has(step.name)) {
          resumed.push(step.name);
          continue;
        }
        if (step.when && !step.when(ctx)) continue;
        if (options.signal?.aborted) {
          clearInterval(lease);
          await store.interrupt(job, `worker ${options.worker} stopping (${String(options.signal.reason ?? 'stop')}); resumes at ${step.name}`);
          return { ...base, outcome: 'interrupted', ran, resumed };
        }
        await handle.assertHeld();
        await options.beforeStep?.(step.name, job);
        const startedAt = new Date();
        const result = await step.run(ctx);
        await store.recordStep(job, step.name, position, result, startedAt, step.commitWith ? (c) => step.commitWith!(ctx, c, result) : undefined);
        results.set(step.name, result);
        ran.push(step.name);
        options.afterStep?.(step.name, result, job);
      }
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      // A worker that lost its lock must not write the job's state: the new holder owns it.
      if (e instanceof LockLostError) await store.audit(`${job.kind}.lock-lost`, job.tenantId, { job: job.id, worker: options.worker }).catch(() => undefined);
      else if (options.willRetry) await store.retryLater(job, error).catch(() => undefined);
      else await store.finish(job, 'failed', error).catch(() => undefined);
      return { ...base, outcome: 'failed', ran, resumed, error };
    }
    await store.finish(job, 'succeeded');
    return { ...base, outcome: 'succeeded', ran, resumed };
  } finally {
    clearInterval(lease);
    await handle.release().catch(() => undefined);
  }
}
