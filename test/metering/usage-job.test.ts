/**
 * The hourly usage report on the lifecycle queue (real Redis, real BullMQ): one job scheduler per
 * queue however many workers upsert it, and the lifecycle worker runs a `usage-report` job with
 * its usage reporter (a worker without one fails the job, saying why), never as a lifecycle job.
 */
import { Queue, QueueEvents } from 'bullmq';
import { scheduleUsageReports, USAGE_REPORT_JOB } from '../../lib/metering/usage-job';
import { redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { startLifecycleWorker } from '../../lib/onboarding/worker';
import { useRedis } from '../support/redis';

const redisServer = useRedis();

test('one hourly scheduler per queue; the worker runs the job with its usage reporter', async () => {
  const queueName = `usage-job-${process.pid}`;
  const connection = redisOptionsFromUrl(redisServer().url);
  const queue = new Queue(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  // The worker needs only the queue's configuration for this job (it never loads a lifecycle job for it).
  const services = { config: { queueName, redisUrl: redisServer().url } } as unknown as LifecycleServices;
  let runs = 0;
  const worker = startLifecycleWorker(services, { usageReport: async () => ({ run: ++runs }) });
  try {
    await scheduleUsageReports(queue);
    await scheduleUsageReports(queue, 10); // a second worker starting: still one scheduler
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.name, s.pattern, s.tz])).toEqual([[USAGE_REPORT_JOB, USAGE_REPORT_JOB, '0 10 * * * *', 'UTC']]);

    await events.waitUntilReady();
    const job = await queue.add(USAGE_REPORT_JOB, {});
    expect(await job.waitUntilFinished(events, 60_000)).toEqual({ run: 1 });
    expect(runs).toBe(1);
  } finally {
    await worker.close();
  }

  // A worker without a usage reporter fails the job with the reason.
  const bare = startLifecycleWorker(services);
  try {
    const job = await queue.add(USAGE_REPORT_JOB, {}, { attempts: 1 });
    await expect(job.waitUntilFinished(events, 60_000)).rejects.toThrow('this worker does not report usage');
  } finally {
    await bare.close();
    await queue.removeJobScheduler(USAGE_REPORT_JOB);
    await events.close();
    await queue.close();
  }
}, 120_000);
