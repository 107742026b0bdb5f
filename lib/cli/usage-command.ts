import Table from 'cli-table3';
import type { Command } from 'commander';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { guardedPool } from '../db/lost-connections';
import { assertSafeSlug } from '../naming';
import type { UsageReport } from '../metering/usage-store';
import type { UsageRunSummary } from '../metering/usage-reporter';
import { addLifecycleOptions, configFromOptions, defaultIo, usageFor, type LifecycleCliOptions } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy usage report`: one run of the usage report the worker runs hourly (lib/metering):
 * closed hours of API calls from Redis, yesterday's storage (TENANCY_USAGE_BUCKET), last month's
 * active seats, each window sent once to Stripe Meters and recorded in the control plane. Exit 0,
 * 1 when a window failed or is unconfirmed, 2 bad usage. A run while another runs is skipped (exit 0, said).
 *
 * `tenancy usage show <slug>`: the tenant's recorded reports (window, dimension, value, status,
 * identifier, error), newest first. Exit 0, 2 bad usage or an unknown tenant.
 */
export function registerUsageCommand(program: Command, io: MigrateCommandIo = defaultIo()): void {
  const usage = program.command('usage').description('Usage metering: report closed windows to Stripe Meters, show what was reported.');

  addLifecycleOptions(
    usage.command('report').description('Report every closed, unreported usage window now (what the worker does hourly).'),
  ).action(async (options: LifecycleCliOptions) => {
    const fail = usageFor('usage report', io);
    const config = configFromOptions(options, io, fail);
    const { LifecycleServices } = await import('../onboarding/services');
    const { runUsageReport, usagePartsOf, UsageConfigError } = await import('../metering/usage-job');
    const services = await LifecycleServices.open(config);
    try {
      let summary: UsageRunSummary | { skipped: string };
      try {
        summary = await runUsageReport(usagePartsOf(services), io.env);
      } catch (e) {
        if (e instanceof UsageConfigError) return fail(e.message);
        throw e;
      }
      const json = options.json ?? !(io.stdout as { isTTY?: boolean }).isTTY;
      io.stdout.write(json ? `${JSON.stringify(summary, null, 2)}\n` : renderRun(summary));
      const problems = 'dimensions' in summary ? Object.values(summary.dimensions).some((d) => d.failed > 0 || d.unconfirmed > 0) : false;
      process.exitCode = problems ? 1 : 0;
    } finally {
      await services.close();
    }
  });

  usage
    .command('show')
    .description("A tenant's recorded usage reports, newest window first.")
    .argument('<slug>', 'the tenant')
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--limit <n>', 'most reports shown', (v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 100_000) throw new Error('--limit must be an integer from 1 to 100000');
      return Number(v);
    }, 500)
    .option('--json', 'JSON on stdout')
    .action(async (slug: string, options: { controlPlaneUrl?: string; limit: number; json?: boolean }) => {
      const fail = usageFor('usage show', io);
      try {
        assertSafeSlug(slug, 'usage show');
      } catch (e) {
        fail((e as Error).message);
      }
      const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
      if (!url) fail('no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL');
      let config;
      try {
        config = controlPlaneConnection(url!, { env: io.env, applicationName: 'tenancy-usage' });
      } catch (e) {
        if (e instanceof ControlPlaneTlsError) fail(e.message);
        throw e;
      }
      const pool = guardedPool({ ...config, max: 1 });
      try {
        // The live tenant with the slug, else the newest offboarded one (slugs are reused after offboarding).
        const { rows } = await pool.query<{ id: string }>(
          "SELECT id::text AS id FROM tenancy.tenants WHERE slug = $1 ORDER BY (status <> 'offboarded') DESC, created_at DESC LIMIT 1",
          [slug],
        );
        if (rows.length === 0) fail(`no tenant ${slug} in the control plane`);
        const { UsageReportStore } = await import('../metering/usage-store');
        const reports = await new UsageReportStore(pool).forTenant(rows[0].id, options.limit);
        io.stdout.write(options.json ? `${JSON.stringify({ slug, tenantId: rows[0].id, reports }, null, 2)}\n` : renderReports(reports));
        process.exitCode = 0;
      } finally {
        await pool.end();
      }
    });
}

function renderRun(summary: UsageRunSummary | { skipped: string }): string {
  if ('skipped' in summary && summary.skipped) return `usage report skipped: ${summary.skipped}\n`;
  const s = summary as UsageRunSummary;
  const table = new Table({ head: ['dimension', 'reported', 'value', 'already reported', 'failed', 'unconfirmed'], style: { head: [], border: [] } });
  for (const [name, d] of Object.entries(s.dimensions)) table.push([name, d.reported, d.value, d.alreadyReported, d.failed, d.unconfirmed]);
  const lines = [`${table.toString()}`];
  if (s.noCustomer.length > 0) lines.push(`no Stripe customer (not reported): ${s.noCustomer.join(', ')}`);
  for (const e of s.errors) lines.push(`error: ${e}`);
  return `${lines.join('\n')}\n`;
}

function renderReports(reports: readonly UsageReport[]): string {
  if (reports.length === 0) return 'no usage reports recorded\n';
  const table = new Table({ head: ['window (UTC)', 'dimension', 'value', 'status', 'identifier', 'error'], style: { head: [], border: [] } });
  for (const r of reports) {
    table.push([
      `${r.windowStart.toISOString().slice(0, 16)} – ${r.windowEnd.toISOString().slice(0, 16)}`,
      r.dimension,
      r.value ?? '-',
      r.status,
      r.identifier,
      r.error ?? '-',
    ]);
  }
  return `${table.toString()}\n`;
}
