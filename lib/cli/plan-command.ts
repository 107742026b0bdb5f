import { createInterface } from 'node:readline';
import { CommanderError, type Command } from 'commander';
import type { PlanChangeStatus } from '../billing';
import { tenantNames } from '../naming';
import { PLAN_PROFILES } from '../plans';
import type { Plan, TenancyModel } from '../registry/tenant-schema';
import { addLifecycleOptions, configFromOptions, defaultIo, usageFor, type LifecycleCliOptions } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/** What `tenancy plan` reads and writes: the CLI's streams, and stdin for the confirmation. */
export interface PlanCommandIo extends MigrateCommandIo {
  /** Where the answer to "Apply?" is read; a terminal only (without one, --yes is required). */
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

interface PlanCliOptions extends LifecycleCliOptions {
  yes?: boolean;
}

/**
 * `tenancy plan <slug> <plan>`: moves a tenant to another paid plan with a confirmed proration
 * preview (lib/onboarding/tenant-plan-change.ts). Prints the preview (proration lines, due now,
 * the next invoice), asks on a terminal (y/N; --yes in pipelines; neither: refused), then applies
 * it in Stripe with the previewed proration date, writes and commits the registry entry's plan,
 * and records the plan in the control plane with one audit entry. Exit 0 changed, 1 declined or
 * failed (after Stripe applied it: run the same command again to complete it), 2 bad usage, an
 * unknown tenant or plan, the same plan, a tenant not active, or no confirmation.
 */
export function registerPlanCommand(program: Command, io: PlanCommandIo = { ...defaultIo(), stdin: process.stdin }): void {
  const command = program
    .command('plan')
    .description("Change a tenant's paid plan: show the proration preview, confirm, apply it in Stripe, the registry and the control plane.")
    .argument('<slug>', 'the tenant')
    .argument('<plan>', 'the new plan: starter, pro or enterprise')
    .option('--yes', 'apply without asking (pipelines; required when stdin is not a terminal)');
  addLifecycleOptions(command).action(async (slug: string, plan: string, options: PlanCliOptions) => {
    process.exitCode = await runPlan(slug, plan, options, io, usageFor('plan', io));
  });
  command.addHelpText('after', '\nExit codes: 0 changed, 1 declined or failed (after Stripe applied it: run the same command again to complete it), 2 bad usage, unknown tenant or plan, same plan, not active, or no confirmation.');
}

async function runPlan(slug: string, plan: string, options: PlanCliOptions, io: PlanCommandIo, usage: (message: string) => never): Promise<number> {
  const config = configFromOptions(options, io, usage);
  const json = Boolean(options.json) || !io.stdout.isTTY;
  const { billingFromConfig } = await import('../onboarding/billing');
  const { LifecycleServices } = await import('../onboarding/services');
  const { applyPlanChange, auditAmounts, preparePlanChange, PlanChangeRefusedError } = await import('../onboarding/tenant-plan-change');
  const services = await LifecycleServices.open(config, { billing: billingFromConfig(io.env) });
  try {
    const planChanges = await services.billing?.planChanges?.(services.controlPlane);
    if (!planChanges) return usage('billing is not configured: set STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_REF');
    let change;
    try {
      change = await preparePlanChange(services, planChanges, slug, plan);
    } catch (e) {
      if (e instanceof PlanChangeRefusedError) return usage(e.message);
      throw e;
    }
    const amounts = auditAmounts(change.stripe);
    const summary = { slug, tenantId: change.tenantId, from: change.from, to: change.to, ...amounts, nextInvoiceAt: isoDate(amounts.nextInvoiceAt) };
    const infrastructure = infrastructureNote(slug, change.model, change.from, change.to);
    if (json) io.stdout.write(`${JSON.stringify({ type: change.stripe.kind === 'pending' ? 'preview' : 'resume', ...summary })}\n`);
    else io.stdout.write(renderPreview(change.stripe, summary));

    if (!options.yes) {
      if (!io.stdin?.isTTY) return usage('not applied: no terminal to confirm on; review the preview above and run the same command with --yes');
      if (!(await confirm(io, `Apply the change of ${slug} to ${change.to}? [y/N] `))) {
        io.stderr.write(`tenancy plan: not applied; nothing changed\n`);
        return 1;
      }
    }
    const outcome = await applyPlanChange(services, planChanges, change, config.actor);
    if (json) io.stdout.write(`${JSON.stringify({ type: 'changed', ...summary, stripe: outcome.stripe, registry: outcome.registry, controlPlane: outcome.controlPlane, next: infrastructure })}\n`);
    else {
      io.stdout.write(
        `Changed ${slug} to plan ${change.to}: Stripe ${outcome.stripe}, registry entry ${outcome.registry} (${change.registry}), control plane ${outcome.controlPlane} (audited).\n` +
          `${infrastructure}\n`,
      );
    }
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) throw e; // a usage error, reported already
    io.stderr.write(`tenancy plan: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    await services.close();
  }
}

/** Reads y/N from the terminal; anything but y or yes (or the end of input) is no. */
async function confirm(io: PlanCommandIo, question: string): Promise<boolean> {
  io.stderr.write(question);
  const rl = createInterface({ input: io.stdin!, terminal: false });
  try {
    // The first line is the answer; input that ends first is a no.
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function renderPreview(status: PlanChangeStatus, s: { slug: string; tenantId: string; from: string; to: string; subscription: string; prorationDate: number | null; currency: string; prorations: { description: string | null; amount: number }[]; prorationTotal: number; amountDueNow: number; nextInvoiceTotal: number; nextInvoiceAt: string }): string {
  const money = (amount: number) => formatMoney(amount, s.currency);
  const rows: [string, string][] = s.prorations.map((l) => [`  ${l.description ?? '(proration)'}`, money(l.amount)]);
  rows.push(['  Proration, net', money(s.prorationTotal)]);
  rows.push(['  Due now (prorations go on the next invoice)', money(s.amountDueNow)]);
  rows.push([`  Next invoice, ${s.nextInvoiceAt.slice(0, 10)}`, money(s.nextInvoiceTotal)]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const amountWidth = Math.max(...rows.map(([, amount]) => amount.length));
  const head = status.kind === 'pending'
    ? `Plan change of ${s.slug} (${s.tenantId}): ${s.from} -> ${s.to}\nSubscription ${s.subscription}, proration date ${s.prorationDate === null ? 'none' : isoDate(s.prorationDate)}\n`
    : `Stripe bills ${s.slug} (${s.tenantId}) on ${s.to} already (subscription ${s.subscription}): an earlier run stopped before recording it.\n` +
      `Completing the registry entry and the control plane (${s.from} -> ${s.to}); Stripe is not changed again. What that change left on the next invoice:\n`;
  return `${head}\n${rows.map(([label, amount]) => `${label.padEnd(width)}${amount.padStart(amountWidth)}`).join('\n')}\n\n`;
}

/** Minor units in the currency's format: 14729 usd → $147.29, -500 jpy → -¥500. */
export function formatMoney(amount: number, currency: string): string {
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() });
  return format.format(amount / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
}

const isoDate = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString().replace(/\.000Z$/, 'Z');

/**
 * What the new plan changes outside billing (lib/plans.ts), and who applies it: the tenant's stack
 * at its next `cdktf deploy`, the database role limits at the `post-apply` after that.
 */
function infrastructureNote(slug: string, model: TenancyModel, from: Plan, to: Plan): string {
  const a = PLAN_PROFILES[from];
  const b = PLAN_PROFILES[to];
  const diffs: string[] = [];
  const diff = (what: string, x: unknown, y: unknown) => {
    if (x !== y) diffs.push(`${what} ${String(x)} -> ${String(y)}`);
  };
  diff('namespace quota cpu', a.quota.cpu, b.quota.cpu);
  diff('memory', a.quota.memory, b.quota.memory);
  diff('pods', a.quota.pods, b.quota.pods);
  diff('replicas', a.replicas, b.replicas);
  diff('PgBouncer pool', a.pgbouncer.defaultPoolSize, b.pgbouncer.defaultPoolSize);
  if (model === 'silo') {
    diff('database instance', a.silo.instanceClass, b.silo.instanceClass);
    diff('backups (days)', a.silo.backupRetentionDays, b.silo.backupRetentionDays);
    diff('multi-AZ', a.silo.multiAz, b.silo.multiAz);
  }
  if (model !== 'pool') diff('database connection limit', a.databaseRole.connectionLimit, b.databaseRole.connectionLimit);
  return (
    `Infrastructure is not changed by this command: \`cdktf deploy ${tenantNames(slug).stack}\` applies the plan's ${diffs.length ? `infrastructure (${diffs.join(', ')})` : 'infrastructure'}, ` +
    'then `tenancy post-apply` its database role limits. Deploy before the next post-apply: a post-apply with the outputs of the old deploy would move the control plane and billing back.'
  );
}
