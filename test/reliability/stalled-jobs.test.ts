/**
 * Issue 12, item 3: no stalled jobs. A queued onboarding job whose `tenancy worker` dies (a real
 * process.exit after a step, test/support/fault-exit-preload.js) twice is not failed by BullMQ's
 * stall limit: while no worker runs it, `tenancy status` shows it `stalled` (exit 1), never
 * `running`; the next worker resumes it at its first unrecorded step and completes it, everything
 * existing once. Synthesis ran in a child process, off the worker's event loop.
 *
 * Before the fix, the job stayed `running` in `tenancy status` (exit 0) after its worker died, and
 * the second death failed it: "job stalled more than allowable limit".
 */
import { LifecycleQueue, bullJobId, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { ONBOARDING_STEPS } from '../../lib/onboarding/step-names';
import { tenantStatuses } from '../../lib/onboarding/status';
import { submitOnboarding } from '../../lib/onboarding/submit';
import { registerStatusCommand } from '../../lib/cli/status-command';
import { runCommand } from '../support/cli';
import { FAULT_EXIT_CODE } from '../support/fault-exit';
import { useLifecycleTestbed } from '../support/lifecycle';
import { assertDistIsCurrent, startQueueWorker, until } from '../support/worker-process';

const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
const STEPS = ONBOARDING_STEPS.filter((s) => s !== 'escalation'); // plan pro
// Short locks so that the takeovers happen within the test (production: 30 s each).
const FAST = { TENANCY_QUEUE_LOCK_MS: '1000', TENANCY_LOCK_TTL_MS: '3000' };

beforeAll(async () => {
  assertDistIsCurrent();
  services = bed().track(await bed().open(), (s) => s.close());
});

async function latestJobStatus(slug: string): Promise<string> {
  const [tenant] = await tenantStatuses(services.pool, slug);
  return tenant.jobs[tenant.jobs.length - 1].status;
}

test('a job whose worker dies twice is shown stalled, never running, and the next worker resumes and completes it', async () => {
  const queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName), (q) => q.close());
  const s = await submitOnboarding(services, queue, { email: 'ops@twice-dead.example', company: 'Twice Dead', plan: 'pro', model: 'pool', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
  const status = () => runCommand(registerStatusCommand, ['status', s.slug, '--json'], { env: bed().childEnv() });

  const first = await startQueueWorker(bed(), { ...FAST, TEST_FAULT_EXIT: 'synthesize' });
  expect(await first.exited).toBe(FAULT_EXIT_CODE);
  // No worker runs now: once the dead worker's lease lapsed, the job is stalled, not running.
  await until(async () => (await latestJobStatus(s.slug)) !== 'running', `job of ${s.slug} no longer shown running`, 60_000);
  const stalled = await status();
  expect(JSON.parse(stalled.stdout).jobs.at(-1)).toMatchObject({ kind: 'onboard', status: 'stalled', stepsDone: ['registry', 'synthesize'], nextStep: 'deploy' });
  expect(stalled.code).toBe(1);

  const second = await startQueueWorker(bed(), { ...FAST, TEST_FAULT_EXIT: 'provision' });
  expect(await second.exited).toBe(FAULT_EXIT_CODE);
  expect(await latestJobStatus(s.slug)).not.toBe('failed');

  const third = await startQueueWorker(bed(), FAST);
  try {
    const result = (await queue.waitFor(bullJobId('onboard', s.tenantId), 180_000)) as { outcome: string; resumed: string[]; ran: string[] };
    expect(result.outcome).toBe('succeeded');
    expect(result.resumed).toEqual(STEPS.slice(0, STEPS.indexOf('provision') + 1));
  } finally {
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  }

  expect(await services.store.jobById(s.job.id)).toMatchObject({ status: 'succeeded', attempts: 3, lastError: null });
  const steps = await services.store.steps(s.job.id);
  expect(steps.map((r) => r.step)).toEqual(STEPS);
  // Synthesis ran in a child process of the worker, not on its event loop.
  expect(steps.find((r) => r.step === 'synthesize')!.result).toMatchObject({ isolated: true });
  const customers = (await bed().stripeClient().customers.search({ query: `metadata['tenant_id']:'${s.tenantId}'` })).data;
  expect(customers).toHaveLength(1);
  expect((await services.store.outbox(s.tenantId)).map((e) => e.eventType)).toEqual(['tenant.created']);
  const done = await status();
  expect(done.code).toBe(0);
  expect(JSON.parse(done.stdout)).toMatchObject({ status: 'active', jobs: [{ status: 'succeeded', attempts: 3 }] });
}, 600_000);
