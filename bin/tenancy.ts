#!/usr/bin/env node
// The `tenancy` CLI (package.json "bin"): the data-plane operations that run after `cdktf deploy`.
// Each command lives in lib/cli/<name>-command.ts and registers itself on the program.
import { Command, CommanderError } from 'commander';
import { registerAuditCommand } from '../lib/cli/audit-command';
import { registerAuditLogCommand } from '../lib/cli/audit-log-command';
import { registerComplianceCommand } from '../lib/cli/compliance-command';
import { registerFleetCommand } from '../lib/cli/fleet-command';
import { registerMigrateCommand } from '../lib/cli/migrate-command';
import { registerPostApplyCommand } from '../lib/cli/post-apply-command';
import { registerOffboardCommand } from '../lib/cli/offboard-command';
import { registerOnboardCommand } from '../lib/cli/onboard-command';
import { registerPlanCommand } from '../lib/cli/plan-command';
import { registerStatusCommand } from '../lib/cli/status-command';
import { registerUsageCommand } from '../lib/cli/usage-command';
import { registerWorkerCommand } from '../lib/cli/worker-command';
import { registerWebhooksCommand } from '../lib/cli/webhooks-command';

export function buildProgram(): Command {
  const program = new Command('tenancy')
    .description('Data-plane operations of a cdktf-tenancy platform: post-apply hooks, migrations, audits, compliance evidence.')
    .showHelpAfterError()
    .exitOverride();
  registerPostApplyCommand(program);
  registerMigrateCommand(program);
  registerAuditLogCommand(registerAuditCommand(program));
  registerComplianceCommand(program);
  registerOnboardCommand(program);
  registerOffboardCommand(program);
  registerPlanCommand(program);
  registerStatusCommand(program);
  registerUsageCommand(program);
  registerWorkerCommand(program);
  registerWebhooksCommand(program);
  registerFleetCommand(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code (0 ok, 1 a target or check failed, 2 bad usage or input). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
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
