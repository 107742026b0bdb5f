import type { PoolClient } from 'pg';
import { tenantNames } from '../naming';
import { BridgeFleetFullError } from '../registry/bridge-shards';
import { placeBridgeTenantIn } from './bridge-placement';
import type { LifecycleJob, LifecycleStore } from './lifecycle-store';
import { uniqueViolation } from './lifecycle-store';
import { bullJobId, redisOptionsFromUrl, type LifecycleQueue } from './queue';
import { OnboardingRequestError, RequestKeyConflictError, requestFingerprint, validateOnboardingRequest, type OnboardingRequest } from './request';
import type { LifecycleServices } from './services';

/**
 * Accepts an onboarding request (`tenancy onboard`), all or nothing:
 *
 * 1. validation against the registry and the control plane (request.ts); nothing is written
 *    unless the request is valid;
 * 2. the control-plane record (status `provisioning`), its domains and its onboarding job, in one
 *    transaction: the database's unique constraints settle concurrent requests for one slug or
 *    domain (a generated slug is generated again; a requested one is refused). This record is the
 *    source of truth: everything after it is derived from it and safe to repeat;
 * 3. the job on the queue (BullMQ job id `<kind>-<tenant id>`: adding it twice adds it once).
 *
 * The registry entry is not written here: the job's first step (`registry`) writes and commits it
 * under the tenant's lock, so submitting never touches git (a leftover `index.lock` fails that
 * step, which is retried, instead of stranding a recorded tenant).
 *
 * If the request dies between 2 and 3 (Redis unreachable, a kill), it is completed by submitting
 * the same request again, or by the next `tenancy worker` to start ({@link requeueRecordedJobs}).
 * "The same request" is the same request key; without a key, the same parameters
 * (requestFingerprint) as an unfinished onboarding whose tenant is still `provisioning`. A request
 * key with different parameters is a {@link RequestKeyConflictError}.
 */
export interface SubmittedOnboarding {
  readonly tenantId: string;
  readonly slug: string;
  readonly job: LifecycleJob;
  /** False when the request key (or, without one, the same parameters) named an earlier, recorded request. */
  readonly created: boolean;
  readonly queued: { id: string; state: string };
}

/**
 * A request recorded in the control plane whose job could not be put on the queue. Nothing is
 * lost: submitting the same request again, or starting a worker, queues it.
 */
export class NotQueuedError extends Error {
  constructor(readonly tenantId: string, readonly slug: string, readonly job: LifecycleJob, cause: unknown) {
    super(
      `tenant ${slug} (${tenantId}) is recorded with ${job.kind} job ${job.id}, but the job could not be queued: ${cause instanceof Error ? cause.message : String(cause)}. ` +
        'Submit the same request again, or start a worker (`tenancy worker` queues recorded jobs when it starts).',
      { cause },
    );
    this.name = 'NotQueuedError';
  }
}

const MAX_SLUG_ATTEMPTS = 5;

export async function submitOnboarding(services: LifecycleServices, queue: LifecycleQueue, input: OnboardingRequest, options: { requestedBy?: string } = {}): Promise<SubmittedOnboarding> {
  const { store } = services;
  const fingerprint = requestFingerprint(input);
  const sameRequest = (earlier: LifecycleJob): LifecycleJob => {
    if (earlier.request.requestFingerprint !== fingerprint) throw new RequestKeyConflictError(input.requestKey!, earlier.id);
    return earlier;
  };
  const earlierRequest = async (): Promise<LifecycleJob | undefined> =>
    input.requestKey ? (await store.jobByRequestKey(input.requestKey).then((j) => j && sameRequest(j))) : store.pendingOnboardingByFingerprint(fingerprint);
  const earlier = await earlierRequest();
  if (earlier) return resume(services, queue, earlier);
  for (let attempt = 1; ; attempt++) {
    const registry = await services.registry.load();
    const taken = await store.takenNames();
    let v;
    try {
      v = validateOnboardingRequest(input, registry, taken);
    } catch (e) {
      // The same request recorded meanwhile by a concurrent submission holds the slug: this is its retry.
      const concurrent = e instanceof OnboardingRequestError ? await earlierRequest() : undefined;
      if (concurrent) return resume(services, queue, concurrent);
      throw e;
    }
    let job: LifecycleJob;
    const request: Record<string, unknown> = { entry: v.entry, domains: v.domains, requestedBy: options.requestedBy ?? services.config.actor, requestFingerprint: fingerprint, ...(v.paymentMethod ? { paymentMethod: v.paymentMethod } : {}) };
    // A bridge shard is decided for good in the recording transaction, under the placement lock; the entry gets it.
    const placeIn = async (c: PoolClient) => {
      const shard = await placeBridgeTenantIn(c, registry, v.tenant);
      if (shard === undefined) return undefined;
      request.entry = { ...v.entry, placement: { bridgeShard: shard } };
      return { bridge_shard: shard };
    };
    try {
      job = await store.createOnboarding(v.tenant, v.domains, request, v.requestKey, placeIn);
    } catch (e) {
      if (e instanceof BridgeFleetFullError) throw new OnboardingRequestError([{ field: 'region', message: e.message }]);
      const constraint = uniqueViolation(e);
      if (!constraint) throw e;
      const concurrent = await earlierRequest();
      if (concurrent) return resume(services, queue, concurrent);
      // Another request took the slug or a domain between validation and insert.
      if (!input.slug && constraint.includes('slug') && attempt < MAX_SLUG_ATTEMPTS) continue;
      throw new OnboardingRequestError([{ field: constraint.includes('domain') ? 'domain' : 'slug', message: `taken by a concurrent request (${constraint}); submit again` }]);
    }
    const queued = await enqueueRecorded(queue, job, v.tenant.slug);
    return { tenantId: v.tenant.id, slug: v.tenant.slug, job, created: true, queued };
  }
}

async function resume(services: LifecycleServices, queue: LifecycleQueue, job: LifecycleJob): Promise<SubmittedOnboarding> {
  const tenant = await services.controlPlane.tenantById(job.tenantId);
  if (!tenant) throw new Error(`onboarding job ${job.id} has no tenant ${job.tenantId}`);
  tenantNames(tenant.slug);
  const queued = job.status === 'succeeded' ? { id: '', state: 'succeeded' } : await enqueueRecorded(queue, job, tenant.slug);
  return { tenantId: tenant.id, slug: tenant.slug, job, created: false, queued };
}

/** Puts a job recorded in the control plane on the queue; a {@link NotQueuedError} when the queue cannot be reached. */
export async function enqueueRecorded(queue: LifecycleQueue, job: LifecycleJob, slug: string): Promise<{ id: string; state: string }> {
  try {
    return await queue.enqueue(job);
  } catch (e) {
    throw new NotQueuedError(job.tenantId, slug, job, e);
  }
}

/**
 * Puts every job the control plane holds as unfinished (queued or running) and the queue does not
 * hold back on the queue: a submission that died between its record and its enqueue, or a queue
 * that lost its data, heals without a resubmission. `tenancy worker` runs it when it starts. Jobs
 * the queue holds in any state (waiting, delayed, active, failed) are left as they are.
 */
export async function requeueRecordedJobs(store: LifecycleStore, queue: LifecycleQueue): Promise<LifecycleJob[]> {
  const requeued: LifecycleJob[] = [];
  for (const job of await store.unfinishedJobs()) {
    if (await queue.queue.getJob(bullJobId(job.kind, job.tenantId))) continue;
    await queue.enqueue(job);
    requeued.push(job);
  }
  return requeued;
}

/**
 * Redis options for a submitting command's queue: with Redis unreachable, it gives up after a few
 * reconnection attempts (no offline queue) and the command fails with a {@link NotQueuedError},
 * instead of waiting for Redis for ever. A worker's connections keep retrying.
 */
export function submitterRedisOptions(url: string): ReturnType<typeof redisOptionsFromUrl> & { enableOfflineQueue: false; retryStrategy: (times: number) => number | null } {
  return { ...redisOptionsFromUrl(url), enableOfflineQueue: false, retryStrategy: (times: number) => (times > 3 ? null : 200 * times) };
}
