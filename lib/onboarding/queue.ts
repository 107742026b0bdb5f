import { Queue, QueueEvents, type ConnectionOptions, type Job } from 'bullmq';
import type { JobKind, LifecycleJob } from './lifecycle-store';

/**
 * The lifecycle queue: BullMQ on Redis (the README says why). One BullMQ job per lifecycle job,
 * named by its kind, with the id `<kind>-<tenant id>`: BullMQ ignores a second add of a live job,
 * so submitting twice enqueues once. The job carries ids only; everything else is read from the
 * control plane by the worker, so a job never holds stale or secret data.
 *
 * Retries: a failed attempt is retried with exponential backoff (attempts, backoff below); a job
 * whose tenant lock is held elsewhere is moved back to delayed without using an attempt; a job
 * whose worker died is put back by BullMQ's stalled-job check after its lock duration, however
 * many times that happens (worker.ts, MAX_STALLED_COUNT).
 */
export interface LifecycleJobData {
  readonly jobId: string;
  readonly tenantId: string;
  readonly kind: JobKind;
}

export const QUEUE_DEFAULTS = {
  name: 'tenancy-lifecycle',
  attempts: 8,
  backoffMs: 5_000,
  /** Delay before a job whose tenant is locked by another worker is tried again. */
  lockedRetryMs: 2_000,
} as const;

/** ioredis/BullMQ connection options from a redis:// or rediss:// URL (BullMQ workers need maxRetriesPerRequest null). */
export function redisOptionsFromUrl(url: string): { host: string; port: number; username?: string; password?: string; db?: number; tls?: object; maxRetriesPerRequest: null } {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error('the Redis URL must start with redis:// or rediss://');
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== undefined && Number.isInteger(db) ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

export const bullJobId = (kind: JobKind, tenantId: string) => `${kind}-${tenantId}`;

export class LifecycleQueue {
  readonly queue: Queue<LifecycleJobData>;
  private events?: QueueEvents;

  /**
   * A lost Redis connection (restart, failover, network) is reported to `options.onError` and
   * never thrown as an unhandled 'error' event: the connection reconnects by itself, and a call
   * made meanwhile waits or fails on its own.
   */
  constructor(
    private readonly connection: ConnectionOptions,
    readonly name: string = QUEUE_DEFAULTS.name,
    private readonly options: { attempts?: number; backoffMs?: number; onError?: (error: Error) => void } = {},
  ) {
    this.queue = new Queue<LifecycleJobData>(name, {
      connection,
      defaultJobOptions: {
        attempts: options.attempts ?? QUEUE_DEFAULTS.attempts,
        backoff: { type: 'exponential', delay: options.backoffMs ?? QUEUE_DEFAULTS.backoffMs },
        removeOnComplete: { count: 10_000 },
        removeOnFail: { count: 10_000 },
      },
    });
    this.queue.on('error', (error) => this.options.onError?.(error));
  }

  /**
   * Enqueues a lifecycle job, once: a waiting, delayed or active job of the same id is left as
   * is; one that failed every attempt is retried; one that completed is left alone (the worker
   * would find the lifecycle job succeeded anyway).
   */
  async enqueue(job: Pick<LifecycleJob, 'id' | 'tenantId' | 'kind'>): Promise<{ id: string; state: string }> {
    const id = bullJobId(job.kind, job.tenantId);
    const existing = await this.queue.getJob(id);
    if (existing) {
      const state = await existing.getState();
      if (state === 'failed') {
        await existing.retry('failed');
        return { id, state: 'retried' };
      }
      if (state !== 'unknown') return { id, state };
    }
    await this.queue.add(job.kind, { jobId: job.id, tenantId: job.tenantId, kind: job.kind }, { jobId: id });
    return { id, state: 'added' };
  }

  /** Waits until the BullMQ job finishes (completed: its return value; failed after every attempt: throws). */
  async waitFor(id: string, timeoutMs: number): Promise<unknown> {
    if (!this.events) {
      this.events = new QueueEvents(this.name, { connection: this.connection });
      this.events.on('error', (error) => this.options.onError?.(error));
      // Every waiter listens on the queue and its events (a submitter may wait for many jobs at once).
      this.events.setMaxListeners(0);
      this.queue.setMaxListeners(0);
    }
    await this.events.waitUntilReady();
    const job: Job<LifecycleJobData> | undefined = await this.queue.getJob(id);
    if (!job) throw new Error(`no queued job ${id}`);
    return job.waitUntilFinished(this.events, timeoutMs);
  }

  async close(): Promise<void> {
    await this.events?.close();
    await this.queue.close();
  }
}
