import { InvalidArgumentError, type Command } from 'commander';
import { addLifecycleOptions, configFromOptions, defaultIo, usageFor, type LifecycleCliOptions } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy offboard <slug> --yes`: queues the tenant's offboarding job (cancel billing, erase its
 * data per model, destroy its stack, mark it offboarded; README "Offboarding"). With --wait,
 * waits for it and prints the erasure report. Running it again is harmless: the job exists once,
 * and once it succeeded it is a no-op that prints the report again. Exit 0 queued (with --wait:
 * offboarded), 1 the job failed, or it is recorded but could not be queued (the same command again,
 * or a starting worker, queues it), 2 bad usage or an unknown tenant.
 */
interface OffboardCliOptions extends LifecycleCliOptions {
  yes?: boolean;
  reason?: string;
  wait?: boolean;
  timeout: number;
}

const seconds = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a number of seconds ≥ 1');
  return Number(value);
};

export function registerOffboardCommand(program: Command, io: MigrateCommandIo = defaultIo()): void {
  const command = program
    .command('offboard')
    .description("Offboard a tenant: cancel its subscription, erase its data, destroy its stack, mark it offboarded (the audit trail is kept).")
    .argument('<slug>', 'the tenant')
    .option('--yes', 'confirm: the tenant\'s data is erased (required)')
    .option('--reason <text>', 'why, recorded in the audit log')
    .option('--wait', 'wait until the job finishes and print the erasure report')
    .option('--timeout <seconds>', 'longest --wait', seconds, 7200);
  addLifecycleOptions(command).action(async (slug: string, options: OffboardCliOptions) => {
    const usage = usageFor('offboard', io);
    if (!options.yes) usage(`this erases every row, schema or database of ${slug}; add --yes to confirm`);
    process.exitCode = await runOffboard(slug, options, io, usage);
  });
  command.addHelpText('after', '\nExit codes: 0 queued (with --wait: offboarded), 1 the job failed, or recorded but not queued (run the same command again), 2 bad usage or unknown tenant.');
}

async function runOffboard(slug: string, options: OffboardCliOptions, io: MigrateCommandIo, usage: (message: string) => never): Promise<number> {
  const config = configFromOptions(options, io, usage);
  const json = Boolean(options.json) || !io.stdout.isTTY;
  // Loaded here, not at the top: the other commands of the CLI start without the queue, Redis and billing.
  const { erasureReport, renderErasureReport } = await import('../offboarding/report');
  const { submitOffboarding, UnknownTenantError } = await import('../offboarding/submit');
  const { billingFromConfig } = await import('../onboarding/billing');
  const { bullJobId, LifecycleQueue, redisOptionsFromUrl } = await import('../onboarding/queue');
  const { LifecycleServices } = await import('../onboarding/services');
  const { NotQueuedError, submitterRedisOptions } = await import('../onboarding/submit');
  const services = await LifecycleServices.open(config, { billing: billingFromConfig(io.env) });
  // Submitting fails fast when Redis is unreachable (the recorded job is queued later); --wait rides out Redis restarts.
  const queue = new LifecycleQueue(submitterRedisOptions(config.redisUrl), config.queueName);
  queue.queue.on('error', () => undefined); // reported by the call that failed
  let waiter: InstanceType<typeof LifecycleQueue> | undefined;
  try {
    let submitted;
    try {
      submitted = await submitOffboarding(services, queue, slug, { requestedBy: config.actor, reason: options.reason });
    } catch (e) {
      if (e instanceof UnknownTenantError || (e instanceof Error && /not a safe tenant slug/.test(e.message))) return usage(e.message);
      if (e instanceof NotQueuedError) {
        if (json) io.stdout.write(`${JSON.stringify({ type: 'recorded', tenantId: e.tenantId, slug, job: e.job.id, queued: false })}\n`);
        io.stderr.write(`tenancy offboard: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    if (json) io.stdout.write(`${JSON.stringify({ type: 'accepted', tenantId: submitted.tenantId, slug, job: submitted.job.id, created: submitted.created, queue: submitted.queued })}\n`);
    else io.stdout.write(`Offboarding ${slug} (${submitted.tenantId}): job ${submitted.job.id} ${submitted.queued.state}\n`);
    if (!options.wait) return 0;
    try {
      waiter = new LifecycleQueue(redisOptionsFromUrl(config.redisUrl), config.queueName);
      if (submitted.queued.state !== 'succeeded') await waiter.waitFor(bullJobId('offboard', submitted.tenantId), options.timeout * 1000);
    } catch (e) {
      io.stderr.write(`tenancy offboard: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    const job = (await services.store.jobById(submitted.job.id))!;
    const record = (await services.controlPlane.tenantById(submitted.tenantId))!;
    const report = erasureReport({ id: record.id, slug: record.slug, model: record.model }, job.status === 'succeeded' ? record.status : `${job.status}${job.lastError ? `: ${job.lastError}` : ''}`, job.finishedAt, await services.store.steps(job.id));
    if (json) io.stdout.write(`${JSON.stringify({ type: 'erasure-report', ...report })}\n`);
    else io.stdout.write(renderErasureReport(report));
    return job.status === 'succeeded' ? 0 : 1;
  } finally {
    await waiter?.close();
    await queue.close();
    await services.close();
  }
}
