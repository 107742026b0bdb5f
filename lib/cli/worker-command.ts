import { InvalidArgumentError, type Command } from 'commander';
import { addLifecycleOptions, configFromOptions, defaultIo, usageFor, type LifecycleCliOptions } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy worker`: processes the lifecycle queue (onboarding and offboarding jobs) until SIGTERM
 * or SIGINT, then finishes the jobs it has and exits. A job whose worker died goes back to the
 * queue once its BullMQ lock expires (TENANCY_QUEUE_LOCK_MS, default 60000). `--job <id>` runs one lifecycle job directly,
 * without the queue (a manual retry), and exits: 0 succeeded (or already had), 1 failed, 3 its
 * tenant is locked by another worker.
 */
interface WorkerCliOptions extends LifecycleCliOptions {
  concurrency: number;
  job?: string;
}

const positive = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) throw new InvalidArgumentError('expected an integer from 1 to 64');
  return Number(value);
};

export function registerWorkerCommand(program: Command, io: MigrateCommandIo = defaultIo()): void {
  const command = program
    .command('worker')
    .description('Run the lifecycle worker: onboarding and offboarding jobs from the queue (BullMQ on Redis).')
    .option('--concurrency <n>', 'jobs at once in this process', positive, 1)
    .option('--job <id>', 'run this one lifecycle job (a control-plane job id) without the queue, then exit');
  addLifecycleOptions(command).action(async (options: WorkerCliOptions) => {
    const usage = usageFor('worker', io);
    const config = configFromOptions(options, io, usage);
    if (options.job !== undefined && !/^[0-9a-f-]{36}$/.test(options.job)) usage('--job must be a lifecycle job id (a UUID)');
    const lockMs = io.env.TENANCY_QUEUE_LOCK_MS ? Number(io.env.TENANCY_QUEUE_LOCK_MS) : undefined;
    if (lockMs !== undefined && (!Number.isSafeInteger(lockMs) || lockMs < 500)) usage('TENANCY_QUEUE_LOCK_MS must be an integer ≥ 500');
    // Loaded here, not at the top: the other commands of the CLI start without cdktf, the queue and billing.
    const { billingFromConfig } = await import('../onboarding/billing');
    const { LifecycleServices } = await import('../onboarding/services');
    const { runLifecycleJob, startLifecycleWorker } = await import('../onboarding/worker');
    const services = await LifecycleServices.open(config, { billing: billingFromConfig(io.env) });
    try {
      if (options.job) {
        const result = await runLifecycleJob(services, options.job, {
          afterStep: (step) => io.stderr.write(`tenancy worker: ${options.job}: ${step} done\n`),
        });
        io.stdout.write(`${JSON.stringify({ type: 'job', ...result })}\n`);
        process.exitCode = result.outcome === 'succeeded' || result.outcome === 'already-succeeded' ? 0 : result.outcome === 'locked' ? 3 : 1;
        return;
      }
      const worker = startLifecycleWorker(services, {
        concurrency: options.concurrency,
        lockDurationMs: lockMs,
        onResult: (r) => io.stdout.write(`${JSON.stringify({ type: 'job', ...r })}\n`),
      });
      await worker.waitUntilReady();
      io.stderr.write(`tenancy worker: processing ${config.queueName} (concurrency ${options.concurrency})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await worker.close();
    } finally {
      await services.close();
    }
  });
}
