import { InvalidArgumentError, type Command } from 'commander';
import type { OnboardingRequest } from '../onboarding/request';
import { RegistryError } from '../registry/registry-error';
import { addLifecycleOptions, configFromOptions, defaultIo, usageFor, type LifecycleCliOptions } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';
import { renderStatuses } from './status-command';

/**
 * `tenancy onboard`: validates an onboarding request, records the tenant (`provisioning`) and its
 * job in the control plane, and queues the job, whose first step writes the registry entry
 * (README "Onboarding"). With --wait, waits for the job and prints the tenant's status. Exit 0
 * accepted (with --wait: active), 1 the job failed or timed out, or it is recorded but could not
 * be queued (the same command again, or a starting worker, queues it), 2 an invalid request or bad usage.
 */
interface OnboardCliOptions extends LifecycleCliOptions {
  email: string;
  company: string;
  plan: string;
  model: string;
  region: string;
  residency?: string;
  hipaa?: boolean;
  pci?: boolean;
  soc2: boolean;
  gdpr?: boolean;
  slug?: string;
  subdomain?: string;
  customDomain?: string;
  requestKey?: string;
  paymentMethod?: string;
  wait?: boolean;
  timeout: number;
}

const seconds = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a number of seconds ≥ 1');
  return Number(value);
};

export function registerOnboardCommand(program: Command, io: MigrateCommandIo = defaultIo()): void {
  const command = program
    .command('onboard')
    .description('Onboard a tenant: validate, record it (provisioning) and its provisioning job, queue the job (its first step writes the registry entry).')
    .requiredOption('--email <address>', "the tenant administrator's email")
    .requiredOption('--company <name>', 'company name (the slug is made from it unless --slug)')
    .requiredOption('--plan <plan>', 'free | starter | pro | enterprise')
    .requiredOption('--model <model>', 'silo | bridge | pool')
    .requiredOption('--region <region>', 'AWS region, one of platform.yaml')
    .option('--residency <jurisdiction>', 'data residency: none | eu | us | ca | uk | au | jp (default none)')
    .option('--hipaa', 'stores PHI (requires silo)')
    .option('--pci', 'in PCI DSS scope (requires silo)')
    .option('--no-soc2', 'not in SOC 2 evidence')
    .option('--gdpr', 'holds personal data of EU data subjects (requires a residency)')
    .option('--slug <slug>', 'the slug to use instead of one made from the company name')
    .option('--subdomain <label>', 'label under the platform domain (default: the slug)')
    .option('--custom-domain <domain>', "the tenant's own domain")
    .option('--request-key <key>', 'idempotency key: the same key again returns the first request\'s tenant')
    .option('--payment-method <pm>', 'Stripe PaymentMethod collected at signup (pm_…); without it, a paid plan waits for Stripe Checkout')
    .option('--wait', 'wait until the job finishes and print the tenant\'s status')
    .option('--timeout <seconds>', 'longest --wait', seconds, 3600);
  addLifecycleOptions(command).action(async (options: OnboardCliOptions) => {
    process.exitCode = await runOnboard(options, io, usageFor('onboard', io));
  });
  command.addHelpText('after', '\nExit codes: 0 accepted (with --wait: active), 1 the job failed, or recorded but not queued (run the same command again), 2 invalid request or bad usage.');
}

async function runOnboard(options: OnboardCliOptions, io: MigrateCommandIo, usage: (message: string) => never): Promise<number> {
  const config = configFromOptions(options, io, usage);
  const request: OnboardingRequest = {
    email: options.email, company: options.company, plan: options.plan, model: options.model, region: options.region,
    ...(options.residency ? { dataResidency: options.residency } : {}),
    compliance: { hipaa: Boolean(options.hipaa), pci: Boolean(options.pci), soc2: options.soc2, gdpr: Boolean(options.gdpr) },
    ...(options.slug !== undefined ? { slug: options.slug } : {}),
    ...(options.subdomain !== undefined ? { subdomain: options.subdomain } : {}),
    ...(options.customDomain !== undefined ? { customDomain: options.customDomain } : {}),
    ...(options.requestKey !== undefined ? { requestKey: options.requestKey } : {}),
    ...(options.paymentMethod !== undefined ? { paymentMethod: options.paymentMethod } : {}),
  };
  const json = Boolean(options.json) || !io.stdout.isTTY;
  // Loaded here, not at the top: the other commands of the CLI start without the queue, Redis and billing.
  const { billingFromConfig } = await import('../onboarding/billing');
  const { bullJobId, LifecycleQueue, redisOptionsFromUrl } = await import('../onboarding/queue');
  const { OnboardingRequestError } = await import('../onboarding/request');
  const { LifecycleServices } = await import('../onboarding/services');
  const { tenantStatuses } = await import('../onboarding/status');
  const { NotQueuedError, submitOnboarding, submitterRedisOptions } = await import('../onboarding/submit');
  const services = await LifecycleServices.open(config, { billing: billingFromConfig(io.env) });
  // Submitting fails fast when Redis is unreachable (what is recorded stays, and is queued later);
  // waiting (--wait) uses a connection that rides out Redis restarts.
  const queue = new LifecycleQueue(submitterRedisOptions(config.redisUrl), config.queueName);
  queue.queue.on('error', () => undefined); // reported by the call that failed
  let waiter: InstanceType<typeof LifecycleQueue> | undefined;
  try {
    let submitted;
    try {
      submitted = await submitOnboarding(services, queue, request, { requestedBy: config.actor });
    } catch (e) {
      if (e instanceof OnboardingRequestError) {
        if (json) io.stdout.write(`${JSON.stringify({ type: 'rejected', problems: e.problems })}\n`);
        io.stderr.write(`tenancy onboard: ${e.message}\n`);
        return 2;
      }
      if (e instanceof RegistryError) {
        io.stderr.write(`tenancy onboard: the registry is invalid; fix it first:\n${e.message}\n`);
        return 2;
      }
      if (e instanceof NotQueuedError) {
        if (json) io.stdout.write(`${JSON.stringify({ type: 'recorded', tenantId: e.tenantId, slug: e.slug, job: e.job.id, queued: false })}\n`);
        io.stderr.write(`tenancy onboard: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    const accepted = { type: 'accepted', tenantId: submitted.tenantId, slug: submitted.slug, job: submitted.job.id, created: submitted.created, queue: submitted.queued };
    if (json) io.stdout.write(`${JSON.stringify(accepted)}\n`);
    else io.stdout.write(`${submitted.created ? 'Accepted' : 'Already requested'}: tenant ${submitted.slug} (${submitted.tenantId}), job ${submitted.job.id} ${submitted.queued.state}\n`);
    if (!options.wait) return 0;
    try {
      waiter = new LifecycleQueue(redisOptionsFromUrl(config.redisUrl), config.queueName);
      if (submitted.queued.state !== 'succeeded') await waiter.waitFor(bullJobId('onboard', submitted.tenantId), options.timeout * 1000);
    } catch (e) {
      io.stderr.write(`tenancy onboard: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    // This tenant's row: an offboarded tenant may have had the same slug before.
    const status = (await tenantStatuses(services.pool, submitted.slug)).find((s) => s.id === submitted.tenantId);
    if (json) io.stdout.write(`${JSON.stringify({ type: 'status', ...status })}\n`);
    else io.stdout.write(renderStatuses([status]));
    return status?.status === 'active' ? 0 : 1;
  } finally {
    await waiter?.close();
    await queue.close();
    await services.close();
  }
}
