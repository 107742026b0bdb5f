/**
 * The worker's hourly billing job runs the billing upkeep (lib/onboarding/billing-upkeep.ts) after
 * the usage report: a tenant whose grace period after a failed payment ended is suspended without
 * any webhook arriving, and a low-credit mail that was not sent when the debit crossed the
 * threshold is sent. Through a real `tenancy worker` child (its default: the hourly scheduler on
 * the queue), real PostgreSQL, Redis and SMTP.
 */
import { QueueEvents } from 'bullmq';
import { grantCredits, debitCredits } from '../../lib/billing/credits';
import { USAGE_REPORT_JOB } from '../../lib/metering/usage-keys';
import { LifecycleQueue, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { submitOnboarding, type SubmittedOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob } from '../../lib/onboarding/worker';
import { useLifecycleTestbed } from '../support/lifecycle';
import { assertDistIsCurrent, startQueueWorker, until, type WorkerProcess } from '../support/worker-process';

const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
let queue: LifecycleQueue;
let worker: WorkerProcess | undefined;
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;

beforeAll(async () => {
  assertDistIsCurrent();
  services = bed().track(await bed().open(), (s) => s.close());
  queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName), (q) => q.close());
});
afterAll(async () => {
  if (worker) {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
});

async function onboard(company: string): Promise<SubmittedOnboarding> {
  const s = await submitOnboarding(services, noQueue, { email: `billing@${company.toLowerCase()}.example`, company, plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
  const r = await runLifecycleJob(services, s.job.id);
  if (r.outcome !== 'succeeded') throw new Error(`onboarding ${company}: ${r.error}`);
  return s;
}
const statusOf = async (id: string) => (await bed().pg.query<{ status: string }>('SELECT status FROM tenancy.tenants WHERE id = $1', [id], 'control_plane'))[0].status;

test('the hourly billing job suspends a tenant whose grace period ended and sends a pending low-credit mail', async () => {
  const overdue = await onboard('Overdue');
  const spender = await onboard('Spender');
  // A payment failed eight days ago; the grace period ended yesterday (as the webhook handler records it).
  await bed().pg.query("UPDATE tenancy.tenants SET status = 'past_due' WHERE id = $1", [overdue.tenantId], 'control_plane');
  await bed().pg.query("INSERT INTO tenancy.tenant_billing (tenant_id, past_due_since, grace_until) VALUES ($1, now() - interval '8 days', now() - interval '1 day')", [overdue.tenantId], 'control_plane');
  // A debit crossed 20% of the grant; its mail was never sent (no mailer ran).
  const grant = await grantCredits(services.pool, spender.tenantId, 10, { stripeObjectId: 'cs_test_upkeep' });
  await debitCredits(services.pool, spender.tenantId, 9);
  const mailsTo = () => bed().smtp!.messages.filter((m) => m.to.includes('billing@spender.example') && /credit/i.test(m.header('subject') ?? ''));
  expect(mailsTo()).toEqual([]);

  worker = await startQueueWorker(bed(), {});
  // By default the worker puts the hourly scheduler on the queue.
  await until(async () => (await queue.queue.getJobSchedulers()).some((s) => s.key === USAGE_REPORT_JOB), 'the hourly billing scheduler is on the queue');
  // Run the hourly job now instead of waiting for minute 10.
  const events = new QueueEvents(services.config.queueName, { connection: redisOptionsFromUrl(bed().redis.url) });
  try {
    await events.waitUntilReady();
    // The hourly job carries no lifecycle data (the worker dispatches it by name).
    const job = await queue.queue.add(USAGE_REPORT_JOB, {} as never, { attempts: 1 });
    const result = (await job.waitUntilFinished(events, 120_000)) as { upkeep: { suspended: string[]; lowCreditMails: { sent: number }; errors: string[] } };
    expect(result.upkeep).toEqual({ suspended: [overdue.tenantId], lowCreditMails: { sent: 1, failed: 0, errors: [] }, errors: [] });
  } finally {
    await events.close();
  }
  expect(await statusOf(overdue.tenantId)).toBe('suspended');
  expect(await statusOf(spender.tenantId)).toBe('active');
  expect(mailsTo().map((m) => m.header('message-id'))).toEqual([expect.stringContaining(`credits-low.${grant.entryId}.${spender.tenantId}@`)]);
}, 300_000);

test('the upkeep runs even when the usage report fails; the job fails naming why', async () => {
  const late = await onboard('Late');
  await bed().pg.query("UPDATE tenancy.tenants SET status = 'past_due' WHERE id = $1", [late.tenantId], 'control_plane');
  await bed().pg.query("INSERT INTO tenancy.tenant_billing (tenant_id, past_due_since, grace_until) VALUES ($1, now() - interval '8 days', now() - interval '1 day')", [late.tenantId], 'control_plane');
  // Only a worker whose report cannot run takes the job.
  if (worker) {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
  worker = await startQueueWorker(bed(), { TENANCY_USAGE_CONCURRENCY: 'many' });
  const events = new QueueEvents(services.config.queueName, { connection: redisOptionsFromUrl(bed().redis.url) });
  try {
    await events.waitUntilReady();
    const job = await queue.queue.add(USAGE_REPORT_JOB, {} as never, { attempts: 1 });
    await expect(job.waitUntilFinished(events, 120_000)).rejects.toThrow(/^usage report: TENANCY_USAGE_CONCURRENCY must be a whole number, got "many" \(billing upkeep: .*"suspended":\["[0-9a-f-]{36}"\]/);
  } finally {
    await events.close();
  }
  expect(await statusOf(late.tenantId)).toBe('suspended');
}, 300_000);
