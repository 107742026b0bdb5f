import { assertSafeSlug } from '../naming';
import type { LifecycleJob } from '../onboarding/lifecycle-store';
import type { LifecycleQueue } from '../onboarding/queue';
import type { LifecycleServices } from '../onboarding/services';
import { enqueueRecorded } from '../onboarding/submit';

/**
 * Accepts an offboarding (`tenancy offboard <slug>`): the tenant must be in the control plane;
 * its offboarding job is created once (a second request finds it: running it twice is harmless,
 * and once it succeeded, a no-op) and queued. If queueing fails (a NotQueuedError), the recorded job
 * is queued by the same command run again, or by the next `tenancy worker` to start.
 */
export class UnknownTenantError extends Error {}

export interface SubmittedOffboarding {
  readonly tenantId: string;
  readonly slug: string;
  readonly job: LifecycleJob;
  readonly created: boolean;
  readonly queued: { id: string; state: string };
}

export async function submitOffboarding(services: LifecycleServices, queue: LifecycleQueue, slug: string, options: { requestedBy?: string; reason?: string } = {}): Promise<SubmittedOffboarding> {
  assertSafeSlug(slug, 'offboard');
  const tenant = await services.controlPlane.tenantBySlug(slug);
  if (!tenant) throw new UnknownTenantError(`no tenant ${slug} in the control plane`);
  const { job, created } = await services.store.ensureOffboarding(tenant.id, { requestedBy: options.requestedBy ?? services.config.actor, reason: options.reason ?? null });
  const queued = job.status === 'succeeded' ? { id: '', state: 'succeeded' } : await enqueueRecorded(queue, job, slug);
  return { tenantId: tenant.id, slug, job, created, queued };
}
