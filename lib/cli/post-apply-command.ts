import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Table from 'cli-table3';
import { CommanderError, type Command } from 'commander';
import type { Pool, PoolConfig } from 'pg';
import { guardedPool } from '../db/lost-connections';
import { billingHook } from '../billing/billing-hook';
import type { BillingProfile } from '../billing/billing-tenant';
import { ControlPlane } from '../control-plane/control-plane';
import { controlPlaneConnection as controlPlaneUrlConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { recordDeployedStacks, type DeployedStack } from '../fleet/applied-stacks';
import { builtinHooks } from '../hooks/builtin-hooks';
import { DatabaseConnector } from '../hooks/database-connector';
import { applyDatabaseHostMap, DatabaseHostMapError, parseDatabaseHostMap } from '../hooks/database-host-map';
import { DeployOutputsError, parseDeployOutputs, type DeployOutputs } from '../hooks/deploy-outputs';
import { runPostApply, type HookOutcome } from '../hooks/post-apply';
import { loadMigrationSets, MigrationLoadError, type MigrationSets } from '../migrate/migration-set';
import { FAILING_STATUSES } from '../migrate/result';
import { migrateTargets } from '../migrate/runner';
import { controlPlaneTarget } from '../migrate/targets';
import { tenantNames } from '../naming';
import { loadRegistry } from '../registry/load-registry';
import { AwsSecretsManagerResolver, FileSecretResolver, type SecretResolver } from '../runtime/secret-resolver';
import { defaultMigrationsDir, type MigrateCommandIo } from './migrate-command';
import { adoptCurrentEnvNames } from './env-names';

/**
 * `tenancy post-apply`: after `cdktf deploy --outputs-file`, registers, provisions and migrates
 * every deployed tenant (docs/DATA-PLANE.md, "Post-apply hooks"). Exit code 0 when every hook
 * succeeded or was unchanged, 1 when one failed, 2 for bad usage or input.
 */
interface PostApplyCliOptions {
  outputs: string[];
  tenant: string[];
  controlPlaneUrl?: string;
  secretsFile?: string;
  sslCa?: string;
  insecureNoTls?: boolean;
  databaseHostMap: string[];
  migrations: string;
  force?: boolean;
  json?: boolean;
  actor?: string;
  registry: string;
  checkoutSuccessUrl?: string;
  checkoutCancelUrl?: string;
  outdir?: string;
  recordStacks: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerPostApplyCommand(program: Command, io: MigrateCommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): void {
  program
    .command('post-apply')
    .description('Run the post-apply hooks (register, provision, migrate, activate, billing) for every tenant in cdktf deploy outputs.')
    .requiredOption('--outputs <file>', 'outputs file of `cdktf deploy --outputs-file` (repeatable: tenant and platform stacks)', collect, [])
    .option('--tenant <slug>', 'only this tenant (repeatable)', collect, [])
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL; default: the control_plane_* outputs of the platform stacks)')
    .option('--secrets-file <file>', 'JSON map of secret references to {username, password} (local runs; default: AWS Secrets Manager)')
    .option('--ssl-ca <file>', 'CA bundle that signs the database certificates (RDS: the region\'s bundle; default: the system CAs)')
    .option('--insecure-no-tls', 'connect to the databases without TLS (local development only)')
    .option('--database-host-map <pattern=host:port>', 'connect to this host instead of the database hosts the outputs name, e.g. "*.rds.amazonaws.com=localhost:5432" (repeatable; env TENANCY_DATABASE_HOST_MAP; local AWS APIs only)', collect, [])
    .option('--migrations <dir>', 'directory holding tenant/, pool/ and control-plane/', defaultMigrationsDir())
    .option('--force', 'run every hook even when its input did not change (e.g. after a password rotation)')
    .option('--registry <root>', 'project root with platform.yaml and tenants/: the billing hook takes each tenant\'s adminEmail and company from it', '.')
    .option('--checkout-success-url <url>', 'Stripe Checkout return URL for paid plans without a payment method (env TENANCY_BILLING_SUCCESS_URL)')
    .option('--checkout-cancel-url <url>', 'Stripe Checkout cancel URL (env TENANCY_BILLING_CANCEL_URL)')
    .option('--outdir <dir>', 'synthesized output the deploy applied: each deployed stack\'s content hash is recorded for `tenancy fleet plan` (default: <registry>/cdktf.out)')
    .option('--no-record-stacks', 'do not record the deployed stacks\' content hashes')
    .option('--json', 'JSON lines on stdout (the default when stdout is not a terminal)')
    .option('--actor <name>', 'who runs this, recorded in the audit log (default: $TENANCY_ACTOR or $USER)')
    .action(async (options: PostApplyCliOptions) => {
      const usage = (message: string): never => {
        io.stderr.write(`tenancy post-apply: ${message}\n`);
        throw new CommanderError(2, 'tenancy.usage', message);
      };
      process.exitCode = await runPostApplyCommand(options, io, usage);
    })
    .addHelpText('after', '\nExit codes: 0 every hook succeeded or was unchanged, 1 a hook failed, 2 bad usage or input.');
}

async function runPostApplyCommand(options: PostApplyCliOptions, io: MigrateCommandIo, usage: (message: string) => never): Promise<number> {
  const checkout = checkoutUrls(options, adoptCurrentEnvNames({ ...io.env }, io.stderr), usage);
  let outputs = readOutputs(options.outputs, usage);
  try {
    outputs = applyDatabaseHostMap(outputs, parseDatabaseHostMap([...(options.databaseHostMap ?? []), ...(io.env.TENANCY_DATABASE_HOST_MAP ? [io.env.TENANCY_DATABASE_HOST_MAP] : [])]));
  } catch (e) {
    if (e instanceof DatabaseHostMapError) usage(e.message);
    throw e;
  }
  let migrations: MigrationSets;
  try {
    migrations = loadMigrationSets(resolve(options.migrations));
  } catch (e) {
    if (e instanceof MigrationLoadError) usage(e.message);
    throw e;
  }
  const unknown = options.tenant.filter((slug) => !outputs.tenants.some((t) => t.slug === slug));
  if (unknown.length > 0) usage(`--tenant ${unknown.join(', ')}: no such tenant stack in the outputs`);

  const secrets: SecretResolver = options.secretsFile ? new FileSecretResolver(options.secretsFile) : new AwsSecretsManagerResolver();
  const databases = new DatabaseConnector({ secrets, sslCaFile: options.sslCa, insecureNoTls: options.insecureNoTls, applicationName: 'tenancy-post-apply' });
  const actor = options.actor ?? io.env.TENANCY_ACTOR ?? io.env.USER ?? 'tenancy';
  const controlPlaneConfig = await controlPlaneConnection(options, io, outputs, databases, usage);

  // The control plane's own schema first: everything below records into it.
  const cpRun = await migrateTargets({ targets: [controlPlaneTarget({ connection: controlPlaneConfig })], migrations, concurrency: 1 });
  const cp = cpRun.results[0];
  if (!cp || FAILING_STATUSES.has(cp.status)) {
    io.stderr.write(`tenancy post-apply: migrating the control plane failed: ${cp?.error ?? cp?.status ?? 'no result'}\n`);
    return 1;
  }

  const json = Boolean(options.json) || !io.stdout.isTTY;
  const pool = guardedPool({ ...controlPlaneConfig, max: 2 });
  try {
    const controlPlane = new ControlPlane(pool, actor);
    // A failed record does not keep the hooks from running; it fails the command (fleet plan would be wrong).
    const recordFailed = options.recordStacks !== false && await recordApplied(options, io, outputs, pool, actor, json, usage).then(() => false, (e: unknown) => {
      if (e instanceof CommanderError) throw e;
      io.stderr.write(`tenancy post-apply: recording the deployed stacks failed: ${e instanceof Error ? e.message : String(e)}\n`);
      return true;
    });
    const outcomes = await runPostApply({
      outputs, controlPlane, databases, hooks: [...builtinHooks(migrations), billing(options, io, checkout, usage)], tenants: options.tenant, force: options.force,
      onOutcome: (o) => {
        if (json) io.stdout.write(`${JSON.stringify({ type: 'hook', ...o })}\n`);
      },
    });
    const failed = outcomes.filter((o) => o.status === 'failed' || o.status === 'not-run');
    if (json) io.stdout.write(`${JSON.stringify({ type: 'summary', tenants: new Set(outcomes.map((o) => o.tenant)).size, ...countBy(outcomes) })}\n`);
    else io.stdout.write(`${renderOutcomes(outcomes)}\n`);
    return failed.length > 0 || recordFailed ? 1 : 0;
  } finally {
    await pool.end();
  }
}

/**
 * The deploy applied these stacks (its outputs name them): their content hashes, read from the
 * synthesized output, are recorded for `tenancy fleet plan` before the hooks run (the apply
 * happened whatever the hooks do). Without an output directory nothing is recorded, and it is said.
 */
async function recordApplied(options: PostApplyCliOptions, io: MigrateCommandIo, outputs: DeployOutputs, pool: Pool, actor: string, json: boolean, usage: (message: string) => never): Promise<void> {
  const outdir = resolve(options.outdir ?? join(options.registry, 'cdktf.out'));
  if (!existsSync(join(outdir, 'stacks'))) {
    if (options.outdir) usage(`--outdir ${options.outdir}: no synthesized stacks there (stacks/)`);
    io.stderr.write(`tenancy post-apply: no synthesized output at ${outdir}: the deployed stacks' content hashes are not recorded (tenancy fleet plan lists them as new); give --outdir, or --no-record-stacks\n`);
    return;
  }
  const selected = options.tenant.length > 0 ? outputs.tenants.filter((t) => options.tenant.includes(t.slug)) : outputs.tenants;
  const stacks: DeployedStack[] = [
    ...selected.map((t) => ({ stack: tenantNames(t.slug).stack, tenantId: t.tenant_id })),
    ...(options.tenant.length > 0 ? [] : [...outputs.platforms.keys()].map((region) => ({ stack: `platform-${region}`, tenantId: null }))),
  ];
  const { recorded, skipped } = await recordDeployedStacks(pool, outdir, stacks, actor);
  for (const s of skipped) io.stderr.write(`tenancy post-apply: ${s.stack}: content hash not recorded: ${s.reason}\n`);
  if (json) for (const r of recorded) io.stdout.write(`${JSON.stringify({ type: 'applied-stack', stack: r.stack, contentHash: r.contentHash, libraryVersion: r.libraryVersion })}\n`);
  else if (recorded.length > 0) io.stdout.write(`Recorded the content of ${recorded.length} applied stack(s) for tenancy fleet plan.\n`);
}

/**
 * The Stripe hook (lib/billing): skipped, and said so, without STRIPE_SECRET_KEY(_REF). Contact
 * details come from the registry when the project root has one.
 */
function billing(options: PostApplyCliOptions, io: MigrateCommandIo, checkout: { successUrl: string; cancelUrl: string } | undefined, usage: (message: string) => never) {
  const root = resolve(options.registry);
  const profiles = new Map<string, BillingProfile>();
  if (existsSync(join(root, 'platform.yaml')) && existsSync(join(root, 'tenants'))) {
    try {
      for (const t of loadRegistry({ root }).tenants) profiles.set(t.slug, { email: t.adminEmail, name: t.company });
    } catch (e) {
      usage(`--registry ${options.registry}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return billingHook({
    key: { env: io.env },
    connection: stripeConnection(io.env.TENANCY_STRIPE_API_URL, usage),
    profile: (t) => profiles.get(t.slug),
    ...(checkout ? { checkout } : {}),
  });
}

/** The Stripe Checkout URLs (options, else TENANCY_BILLING_SUCCESS_URL / _CANCEL_URL), checked before anything connects. */
function checkoutUrls(options: PostApplyCliOptions, env: NodeJS.ProcessEnv, usage: (message: string) => never): { successUrl: string; cancelUrl: string } | undefined {
  const successUrl = options.checkoutSuccessUrl ?? env.TENANCY_BILLING_SUCCESS_URL;
  const cancelUrl = options.checkoutCancelUrl ?? env.TENANCY_BILLING_CANCEL_URL;
  if (Boolean(successUrl) !== Boolean(cancelUrl)) usage('give both --checkout-success-url and --checkout-cancel-url (env TENANCY_BILLING_SUCCESS_URL and TENANCY_BILLING_CANCEL_URL), or neither');
  return successUrl && cancelUrl ? { successUrl, cancelUrl } : undefined;
}

/** TENANCY_STRIPE_API_URL (e.g. a local Stripe-compatible server): api.stripe.com when unset. */
export function stripeConnection(url: string | undefined, usage: (message: string) => never) {
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return usage(`TENANCY_STRIPE_API_URL ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') usage('TENANCY_STRIPE_API_URL must be http:// or https://');
  return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : undefined, protocol: parsed.protocol === 'http:' ? 'http' as const : 'https' as const };
}

/** Merges the outputs files (a stack may appear in one file only) and validates them. */
function readOutputs(files: readonly string[], usage: (message: string) => never): DeployOutputs {
  const merged: Record<string, unknown> = {};
  const from = new Map<string, string>();
  for (const file of files) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      return usage(`${file}: not a readable JSON outputs file (${e instanceof Error ? e.message : String(e)})`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return usage(`${file}: expected an object of stacks`);
    for (const [stack, value] of Object.entries(raw)) {
      if (from.has(stack)) usage(`${file}: stack ${stack} is also in ${from.get(stack)}`);
      from.set(stack, file);
      merged[stack] = value;
    }
  }
  try {
    return parseDeployOutputs(merged, files.join(', '));
  } catch (e) {
    if (e instanceof DeployOutputsError) return usage(e.message);
    throw e;
  }
}

async function controlPlaneConnection(options: PostApplyCliOptions, io: MigrateCommandIo, outputs: DeployOutputs, databases: DatabaseConnector, usage: (message: string) => never): Promise<PoolConfig> {
  const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
  if (url) {
    try {
      return controlPlaneUrlConnection(url, { env: io.env, insecureNoTls: options.insecureNoTls || undefined });
    } catch (e) {
      if (e instanceof ControlPlaneTlsError) return usage(e.message);
      throw e;
    }
  }
  const homes = [...outputs.platforms.values()].filter((p) => p.controlPlane);
  if (homes.length !== 1) return usage(`no control plane: give --control-plane-url, or the outputs of the platform stack holding the control plane (found ${homes.length})`);
  const cp = homes[0].controlPlane!;
  return databases.config({ host: cp.endpoint, port: cp.port, database: cp.database, secretRef: cp.masterSecretArn });
}

function countBy(outcomes: readonly HookOutcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1;
  return counts;
}

function renderOutcomes(outcomes: readonly HookOutcome[]): string {
  const table = new Table({ head: ['tenant', 'hook', 'status', 'detail'], style: { head: [], border: [] } });
  for (const o of outcomes) table.push([o.tenant, o.hook, o.status, o.error ?? (o.result ? JSON.stringify(o.result).slice(0, 80) : '')]);
  return table.toString();
}
