import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cdktfStackArgs, runCommand } from '../onboarding/stack-deployer';
import { LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY } from './aws-api';

/**
 * `cdktf deploy|destroy` and `terraform plan` of synthesized stacks against a local AWS API.
 * The stacks are synthesized in-process (lib/app/synthesize.ts) into `<root>/cdktf.out`; these
 * run the cdktf CLI with `--skip-synth` in `root` (which gets a minimal cdktf.json).
 */

/** Provider mirror holding hashicorp/aws 5.100.0 (the only provider a local deploy installs). */
export const PROVIDER_MIRROR = process.env.TENANCY_TF_MIRROR ?? '/opt/tf-plugins';

/** The project root (node_modules/.bin/cdktf). */
const PACKAGE_ROOT = [join(__dirname, '..', '..'), join(__dirname, '..', '..', '..')].find((d) => existsSync(join(d, 'package.json'))) ?? process.cwd();

export interface LocalStackRunnerOptions {
  /** AWS_ENDPOINT_URL of the local API, e.g. moto's `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Project root holding platform.yaml, tenants/ and the synthesized cdktf.out. */
  readonly root: string;
  /** Where command logs and outputs files go. @default <root>/logs */
  readonly logDir?: string;
  /** Longest one cdktf/terraform command may run. @default 20 min */
  readonly timeoutMs?: number;
}

/** A failed cdktf/terraform command: its output's end holds the provider's error. */
export class LocalStackError extends Error {}

/**
 * The environment of every cdktf/terraform run against the local API: no inherited TF_* or AWS_*
 * settings (TF_CLI_CONFIG_FILE may point at a missing file globally), dummy keys, no metadata
 * service, the provider from the filesystem mirror only, no checkpoint calls, no prompts.
 */
export function localAwsEnv(endpoint: string, dir: string): NodeJS.ProcessEnv {
  mkdirSync(dir, { recursive: true });
  const cliConfig = join(dir, 'terraformrc');
  writeFileSync(
    cliConfig,
    `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(PROVIDER_MIRROR)}\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n`,
  );
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(TF_|AWS_|CDKTF_)/.test(k)) env[k] = v;
  return {
    ...env,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS_SECRET_ACCESS_KEY,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    TF_CLI_CONFIG_FILE: cliConfig,
    CHECKPOINT_DISABLE: '1',
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
  };
}

/**
 * Attributes moto does not return, so a second plan shows them as changes although nothing
 * changed: exactly these, per resource type (`<type>.<attribute>`), nothing broader.
 * - Performance Insights settings of DB instances and cluster instances;
 * - the `parameter` set of a DB parameter group (moto does not return the parameters' `Source`, so user parameters read back differently);
 * - `scaling_configuration` of a provisioned Aurora cluster.
 */
export const MOTO_PLAN_ALLOWLIST: readonly string[] = [
  'aws_db_instance.performance_insights_enabled',
  'aws_db_instance.performance_insights_kms_key_id',
  'aws_db_instance.performance_insights_retention_period',
  'aws_rds_cluster_instance.performance_insights_enabled',
  'aws_rds_cluster_instance.performance_insights_kms_key_id',
  'aws_db_parameter_group.parameter',
  'aws_rds_cluster.scaling_configuration',
];

export interface PlanDrift {
  /** `terraform plan -detailed-exitcode`: 0 no changes, 2 changes. */
  readonly exitCode: number;
  /** Changed attributes that are not on the allowlist: `<address>.<attribute> (<actions>)`; empty = the plan is empty. */
  readonly unexpected: readonly string[];
  /** Changed attributes on the allowlist (moto gaps). */
  readonly allowlisted: readonly string[];
}

export class LocalStackRunner {
  readonly env: NodeJS.ProcessEnv;
  readonly root: string;
  readonly logDir: string;

  constructor(private readonly options: LocalStackRunnerOptions) {
    this.root = resolve(options.root);
    this.logDir = options.logDir ?? join(this.root, 'logs');
    this.env = localAwsEnv(options.endpoint, this.logDir);
    // cdktf reads cdktf.json from its working directory; the app is never run (--skip-synth).
    const cdktfJson = join(this.root, 'cdktf.json');
    if (!existsSync(cdktfJson)) {
      writeFileSync(cdktfJson, `${JSON.stringify({ language: 'typescript', app: 'echo "synthesized in-process by lib/app/synthesize.ts"', sendCrashReports: 'false', terraformProviders: [], terraformModules: [], context: {} }, null, 2)}\n`);
    }
  }

  get outdir(): string {
    return join(this.root, 'cdktf.out');
  }

  /** The stack's Terraform working directory. */
  stackDir(stack: string): string {
    return join(this.outdir, 'stacks', stack);
  }

  private cdktf(args: readonly string[], log: string): Promise<string> {
    const bin = join(PACKAGE_ROOT, 'node_modules', '.bin', 'cdktf');
    return this.run(existsSync(bin) ? bin : 'cdktf', args, log);
  }

  private async run(command: string, args: readonly string[], log: string): Promise<string> {
    const logFile = join(this.logDir, log);
    try {
      return await runCommand(command, args, { cwd: this.root, env: this.env, logFile, timeoutMs: this.options.timeoutMs ?? 20 * 60_000 });
    } catch (e) {
      throw new LocalStackError(`${command.split('/').pop()} ${args.slice(0, 2).join(' ')} failed (log: ${logFile}):\n${(e as Error).message}`);
    }
  }

  /** `cdktf deploy <stack>`; resolves to the stack's outputs (from --outputs-file). */
  async deploy(stack: string): Promise<Record<string, unknown>> {
    const outputsFile = this.outputsFile(stack);
    // The onboarding job's flags (cdktfStackArgs), so a local deploy does the same Terraform work.
    await this.cdktf(cdktfStackArgs('deploy', stack, this.outdir, ['--outputs-file', outputsFile, '--outputs-file-include-sensitive-outputs']), `${stack}.deploy.log`);
    const all = JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, unknown>>;
    return all[stack] ?? {};
  }

  /** Where {@link deploy} writes the stack's outputs (`{ "<stack>": { … } }`, the post-apply input). */
  outputsFile(stack: string): string {
    return join(this.logDir, `${stack}.outputs.json`);
  }

  /** `cdktf destroy <stack>` (lift RDS deletion protection first: liftDeletionProtection). */
  async destroy(stack: string): Promise<void> {
    await this.cdktf(cdktfStackArgs('destroy', stack, this.outdir), `${stack}.destroy.log`);
  }

  /**
   * `terraform plan -detailed-exitcode` in the stack's directory (`cdktf diff` exits 0 even with
   * changes), read back with `terraform show -json`; changes on {@link MOTO_PLAN_ALLOWLIST} are
   * reported apart.
   */
  async plan(stack: string): Promise<PlanDrift> {
    const dir = this.stackDir(stack);
    const planFile = join(this.logDir, `${stack}.plan.bin`);
    const exitCode = await new Promise<number>((resolvePlan, reject) => {
      const child = spawn('terraform', ['plan', '-input=false', '-no-color', '-detailed-exitcode', `-out=${planFile}`], { cwd: dir, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += String(c)));
      child.stderr.on('data', (c: Buffer) => (output += String(c)));
      child.on('error', reject);
      child.on('exit', (code) => {
        writeFileSync(join(this.logDir, `${stack}.plan.log`), output);
        if (code === 0 || code === 2) resolvePlan(code);
        else reject(new LocalStackError(`terraform plan in ${dir} failed (exit ${code}):\n${output.slice(-4000)}`));
      });
    });
    if (exitCode === 0) return { exitCode, unexpected: [], allowlisted: [] };
    const shown = JSON.parse(await this.run('terraform', [`-chdir=${dir}`, 'show', '-json', planFile], `${stack}.show.log`));
    const unexpected: string[] = [];
    const allowlisted: string[] = [];
    for (const rc of shown.resource_changes ?? []) {
      const actions: string[] = rc.change?.actions ?? [];
      if (actions.every((a) => a === 'no-op' || a === 'read')) continue;
      if (!actions.includes('update')) {
        unexpected.push(`${rc.address} (${actions.join(', ')})`);
        continue;
      }
      const before = rc.change.before ?? {};
      const after = rc.change.after ?? {};
      const unknown = rc.change.after_unknown ?? {};
      for (const attr of new Set([...Object.keys(before), ...Object.keys(after)])) {
        if (JSON.stringify(before[attr]) === JSON.stringify(after[attr]) && !unknown[attr]) continue;
        const entry = `${rc.address}.${attr}`;
        (MOTO_PLAN_ALLOWLIST.includes(`${rc.type}.${attr}`) ? allowlisted : unexpected).push(entry);
      }
    }
    for (const [name, change] of Object.entries<any>(shown.output_changes ?? {})) {
      if (!(change.actions ?? []).every((a: string) => a === 'no-op')) unexpected.push(`output.${name}`);
    }
    return { exitCode, unexpected, allowlisted };
  }
}
