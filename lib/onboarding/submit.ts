import { tenantNames } from '../naming';
import type { LifecycleJob } from './lifecycle-store';
import { uniqueViolation } from './lifecycle-store';
import type { LifecycleQueue } from './queue';
import { OnboardingRequestError, RequestKeyConflictError, requestFingerprint, validateOnboardingRequest, type OnboardingRequest } from './request';
import type { LifecycleServices } from './services';

/**
 * Accepts an onboarding request (`tenancy onboard`):
 *
 * 1. validation against the registry and the control plane (request.ts); nothing is written
 *    unless the request is valid;
 * 2. the control-plane record (status `provisioning`), its domains and its onboarding job, in one
 *    transaction: the database's unique constraints settle concurrent requests for one slug or
 *    domain (a generated slug is generated again; a requested one is refused);
 * 3. the registry entry (a committed `tenants/<slug>.yaml`, or a row of the database source);
 * 4. the job on the queue.
 *
 * With a request key, submitting the same request again returns the first one's tenant and
 * enqueues its job again if it is not queued (e.g. the first submission died before step 4). The
 * same key with different parameters (requestFingerprint) is a {@link RequestKeyConflictError}.
 */
export interface SubmittedOnboarding {
  readonly tenantId: string;
  readonly slug: string;
  readonly job: LifecycleJob;
  /** False when the request key named an earlier request. */
  readonly created: boolean;
  readonly queued: { id: string; state: string };
  readonly registry: 'created' | 'unchanged';
}

const MAX_SLUG_ATTEMPTS = 5;

export async function submitOnboarding(services: LifecycleServices, queue: LifecycleQueue, input: OnboardingRequest, options: { requestedBy?: string } = {}): Promise<SubmittedOnboarding> {
  const { store } = services;
  const fingerprint = requestFingerprint(input);
  const sameRequest = (earlier: LifecycleJob): LifecycleJob => {
    if (earlier.request.requestFingerprint !== fingerprint) throw new RequestKeyConflictError(input.requestKey!, earlier.id);
    return earlier;
  };
  if (input.requestKey) {
    const earlier = await store.jobByRequestKey(input.requestKey);
    if (earlier) return resume(services, queue, sameRequest(earlier));
  }
  for (let attempt = 1; ; attempt++) {
    const registry = await services.registry.load();
    const taken = await store.takenNames();
    const v = validateOnboardingRequest(input, registry, taken);
    let job: LifecycleJob;
    try {
      job = await store.createOnboarding(v.tenant, v.domains, { entry: v.entry, domains: v.domains, requestedBy: options.requestedBy ?? services.config.actor, requestFingerprint: fingerprint, ...(v.paymentMethod ? { paymentMethod: v.paymentMethod } : {}) }, v.requestKey);
    } catch (e) {
      const constraint = uniqueViolation(e);
      if (!constraint) throw e;
      if (constraint.includes('request_key') && input.requestKey) {
        const earlier = await store.jobByRequestKey(input.requestKey);
        if (earlier) return resume(services, queue, sameRequest(earlier));
      }
      // Another request took the slug or a domain between validation and insert.
      if (!input.slug && constraint.includes('slug') && attempt < MAX_SLUG_ATTEMPTS) continue;
      throw new OnboardingRequestError([{ field: constraint.includes('domain') ? 'domain' : 'slug', message: `taken by a concurrent request (${constraint}); submit again` }]);
    }
    const registryOutcome = await services.registry.create(v.entry, `Onboard tenant ${v.tenant.slug} (${v.tenant.model}, ${v.tenant.plan}, ${v.tenant.region})\n\nTenant id: ${v.tenant.id}\nOnboarding job: ${job.id}`);
    const queued = await queue.enqueue(job);
    return { tenantId: v.tenant.id, slug: v.tenant.slug, job, created: true, queued, registry: registryOutcome };
  }
}

async function resume(services: LifecycleServices, queue: LifecycleQueue, job: LifecycleJob): Promise<SubmittedOnboarding> {
  const tenant = await services.controlPlane.tenantById(job.tenantId);
  if (!tenant) throw new Error(`onboarding job ${job.id} has no tenant ${job.tenantId}`);
  tenantNames(tenant.slug);
  const queued = job.status === 'succeeded' ? { id: '', state: 'succeeded' } : await queue.enqueue(job);
  return { tenantId: tenant.id, slug: tenant.slug, job, created: false, queued, registry: 'unchanged' };
}
