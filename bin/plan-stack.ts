// `npm run plan -- <stack> [--detailed-exitcode]`: plan one stack offline with the local provider mirror (lib/local/plan-stack.ts).
import { Command, CommanderError } from 'commander';
import { DEFAULT_PROVIDER_MIRROR, planStack } from '../lib/local/plan-stack';

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('npm run plan --')
    .description(
      'Plan one stack offline: synthesize it, install providers from the local filesystem mirror, and run terraform plan.\n' +
        'No AWS credentials are used and nothing is refreshed from AWS: the plan compares the configuration with the stack\'s ' +
        'local state file as last recorded (an empty state when there is none, or the backend is S3), so on a fresh project ' +
        'it shows everything as to be created. The Kubernetes side (helm releases) is listed, not planned: it needs the cluster.',
    )
    .argument('<stack>', 'tenant-<slug> (or the slug), or platform-<region>')
    .option('--detailed-exitcode', 'exit 2 when the plan has changes, 0 when none (as terraform plan -detailed-exitcode; cdktf diff exits 0 either way)')
    .option('--root <dir>', 'project root with platform.yaml and tenants/', '.')
    .option('--mirror <dir>', `filesystem provider mirror (env TENANCY_TF_MIRROR; default ${DEFAULT_PROVIDER_MIRROR})`)
    .addHelpText('after', '\nExit codes: 0 planned (no changes, or changes without --detailed-exitcode), 2 changes with --detailed-exitcode, 1 an error.')
    .showHelpAfterError()
    .exitOverride();
  let code = 0;
  program.action(async (stack: string, options: { detailedExitcode?: boolean; root: string; mirror?: string }) => {
    code = await planStack({ stack, ...options }, { stdout: process.stdout, stderr: process.stderr, env: process.env });
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`plan: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
