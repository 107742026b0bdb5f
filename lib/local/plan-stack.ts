import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { synthesize } from '../app/synthesize';
import { tenantNames } from '../naming';
import { closestName } from '../registry/closest-name';
import { loadRegistry } from '../registry/load-registry';
import { RegistryError } from '../registry/registry-error';
import type { Tenant } from '../registry/tenant-schema';
import { awsProjection, AwsProjectionError } from './aws-projection';

/** Default provider mirror (the one the tests and the local deploy use). */
export const DEFAULT_PROVIDER_MIRROR = '/opt/tf-plugins';

/** What `npm run plan` writes to and reads from. */
export interface PlanStackIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
  /** The environment terraform runs in (PATH finds it; TF_* and AWS_* are not passed on). */
  readonly env: NodeJS.ProcessEnv;
}

export interface PlanStackOptions {
  /** The stack to plan: `tenant-<slug>`, `platform-<region>`, or a tenant's slug. */
  readonly stack: string;
  /** Project root holding platform.yaml and tenants/. @default process.cwd() */
  readonly root?: string;
  /** Filesystem provider mirror. @default $TENANCY_TF_MIRROR, else /opt/tf-plugins */
  readonly mirror?: string;
  /** Exit 2 when the plan has changes (terraform's -detailed-exitcode); otherwise 0 either way. @default false */
  readonly detailedExitcode?: boolean;
}

/** A problem the user can fix (unknown stack, no terraform, no mirror, bad registry): printed without a stack trace. */
class PlanStackError extends Error {}

/** AWS provider arguments that would make it call AWS (or read local profiles) while configuring. */
const ONLINE_PROVIDER_ARGS = ['profile', 'shared_config_files', 'shared_credentials_files', 'assume_role', 'assume_role_with_web_identity', 'token'];

/**
 * `npm run plan -- <stack>`: plans one stack offline, with providers from the filesystem mirror
 * only. Synthesizes just that stack (into a temporary directory, so cdktf.out is left as it is),
 * keeps its AWS part (the Kubernetes side needs the helm provider and the cluster's data sources,
 * which need AWS: they are listed, not planned), gives the AWS provider dummy keys and its skip_*
 * flags, and runs `terraform init` and `terraform plan -refresh=false` against the stack's local
 * state file (an S3 backend cannot be read offline: an empty state then). Nothing is refreshed
 * from AWS, so the plan compares the configuration with the state as last recorded.
 *
 * Resolves to the exit code: 0 planned (no changes, or changes without --detailed-exitcode),
 * 2 changes with --detailed-exitcode, 1 an error (named on stderr).
 */
export async function planStack(options: PlanStackOptions, io: PlanStackIo): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'tenancy-plan-stack-'));
  try {
    return await planIn(work, options, io);
  } catch (e) {
    if (e instanceof PlanStackError || e instanceof RegistryError || e instanceof AwsProjectionError) {
      io.stderr.write(`plan: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function planIn(work: string, options: PlanStackOptions, io: PlanStackIo): Promise<number> {
  const root = resolve(options.root ?? process.cwd());
  const mirror = resolve(options.mirror ?? io.env.TENANCY_TF_MIRROR ?? DEFAULT_PROVIDER_MIRROR);
  checkTerraform(io.env);
  checkMirror(mirror);

  const registry = loadRegistry({ root });
  const { stack, select } = resolveStack(options.stack, registry.tenants, registry.platform.controlPlaneRegion);
  const outdir = join(work, 'cdktf.out');
  synthesize({ root, outdir, select, registry });
  const stackDir = join(outdir, 'stacks', stack);
  const synthesized = JSON.parse(readFileSync(join(stackDir, 'cdk.tf.json'), 'utf8')) as Record<string, any>;

  const { stack: json, dropped } = awsProjection(synthesized);
  const state = offlineState(json, root, stack, work);
  makeProviderOffline(json);
  writeFileSync(join(stackDir, 'cdk.tf.json'), JSON.stringify(json, null, 2));

  io.stderr.write(`plan: ${stack} offline (providers from ${mirror}; ${state.note}; nothing refreshed from AWS)\n`);
  const notPlanned = [...dropped.resources, ...dropped.dataSources];
  if (notPlanned.length > 0) io.stderr.write(`plan: not planned offline (the Kubernetes side needs the cluster): ${notPlanned.join(', ')}\n`);

  const env = terraformEnv(io.env, writeCliConfig(work, mirror));
  const color = io.stdout.isTTY ? [] : ['-no-color'];
  const init = await terraform(['init', '-input=false', '-no-color'], stackDir, env);
  if (init.code !== 0) throw new PlanStackError(`terraform init of ${stack} failed (providers come from ${mirror} only):\n${init.output.trim()}`);
  const plan = await terraform(['plan', '-input=false', '-refresh=false', '-lock=false', '-detailed-exitcode', ...color], stackDir, env, io.stdout);
  if (plan.code !== 0 && plan.code !== 2) throw new PlanStackError(`terraform plan of ${stack} failed (exit ${plan.code}):\n${plan.output.trim()}`);
  return plan.code === 2 && options.detailedExitcode ? 2 : 0;
}

/** `tenant-acme` (or `acme`) → the tenant's selector; `platform-<region>` → the platform stacks. */
function resolveStack(name: string, tenants: readonly Tenant[], controlPlaneRegion: string): { stack: string; select: string } {
  const live = tenants.filter((t) => t.status !== 'offboarded');
  const regions = [...new Set([controlPlaneRegion, ...live.map((t) => t.region)])];
  const stacks = new Map<string, string>([
    ...live.map((t): [string, string] => [tenantNames(t.slug).stack, t.slug]),
    ...regions.map((r): [string, string] => [`platform-${r}`, 'platform']),
  ]);
  const bySlug = live.find((t) => t.slug === name);
  if (bySlug) return { stack: tenantNames(bySlug.slug).stack, select: bySlug.slug };
  const select = stacks.get(name);
  if (select) return { stack: name, select };
  const offboarded = tenants.find((t) => t.status === 'offboarded' && (t.slug === name || tenantNames(t.slug).stack === name));
  if (offboarded) throw new PlanStackError(`tenant ${offboarded.slug} is offboarded and has no stack`);
  const known = [...stacks.keys()].sort();
  const suggestion = closestName(name, known);
  throw new PlanStackError(
    `no stack ${JSON.stringify(name)}${suggestion ? ` (did you mean ${suggestion}?)` : ''}; the stacks are: ${known.join(', ') || '(none: the registry has no tenants)'}`,
  );
}

function checkTerraform(env: NodeJS.ProcessEnv): void {
  const result = spawnSync('terraform', ['version'], { env, stdio: 'ignore' });
  if (result.error) throw new PlanStackError('terraform is not on the PATH: install Terraform >= 1.10 (https://developer.hashicorp.com/terraform/install)');
}

function checkMirror(mirror: string): void {
  const aws = join(mirror, 'registry.terraform.io', 'hashicorp', 'aws');
  if (!existsSync(aws) || readdirSync(aws).length === 0) {
    throw new PlanStackError(`no provider mirror with hashicorp/aws at ${mirror}: set TENANCY_TF_MIRROR (or --mirror) to a filesystem mirror (terraform providers mirror <dir>)`);
  }
}

/**
 * Points the stack at the state an offline plan can read: a local backend's own file (the path
 * cdktf wrote is relative to cdktf.out/stacks/<stack>), otherwise an empty state in `work`.
 */
function offlineState(json: Record<string, any>, root: string, stack: string, work: string): { note: string } {
  json.terraform = { ...json.terraform };
  delete json.terraform.cloud;
  const local = json.terraform.backend?.local?.path as string | undefined;
  if (local) {
    const path = isAbsolute(local) ? local : resolve(root, 'cdktf.out', 'stacks', stack, local);
    json.terraform.backend = { local: { path } };
    return { note: existsSync(path) ? `state ${path}` : `empty state (no ${path} yet)` };
  }
  const kind = Object.keys(json.terraform.backend ?? {})[0];
  json.terraform.backend = { local: { path: join(work, 'terraform.tfstate') } };
  return { note: `empty state (the ${kind ?? 'remote'} backend is not read offline)` };
}

/** Dummy keys and no AWS calls while configuring the provider (what test/support/terraform.ts does). */
function makeProviderOffline(json: Record<string, any>): void {
  const aws = json.provider?.aws;
  for (const provider of Array.isArray(aws) ? aws : aws ? [aws] : []) {
    for (const arg of ONLINE_PROVIDER_ARGS) delete provider[arg];
    Object.assign(provider, {
      access_key: 'offline-plan',
      secret_key: 'offline-plan',
      skip_credentials_validation: true,
      skip_requesting_account_id: true,
      skip_metadata_api_check: true,
    });
  }
}

function writeCliConfig(work: string, mirror: string): string {
  const file = join(work, 'terraformrc');
  writeFileSync(file, `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(mirror)}\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n`);
  return file;
}

/** No inherited TF_* or AWS_* settings (a TF_CLI_CONFIG_FILE or AWS profile would take over), no prompts, no checkpoint calls. */
function terraformEnv(env: NodeJS.ProcessEnv, cliConfig: string): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!/^(TF_|AWS_)/.test(k)) clean[k] = v;
  return { ...clean, TF_CLI_CONFIG_FILE: cliConfig, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0', AWS_EC2_METADATA_DISABLED: 'true' };
}

/** Runs terraform; its output is kept (for errors) and, given `echo`, streamed there too. */
function terraform(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, echo?: NodeJS.WritableStream): Promise<{ code: number; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn('terraform', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (chunk: Buffer) => {
      output += String(chunk);
      echo?.write(chunk);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', (chunk: Buffer) => (output += String(chunk)));
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code: code ?? (signal ? 1 : 0), output }));
  });
}
