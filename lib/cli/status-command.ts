import Table from 'cli-table3';
import type { Command } from 'commander';
import { guardedPool } from '../db/lost-connections';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { assertSafeSlug } from '../naming';
import { tenantStatuses, type TenantStatusView } from '../onboarding/status';
import { defaultIo, usageFor } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy status [<slug>]`: lifecycle state, steps done, last error, migration version and Stripe
 * ids of every tenant (or one), from the control plane. A table, or JSON with --json. Exit 0,
 * 1 when a tenant's latest job failed or is stalled (its worker gone; it is retried), 2 bad usage
 * or an unknown tenant.
 */
export function registerStatusCommand(program: Command, io: MigrateCommandIo = defaultIo()): void {
  program
    .command('status')
    .description('Lifecycle status of every tenant (or one): state, steps done, last error, migration version, Stripe ids.')
    .argument('[slug]', 'only this tenant')
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--json', 'JSON on stdout')
    .action(async (slug: string | undefined, options: { controlPlaneUrl?: string; json?: boolean }) => {
      const usage = usageFor('status', io);
      const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
      if (!url) usage('no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL');
      if (slug !== undefined) {
        try {
          assertSafeSlug(slug, 'status');
        } catch (e) {
          usage((e as Error).message);
        }
      }
      let config;
      try {
        config = controlPlaneConnection(url!, { env: io.env, applicationName: 'tenancy-status' });
      } catch (e) {
        if (e instanceof ControlPlaneTlsError) usage(e.message);
        throw e;
      }
      const pool = guardedPool({ ...config, max: 1 });
      try {
        const statuses = await tenantStatuses(pool, slug);
        if (slug !== undefined && statuses.length === 0) usage(`no tenant ${slug} in the control plane`);
        if (options.json) io.stdout.write(`${JSON.stringify(slug !== undefined ? statuses[0] : statuses, null, 2)}\n`);
        else io.stdout.write(renderStatuses(statuses));
        const latestFailed = statuses.some((s) => s.jobs.length > 0 && ['failed', 'stalled'].includes(s.jobs[s.jobs.length - 1].status));
        process.exitCode = latestFailed ? 1 : 0;
      } finally {
        await pool.end();
      }
    });
}

export function renderStatuses(statuses: readonly (TenantStatusView | undefined)[]): string {
  const table = new Table({
    head: ['tenant', 'model / plan', 'status', 'job', 'steps done', 'last error', 'migration', 'stripe'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [32, 18, 13, 22, 34, 30, 11, 31],
  });
  for (const s of statuses) {
    if (!s) continue;
    const job = s.jobs[s.jobs.length - 1];
    table.push([
      s.slug,
      `${s.model} / ${s.plan}`,
      s.billing?.graceUntil && s.status === 'past_due' ? `${s.status}\ngrace until ${s.billing.graceUntil.slice(0, 10)}` : s.status,
      job ? `${job.kind}: ${job.status}${job.attempts > 1 ? ` (${job.attempts} attempts)` : ''}` : '-',
      job ? `${job.stepsDone.length}: ${job.stepsDone.join(', ') || '-'}${job.nextStep ? `\nnext: ${job.nextStep}` : ''}` : '-',
      s.lastError ?? '-',
      s.migration.version === null ? '-' : `v${s.migration.version}`,
      (s.stripe.customerId || s.stripe.subscriptionId ? `${s.stripe.customerId ?? '-'}\n${s.stripe.subscriptionId ?? '-'}` : '-') +
        (s.billing?.planMismatch ? `\nplan mismatch: ${s.billing.planMismatch}` : ''),
    ]);
  }
  return `${table.toString()}\n`;
}
