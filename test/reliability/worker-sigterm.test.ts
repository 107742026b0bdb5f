/**
 * Issue 12, item 4: SIGTERM stops a `tenancy worker` (a real child process) within a bound the code
 * enforces (TENANCY_WORKER_STOP_MS), also while Redis is unreachable; and mid-job it stops after
 * the current step (recorded), hands the job back, releases the tenant lock and exits 0, so that
 * the next worker resumes it at once.
 *
 * Before the fix, a worker whose Redis was gone never exited on SIGTERM, and a SIGTERM'd worker ran
 * its job to the end first (however long its remaining deploys took).
 */
import { LifecycleQueue, bullJobId, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { ONBOARDING_STEPS } from '../../lib/onboarding/step-names';
import { submitOnboarding } from '../../lib/onboarding/submit';
import { useLifecycleTestbed } from '../support/lifecycle';
import { RedisServer } from '../support/redis';
import { assertDistIsCurrent, startQueueWorker, type WorkerProcess } from '../support/worker-process';

const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
const STEPS = ONBOARDING_STEPS.filter((s) => s !== 'escalation'); // plan pro

beforeAll(async () => {
  assertDistIsCurrent();
  services = bed().track(await bed().open(), (s) => s.close());
});

/** The exit code; a worker still alive after `guardMs` is killed and the test fails (the bound itself is the worker's). */
async function exitOf(worker: WorkerProcess, guardMs = 120_000): Promise<number | null> {
  const guard = setTimeout(() => worker.child.kill('SIGKILL'), guardMs);
  try {
    const code = await worker.exited;
    if (worker.child.signalCode === 'SIGKILL') throw new Error(`the worker did not exit on SIGTERM:\n${worker.stderr()}`);
    return code;
  } finally {
    clearTimeout(guard);
  }
}

test('SIGTERM while Redis is unreachable: the worker exits, saying why, within its bound', async () => {
  const redis = await RedisServer.start();
  let worker: WorkerProcess | undefined;
  try {
    worker = await startQueueWorker(bed(), { TENANCY_REDIS_URL: redis.url, TENANCY_WORKER_STOP_MS: '3000' });
    await redis.stop();
    worker.child.kill('SIGTERM');
    const code = await exitOf(worker);
    expect(worker.stderr()).toMatch(/SIGTERM: taking no new jobs; stopping after the current step \(at most 3000 ms\)/);
    // Either it closed cleanly, or the bound ended it with a message naming what was left.
    if (code === 0) expect(worker.stderr()).toMatch(/tenancy worker: stopped/);
    else expect({ code, stderr: worker.stderr() }).toEqual({ code: 1, stderr: expect.stringMatching(/did not stop within 3000 ms \(a step still running, or Redis or the control plane unreachable\); exiting now/) });
  } finally {
    worker?.child.kill('SIGKILL');
    await redis.stop();
  }
});

test('SIGTERM mid-job: the current step finishes and is recorded, the job goes back to the queue, the worker exits 0; the next worker resumes it', async () => {
  const queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName), (q) => q.close());
  const s = await submitOnboarding(services, queue, { email: 'ops@sigterm.example', company: 'Sigterm Mid Job', plan: 'pro', model: 'pool', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
  const stopped = await startQueueWorker(bed(), { TEST_FAULT_SIGTERM: 'provision' });
  expect(await exitOf(stopped)).toBe(0);
  expect(stopped.stderr()).toMatch(/SIGTERM: taking no new jobs/);
  expect(stopped.stderr()).toMatch(/tenancy worker: stopped/);
  // Checkpointed: the steps up to the one running when the signal was handled (provision, or the
  // next one: the signal is delivered asynchronously) are recorded, none after; queued again, lock released.
  const recorded = (await services.store.steps(s.job.id)).map((r) => r.step);
  expect(recorded.length).toBeGreaterThan(STEPS.indexOf('provision'));
  expect(recorded.length).toBeLessThan(STEPS.length);
  expect(recorded).toEqual(STEPS.slice(0, recorded.length));
  expect(await services.store.jobById(s.job.id)).toMatchObject({ status: 'queued', attempts: 1 });
  expect(await services.redis.exists(`tenancy:lock:tenant:${s.tenantId}`)).toBe(0);
  expect(await (await queue.queue.getJob(bullJobId('onboard', s.tenantId)))!.getState()).toMatch(/^(delayed|waiting|wait)$/);

  const next = await startQueueWorker(bed(), {});
  try {
    const result = (await queue.waitFor(bullJobId('onboard', s.tenantId), 180_000)) as { outcome: string; resumed: string[]; ran: string[] };
    expect(result).toMatchObject({ outcome: 'succeeded', resumed: recorded, ran: STEPS.slice(recorded.length) });
  } finally {
    next.child.kill('SIGTERM');
    expect(await exitOf(next)).toBe(0);
  }
  expect(await services.store.jobById(s.job.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
}, 600_000);
