#!/usr/bin/env node
// The `tenancy` CLI (package.json "bin"): the data-plane operations that run after `cdktf deploy`.
// Each command lives in lib/cli/<name>-command.ts and registers itself on the program.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Help, type Option } from 'commander';
import { adoptCurrentEnvNames } from '../lib/cli/env-names';
/**
 * Every command: the name it runs by, and its registration, which loads its module only when
 * called. `tenancy <name> …` loads only that command's modules (`tenancy migrate` starts in
 * ~0.15 s instead of ~0.8 s: the other commands pull in cdktf, Stripe, BullMQ, …); help, no name
 * or an unknown name loads them all. One line per command (several for one name register in order).
 */
const COMMANDS: readonly { readonly name: string; readonly register: (program: Command) => void }[] = [
  { name: 'post-apply', register: (p) => (require('../lib/cli/post-apply-command') as typeof import('../lib/cli/post-apply-command')).registerPostApplyCommand(p) },
  { name: 'migrate', register: (p) => (require('../lib/cli/migrate-command') as typeof import('../lib/cli/migrate-command')).registerMigrateCommand(p) },
  {
    name: 'audit',
    register: (p) => (require('../lib/cli/audit-log-command') as typeof import('../lib/cli/audit-log-command')).registerAuditLogCommand(
      (require('../lib/cli/audit-command') as typeof import('../lib/cli/audit-command')).registerAuditCommand(p),
    ),
  },
  { name: 'compliance', register: (p) => (require('../lib/cli/compliance-command') as typeof import('../lib/cli/compliance-command')).registerComplianceCommand(p) },
  { name: 'onboard', register: (p) => (require('../lib/cli/onboard-command') as typeof import('../lib/cli/onboard-command')).registerOnboardCommand(p) },
  { name: 'offboard', register: (p) => (require('../lib/cli/offboard-command') as typeof import('../lib/cli/offboard-command')).registerOffboardCommand(p) },
  { name: 'plan', register: (p) => (require('../lib/cli/plan-command') as typeof import('../lib/cli/plan-command')).registerPlanCommand(p) },
  { name: 'status', register: (p) => (require('../lib/cli/status-command') as typeof import('../lib/cli/status-command')).registerStatusCommand(p) },
  { name: 'usage', register: (p) => (require('../lib/cli/usage-command') as typeof import('../lib/cli/usage-command')).registerUsageCommand(p) },
  { name: 'worker', register: (p) => (require('../lib/cli/worker-command') as typeof import('../lib/cli/worker-command')).registerWorkerCommand(p) },
  { name: 'webhooks', register: (p) => (require('../lib/cli/webhooks-command') as typeof import('../lib/cli/webhooks-command')).registerWebhooksCommand(p) },
  { name: 'fleet', register: (p) => (require('../lib/cli/fleet-command') as typeof import('../lib/cli/fleet-command')).registerFleetCommand(p) },
  { name: 'fleet', register: (p) => (require('../lib/cli/fleet-rollout-command') as typeof import('../lib/cli/fleet-rollout-command')).registerFleetRolloutCommand(p) },
];

/** package.json's version, from bin/ (sources) or dist/bin/ (compiled). */
export function packageVersion(): string {
  for (const dir of [join(__dirname, '..'), join(__dirname, '..', '..')]) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // not this directory
    }
  }
  return 'unknown';
}

/** Help that says which options are required (commander shows them like any other option). */
function markRequired(option: Option, help: Help): string {
  const description = Help.prototype.optionDescription.call(help, option);
  return option.mandatory ? `(required) ${description}` : description;
}

/** The program with every command, or (`name` given and known) with that command only. */
export function buildProgram(name?: string): Command {
  const program = new Command('tenancy')
    .description('Data-plane operations of a cdktf-tenancy platform: post-apply hooks, migrations, audits, compliance evidence.')
    .version(packageVersion(), '-V, --version', 'print the version (package.json)')
    // Before the commands register: subcommands copy the help configuration when created.
    .configureHelp({ optionDescription(option) { return markRequired(option, this as Help); } })
    .showHelpAfterError()
    .exitOverride();
  const only = COMMANDS.filter((c) => c.name === name);
  // `--version` needs no command (and loading them all would take most of its time).
  if (name === '--version' || name === '-V') return program;
  for (const command of only.length ? only : COMMANDS) command.register(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code (0 ok, 1 a target or check failed, 2 bad usage or input). */
export async function main(argv: readonly string[]): Promise<number> {
  adoptCurrentEnvNames(process.env, process.stderr);
  const program = buildProgram(argv[0]);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    process.stderr.write(`tenancy: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
