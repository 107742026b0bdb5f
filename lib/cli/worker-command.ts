import { InvalidArgumentError, type Command } from 'commander';
import { addLifecycleOptions, configFromOptions, defaultIo, usageFor, type LifecycleCliOptions } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy worker`: processes the lifecycle queue (onboarding and offboarding jobs) until SIGTERM
 * or SIGINT. A job whose worker died goes back to the queue once its BullMQ lock expires
 * (TENANCY_QUEUE_LOCK_MS, default 30000), however often that happens, and resumes at its first
 * unrecorded step once the dead worker's tenant lock expired (TENANCY_LOCK_TTL_MS, default 30000).
 *
 * It also runs the hourly billing job: the usage report (lib/metering: closed windows of API
 * calls, storage and seats to Stripe Meters), then the billing upkeep (billing-upkeep.ts: overdue
 * tenants suspended, pending low-credit mails sent). By default (TENANCY_USAGE_REPORT unset or
 * `hourly`) the worker upserts the job scheduler on the queue (minute TENANCY_USAGE_REPORT_MINUTE,
 * default 10, UTC; one scheduler per queue, whichever worker does it); `off` removes it and this
 * worker runs no such job.
 *
 * Every TENANCY_WORKER_SWEEP_MS (default 60000) it queues the jobs the control plane records as
 * unfinished that the queue does not hold (see requeueRecorded).
 *
 * SIGTERM (or SIGINT): no new job is taken; a running job stops after its current step (recorded,
 * the job back on the queue, the tenant lock released); then the process exits 0. The stop is
 * bounded by TENANCY_WORKER_STOP_MS (default 20000, below Kubernetes' 30 s grace period): a step
 * still running then (a long deploy), or a Redis or control plane that cannot be reached to hand
 * the job back, makes the process say so and exit 1 at that time. Nothing is lost: the step runs
 * again (steps are idempotent), the tenant lock expires after its ttl, BullMQ puts the job back.
 *
 * Beside it, it takes the stacks of fleet rollouts (`tenancy fleet deploy`) from the rollout queue
 * (lib/fleet/rollout-worker.ts), `--rollout-concurrency` at once (default 1; 0 takes none): each
 * fetched from the rollout's artifacts, applied with terraform (the S3 state lock keeps two
 * workers from applying one stack), its post-apply hooks run, its row and applied content recorded.
 *
 * `--job <id>` runs one lifecycle job directly, without the queue (a manual retry), and exits:
 * 0 succeeded (or already had), 1 failed, 3 its tenant is locked by another worker (give
 * `--lock-wait <seconds>` to wait for a crashed holder's lock to expire), 4 stopped by SIGTERM
 * between two steps (run it again to resume).
 */
interface WorkerCliOptions extends LifecycleCliOptions {
  concurrency: number;
  rolloutConcurrency: number;
  job?: string;
  lockWait: number;
}

/** Longest a SIGTERM'd worker takes to stop. @default 20000 ms (TENANCY_WORKER_STOP_MS) */
export const WORKER_STOP_DEFAULT_MS = 20_000;
/** How often a running worker queues the control plane's recorded jobs the queue lacks. @default 60000 ms (TENANCY_WORKER_SWEEP_MS) */
export const WORKER_SWEEP_DEFAULT_MS = 60_000;
/** Exit code of a worker that could not stop cleanly within its bound. */
export const WORKER_FORCED_STOP_EXIT = 1;

const seconds = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) > 86_400) throw new InvalidArgumentError('expected seconds, an integer from 0 to 86400');
  return Number(value);
};

const upTo64 = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) > 64) throw new InvalidArgumentError('expected an integer from 0 to 64');
  return Number(value);
};

const positive = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) throw new InvalidArgumentError('expected an integer from 1 to 64');
  return Number(value);
};

export function registerWorkerCommand(program: Command, io: MigrateCommandIo = defaultIo()): void {
  const command = program
    .command('worker')
    .description('Run a worker: onboarding and offboarding jobs, and the stacks of fleet rollouts, from their queues (BullMQ on Redis).')
    .option('--concurrency <n>', 'jobs at once in this process', positive, 1)
    .option('--rollout-concurrency <n>', 'stacks of fleet rollouts (`tenancy fleet deploy`) applied at once in this process; 0: take no rollout jobs', upTo64, 1)
    .option('--job <id>', 'run this one lifecycle job (a control-plane job id) without the queue, then exit')
    .option('--lock-wait <seconds>', 'with --job: wait this long for the tenant lock held by another (or a crashed) worker', seconds, 0);
  addLifecycleOptions(command).action(async (options: WorkerCliOptions) => {
    const usage = usageFor('worker', io);
    const config = configFromOptions(options, io, usage);
    if (options.job !== undefined && !/^[0-9a-f-]{36}$/.test(options.job)) usage('--job must be a lifecycle job id (a UUID)');
    const lockMs = io.env.TENANCY_QUEUE_LOCK_MS ? Number(io.env.TENANCY_QUEUE_LOCK_MS) : undefined;
    if (lockMs !== undefined && (!Number.isSafeInteger(lockMs) || lockMs < 500)) usage('TENANCY_QUEUE_LOCK_MS must be an integer ≥ 500');
    const stopMs = io.env.TENANCY_WORKER_STOP_MS ? Number(io.env.TENANCY_WORKER_STOP_MS) : WORKER_STOP_DEFAULT_MS;
    if (!Number.isSafeInteger(stopMs) || stopMs < 100) usage('TENANCY_WORKER_STOP_MS must be an integer ≥ 100');
    const sweepMs = io.env.TENANCY_WORKER_SWEEP_MS ? Number(io.env.TENANCY_WORKER_SWEEP_MS) : WORKER_SWEEP_DEFAULT_MS;
    if (!Number.isSafeInteger(sweepMs) || sweepMs < 100) usage('TENANCY_WORKER_SWEEP_MS must be an integer ≥ 100');
    const rolloutHostMap = options.rolloutConcurrency > 0 && options.job === undefined ? await rolloutDatabaseHostMap(io, usage) : [];
    // SIGTERM/SIGINT: stop taking jobs, end the running one after its step, exit within stopMs.
    const stopping = new AbortController();
    let forcedStop: NodeJS.Timeout | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping.signal.aborted) return;
      stopping.abort(signal);
      io.stderr.write(`tenancy worker: ${signal}: taking no new jobs; stopping after the current step (at most ${stopMs} ms)\n`);
      // Enforced here, whatever hangs (a step, Redis or the control plane unreachable): not unref'd on purpose.
      forcedStop = setTimeout(() => {
        io.stderr.write(`tenancy worker: did not stop within ${stopMs} ms (a step still running, or Redis or the control plane unreachable); exiting now. `
          + `The unfinished step runs again on the next attempt; the tenant lock expires after its ttl (${config.lockTtlMs} ms) and the queue hands the job to another worker.\n`);
        process.exit(WORKER_FORCED_STOP_EXIT);
      }, stopMs);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // Loaded here, not at the top: the other commands of the CLI start without cdktf, the queue and billing.
    const { billingFromConfig } = await import('../onboarding/billing');
    const { LifecycleServices } = await import('../onboarding/services');
    const { runLifecycleJob, startLifecycleWorker } = await import('../onboarding/worker');
    const services = await LifecycleServices.open(config, { billing: billingFromConfig(io.env) });
    // The hourly billing job (usage report, billing upkeep) on this queue: scheduled unless =off, which removes it.
    const usageMode = io.env.TENANCY_USAGE_REPORT || 'hourly';
    if (usageMode !== 'hourly' && usageMode !== 'off') usage('TENANCY_USAGE_REPORT must be hourly or off');
    const reportsUsage = usageMode === 'hourly';
    try {
      if (options.job) {
        const result = await runLifecycleJob(services, options.job, {
          afterStep: (step) => io.stderr.write(`tenancy worker: ${options.job}: ${step} done\n`),
          signal: stopping.signal,
          lockWaitMs: options.lockWait * 1000,
        });
        io.stdout.write(`${JSON.stringify({ type: 'job', ...result })}\n`);
        const codes: Record<string, number> = { succeeded: 0, 'already-succeeded': 0, locked: 3, interrupted: 4 };
        process.exitCode = codes[result.outcome] ?? 1;
        return;
      }
      // The first job's synthesis finds a child with cdktf already loaded.
      (await import('../onboarding/synthesize-in-child')).prewarmSynthesisChild();
      const worker = startLifecycleWorker(services, {
        concurrency: options.concurrency,
        lockDurationMs: lockMs,
        hooks: { signal: stopping.signal },
        onResult: (r) => io.stdout.write(`${JSON.stringify({ type: 'job', ...r })}\n`),
        usageReport: reportsUsage ? () => hourlyBillingJob(services, io.env) : undefined,
      });
      // Redis going away is reported, not fatal: BullMQ reconnects, and SIGTERM still stops the process.
      worker.on('error', (e) => io.stderr.write(`tenancy worker: ${e.message}\n`));
      await worker.waitUntilReady();
      await scheduleUsage(config, io, reportsUsage);
      await requeueRecorded(services, config, io);
      // And again every sweepMs while running: a submission whose enqueue failed, or jobs lost with
      // Redis's data, heal without a resubmission or a worker restart.
      let sweeping = false;
      const sweep = setInterval(() => {
        if (sweeping || stopping.signal.aborted) return;
        sweeping = true;
        void requeueRecorded(services, config, io).finally(() => (sweeping = false));
      }, sweepMs);
      io.stderr.write(`tenancy worker: processing ${config.queueName} (concurrency ${options.concurrency})\n`);
      const rolloutWorker = options.rolloutConcurrency > 0 ? await startRolloutConsumer(services, io, options.rolloutConcurrency, lockMs, rolloutHostMap) : undefined;
      if (!stopping.signal.aborted) await new Promise((resolve) => stopping.signal.addEventListener('abort', resolve, { once: true }));
      clearInterval(sweep);
      await Promise.all([worker.close(), rolloutWorker?.close()]);
      io.stderr.write('tenancy worker: stopped\n');
    } finally {
      await services.close();
      clearTimeout(forcedStop);
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
    }
  });
}

/**
 * The rollout queue's consumer (lib/fleet/rollout-worker.ts): stacks of `tenancy fleet deploy`
 * applied with terraform in <work dir>/rollouts, with the environment's AWS and Terraform
 * settings, then the post-apply hooks with the lifecycle's control plane, database connector,
 * migrations and platform outputs (TENANCY_PLATFORM_OUTPUTS), and TENANCY_DATABASE_HOST_MAP.
 */
async function startRolloutConsumer(
  services: import('../onboarding/services').LifecycleServices,
  io: MigrateCommandIo,
  concurrency: number,
  lockMs: number | undefined,
  databaseHostMap: readonly import('../hooks/database-host-map').DatabaseHostMapEntry[],
) {
  const { join } = await import('node:path');
  const { redisOptionsFromUrl } = await import('../onboarding/queue');
  const { startRolloutWorker } = await import('../fleet/rollout-worker');
  const { ROLLOUT_QUEUE } = await import('../fleet/rollout-queue');
  const queueName = io.env.TENANCY_ROLLOUT_QUEUE || ROLLOUT_QUEUE.name;
  const worker = startRolloutWorker({
    connection: redisOptionsFromUrl(services.config.redisUrl),
    controlPlane: services.pool,
    workDir: join(services.config.workDir, 'rollouts'),
    env: io.env,
    concurrency,
    lockDurationMs: lockMs,
    queueName,
    actor: services.config.actor,
    hooks: { controlPlane: services.controlPlane, databases: services.databases, migrations: services.migrations, platforms: () => services.platform().platforms, databaseHostMap },
    onResult: (r) => io.stdout.write(`${JSON.stringify({ type: 'rollout-stack', ...r })}\n`),
    onError: (e) => io.stderr.write(`tenancy worker: rollout: ${e.message}\n`),
  });
  await worker.waitUntilReady();
  io.stderr.write(`tenancy worker: processing ${queueName} (rollout concurrency ${concurrency})\n`);
  return worker;
}

/** TENANCY_DATABASE_HOST_MAP for the rollout hooks (local AWS APIs only), checked before anything starts. */
async function rolloutDatabaseHostMap(io: MigrateCommandIo, usage: (message: string) => never) {
  const { parseDatabaseHostMap } = await import('../hooks/database-host-map');
  try {
    return parseDatabaseHostMap(io.env.TENANCY_DATABASE_HOST_MAP ? [io.env.TENANCY_DATABASE_HOST_MAP] : []);
  } catch (e) {
    return usage(`TENANCY_DATABASE_HOST_MAP: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The hourly billing job: the usage report, then the billing upkeep, which runs even when the
 * report failed; the job fails (recorded by BullMQ, retried next hour) if the report did.
 */
async function hourlyBillingJob(services: import('../onboarding/services').LifecycleServices, env: NodeJS.ProcessEnv): Promise<unknown> {
  const { runUsageReport, usagePartsOf } = await import('../metering/usage-job');
  const { runBillingUpkeep } = await import('../onboarding/billing-upkeep');
  let reportError: unknown;
  const usage = await runUsageReport(usagePartsOf(services), env).catch((e: unknown) => {
    reportError = e;
    return undefined;
  });
  const upkeep = await runBillingUpkeep(services);
  if (reportError !== undefined) {
    throw new Error(`usage report: ${(reportError as { message?: string })?.message ?? String(reportError)} (billing upkeep: ${JSON.stringify(upkeep)})`, { cause: reportError });
  }
  return { usage, upkeep };
}

/** Upserts (or removes) the hourly usage-report scheduler (one per queue, whichever worker does it). */
async function scheduleUsage(config: { redisUrl: string; queueName: string }, io: MigrateCommandIo, on: boolean): Promise<void> {
  const { LifecycleQueue, redisOptionsFromUrl } = await import('../onboarding/queue');
  const { scheduleUsageReports, unscheduleUsageReports } = await import('../metering/usage-job');
  const minute = io.env.TENANCY_USAGE_REPORT_MINUTE ? Number(io.env.TENANCY_USAGE_REPORT_MINUTE) : undefined;
  const queue = new LifecycleQueue(redisOptionsFromUrl(config.redisUrl), config.queueName);
  try {
    if (on) await scheduleUsageReports(queue.queue, minute);
    else await unscheduleUsageReports(queue.queue);
  } catch (e) {
    io.stderr.write(`tenancy worker: could not ${on ? 'schedule' : 'unschedule'} the hourly usage report (the next worker start does; \`tenancy usage report\` runs it by hand): ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    await queue.close();
  }
}

/**
 * Jobs the control plane holds as unfinished but the queue does not (a submission that died
 * between its record and its enqueue, or Redis data lost) go onto the queue when a worker starts
 * and every TENANCY_WORKER_SWEEP_MS after: they heal without a resubmission
 * (lib/onboarding/submit.ts, requeueRecordedJobs).
 */
async function requeueRecorded(services: import('../onboarding/services').LifecycleServices, config: { redisUrl: string; queueName: string }, io: MigrateCommandIo): Promise<void> {
  const { LifecycleQueue, redisOptionsFromUrl } = await import('../onboarding/queue');
  const { requeueRecordedJobs } = await import('../onboarding/submit');
  const queue = new LifecycleQueue(redisOptionsFromUrl(config.redisUrl), config.queueName);
  try {
    for (const job of await requeueRecordedJobs(services.store, queue)) io.stderr.write(`tenancy worker: queued recorded ${job.kind} job ${job.id} (tenant ${job.tenantId})\n`);
  } catch (e) {
    io.stderr.write(`tenancy worker: could not queue recorded jobs (a resubmission or the next worker start does): ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    await queue.close();
  }
}
