import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { guardedClient } from '../db/lost-connections';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { FleetPlanError, planFleet, STACK_CHANGES, type FleetPlan } from '../fleet/plan';
import { RegistryError } from '../registry/registry-error';
import { defaultIo } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy fleet`: operations on the whole fleet of stacks. A command group: each subcommand
 * registers itself on it (plan here; rollouts add theirs).
 *
 * `tenancy fleet plan`: which stacks a deploy would change, from the synthesized output and the
 * control plane's record of the last applies (lib/fleet/plan.ts), without Terraform. Exit codes:
 * 0 the plan was made, 1 it could not be (control plane, output), 2 bad usage; with
 * --detailed-exitcode as `terraform plan -detailed-exitcode`: 0 nothing to deploy, 2 something
 * new, changed or removed, 1 an error (bad usage found by the command itself included).
 */
interface FleetPlanCliOptions {
  outdir?: string;
  synth?: boolean;
  root?: string;
  controlPlaneUrl?: string;
  insecureNoTls?: boolean;
  json?: boolean;
  detailedExitcode?: boolean;
}

/** The `fleet` command group: created once, shared by every fleet subcommand. */
export function fleetCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'fleet')
    ?? program.command('fleet').description('Fleet operations: what changed since the last applies (plan), rollouts.');
}

export function registerFleetCommand(program: Command, io: MigrateCommandIo = defaultIo()): Command {
  const fleet = fleetCommand(program);
  fleet
    .command('plan')
    .description('List new, changed (with the reason), unchanged and removed stacks: the synthesized stacks against the control plane\'s record of the last applies. No Terraform runs.')
    .option('--outdir <dir>', 'synthesized output to read (default: <root>/cdktf.out)')
    .option('--synth', 'synthesize every stack into the output directory first')
    .option('--root <dir>', 'project root with platform.yaml and tenants/ (env TENANCY_ROOT; default: the working directory)')
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--insecure-no-tls', 'connect without TLS, local development only (env TENANCY_INSECURE_NO_TLS=1)')
    .option('--json', 'JSON lines: one object per stack, then a summary')
    .option('--detailed-exitcode', 'exit 0 when nothing is to deploy, 2 when a stack is new, changed or removed, 1 on an error')
    .addHelpText('after', '\nExit codes: 0 plan made, 1 error, 2 bad usage; with --detailed-exitcode 0 no changes, 1 error, 2 changes.')
    .action(async (options: FleetPlanCliOptions) => {
      process.exitCode = await runFleetPlan(options, io);
    });
  return fleet;
}

async function runFleetPlan(options: FleetPlanCliOptions, io: MigrateCommandIo): Promise<number> {
  const fail = (message: string, usage: boolean): number => {
    io.stderr.write(`tenancy fleet plan: ${message}\n`);
    if (usage && !options.detailedExitcode) throw new CommanderError(2, 'tenancy.usage', message);
    return 1;
  };
  const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
  if (!url) return fail('no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL', true);
  let config;
  try {
    config = controlPlaneConnection(url, { env: io.env, insecureNoTls: options.insecureNoTls || undefined, applicationName: 'tenancy-fleet-plan' });
  } catch (e) {
    if (e instanceof ControlPlaneTlsError) return fail(e.message, true);
    throw e;
  }
  const root = resolve(options.root ?? io.env.TENANCY_ROOT ?? process.cwd());
  const client = guardedClient(config);
  let plan: FleetPlan;
  try {
    await client.connect();
    plan = await planFleet({ db: client, root, outdir: options.outdir ? resolve(options.outdir) : undefined, synth: options.synth });
  } catch (e) {
    if (e instanceof FleetPlanError || e instanceof RegistryError) return fail(e.message, false);
    if ((e as { code?: string }).code === '42P01') return fail(`the control plane has no tenancy.applied_stacks: migrate it (tenancy migrate --control-plane, migration 0011) (${(e as Error).message})`, false);
    return fail((e as Error).message, false);
  } finally {
    await client.end().catch(() => undefined);
  }
  io.stdout.write(options.json ? jsonLines(plan) : render(plan));
  const changes = plan.summary.new + plan.summary.changed + plan.summary.removed;
  return options.detailedExitcode && changes > 0 ? 2 : 0;
}

function jsonLines(plan: FleetPlan): string {
  const lines = plan.stacks.map(({ artifact: _artifact, ...s }) => JSON.stringify({ type: 'stack', ...s }));
  lines.push(JSON.stringify({ type: 'summary', outdir: plan.outdir, stacks: plan.stacks.length, ...plan.summary }));
  return `${lines.join('\n')}\n`;
}

function render(plan: FleetPlan): string {
  const counts = STACK_CHANGES.map((c) => `${plan.summary[c]} ${c}`).join(', ');
  const lines = [`Fleet plan of ${plan.stacks.length} stacks (${plan.outdir}): ${counts}`];
  const width = Math.max(0, ...plan.stacks.filter((s) => s.change !== 'unchanged').map((s) => s.stack.length));
  for (const change of ['new', 'changed', 'removed'] as const) {
    for (const s of plan.stacks.filter((p) => p.change === change)) {
      lines.push(`  ${change.padEnd(8)} ${s.stack.padEnd(width)}${s.reasons.length ? `  ${s.reasons.join(', ')}` : ''}`.trimEnd());
    }
  }
  if (plan.summary.new + plan.summary.changed + plan.summary.removed === 0) lines.push('Nothing to deploy: every stack is as last applied.');
  return `${lines.join('\n')}\n`;
}
