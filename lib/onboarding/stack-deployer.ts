import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { quoteIdent, quoteLiteral, tenantSqlNames } from '../db/sql';
import type { DatabaseConnector, DatabaseEndpoint } from '../hooks/database-connector';
import { DeployOutputsError, parseDeployOutputs, type TenantOutputs } from '../hooks/deploy-outputs';
import { tenantNames } from '../naming';
import type { Tenant } from '../registry/tenant-schema';
import type { LifecyclePlatform, LocalSecretStore } from './local-platform';

/**
 * How a tenant's stack reaches (and leaves) the cloud. Two implementations:
 *
 * - `cdktf` (production): `cdktf deploy tenant-<slug>` ({@link cdktfStackArgs}) on the stack the
 *   synthesize step wrote, outputs read from `--outputs-file`; offboarding lifts RDS deletion
 *   protection and snapshots with the AWS CLI, then `cdktf destroy tenant-<slug>`.
 * - `local` (synthesize-only; local use and tests): nothing is applied. The tenant's outputs are
 *   the synthesized stack's literal outputs plus, for values only Terraform would know (secret
 *   ARNs, instance addresses), local stand-ins: the platform outputs file's clusters, a
 *   generated login password in the local secret store, and for silo tenants a database
 *   `tenant_<slug>` created on the local silo server. Destroy drops that database and the
 *   tenant's role, and deletes its local secrets.
 */
export type DeployMode = 'cdktf' | 'local';
export const DEPLOY_MODES: readonly DeployMode[] = ['cdktf', 'local'];

export interface StackContext {
  readonly tenant: Tenant;
  /** Project root (cdktf.json, node_modules). */
  readonly root: string;
  /** The synthesized output of the tenant's stack (`<outdir>/stacks/tenant-<slug>`). */
  readonly outdir: string;
  /** The job's working directory (command logs, outputs file, local snapshots). */
  readonly workDir: string;
  readonly platform: LifecyclePlatform;
  readonly databases: DatabaseConnector;
  readonly jobId: string;
}

export interface StackDeployer {
  readonly mode: DeployMode;
  /** Applies the stack; returns the outputs the post-apply hooks need. */
  deploy(ctx: StackContext): Promise<TenantOutputs>;
  /** Silo: a final snapshot of the tenant's database before anything is destroyed. */
  snapshot(ctx: StackContext): Promise<Record<string, unknown>>;
  /** Silo: turns RDS deletion protection off (deliberately, as its own audited step). */
  liftDeletionProtection(ctx: StackContext): Promise<Record<string, unknown>>;
  /** Destroys the tenant's stack: its database (silo), secrets, IAM, the namespace and its releases. */
  destroy(ctx: StackContext): Promise<Record<string, unknown>>;
}

// ---------------------------------------------------------------------------------------------
// cdktf
// ---------------------------------------------------------------------------------------------

export interface CdktfDeployerOptions {
  /** The cdktf CLI. @default <root>/node_modules/.bin/cdktf, else `cdktf` on the PATH */
  readonly cdktf?: string;
  /** The AWS CLI (deletion protection, snapshots). @default `aws` */
  readonly aws?: string;
  /** Longest a deploy or destroy may run. @default 2 h */
  readonly timeoutMs?: number;
}

export class CdktfDeployer implements StackDeployer {
  readonly mode = 'cdktf' as const;

  constructor(private readonly options: CdktfDeployerOptions = {}) {}

  private cdktf(root: string): string {
    if (this.options.cdktf) return this.options.cdktf;
    const local = join(root, 'node_modules', '.bin', 'cdktf');
    return existsSync(local) ? local : 'cdktf';
  }

  async deploy(ctx: StackContext): Promise<TenantOutputs> {
    const stack = tenantNames(ctx.tenant.slug).stack;
    const outputsFile = join(ctx.workDir, `${stack}.outputs.json`);
    await runCommand(this.cdktf(ctx.root), cdktfStackArgs('deploy', stack, ctx.outdir, ['--outputs-file', outputsFile]), {
      cwd: ctx.root, env: { CHECKPOINT_DISABLE: '1', TENANCY_SELECT: ctx.tenant.slug }, logFile: join(ctx.workDir, 'deploy.log'), timeoutMs: this.options.timeoutMs,
    });
    return tenantOutputsFrom(JSON.parse(readFileSync(outputsFile, 'utf8')), ctx.tenant, outputsFile);
  }

  async snapshot(ctx: StackContext): Promise<Record<string, unknown>> {
    const id = tenantNames(ctx.tenant.slug).awsPrefix;
    const snapshot = `${id}-offboard-${ctx.jobId.slice(0, 8)}`;
    const aws = (...args: string[]) => runCommand(this.options.aws ?? 'aws', [...args, '--region', ctx.tenant.region], { cwd: ctx.workDir, env: {}, logFile: join(ctx.workDir, 'snapshot.log'), timeoutMs: this.options.timeoutMs });
    // Idempotent: a retry finds the snapshot of the first attempt.
    const existing = await aws('rds', 'describe-db-snapshots', '--db-snapshot-identifier', snapshot, '--query', 'DBSnapshots[0].Status', '--output', 'text').catch(() => '');
    if (!existing.trim()) await aws('rds', 'create-db-snapshot', '--db-instance-identifier', id, '--db-snapshot-identifier', snapshot, '--tags', `Key=tenancy:tenant-id,Value=${ctx.tenant.id}`, 'Key=tenancy:purpose,Value=offboarding-final');
    await aws('rds', 'wait', 'db-snapshot-available', '--db-snapshot-identifier', snapshot);
    return { snapshot, instance: id, note: 'the destroy also takes the stack\'s final snapshot (<id>-final-<tenant id>)' };
  }

  async liftDeletionProtection(ctx: StackContext): Promise<Record<string, unknown>> {
    const id = tenantNames(ctx.tenant.slug).awsPrefix;
    await runCommand(this.options.aws ?? 'aws', ['rds', 'modify-db-instance', '--db-instance-identifier', id, '--no-deletion-protection', '--apply-immediately', '--region', ctx.tenant.region], {
      cwd: ctx.workDir, env: {}, logFile: join(ctx.workDir, 'deletion-protection.log'), timeoutMs: this.options.timeoutMs,
    });
    return { instance: id, deletionProtection: false };
  }

  async destroy(ctx: StackContext): Promise<Record<string, unknown>> {
    const stack = tenantNames(ctx.tenant.slug).stack;
    await runCommand(this.cdktf(ctx.root), cdktfStackArgs('destroy', stack, ctx.outdir), {
      cwd: ctx.root, env: { CHECKPOINT_DISABLE: '1', TENANCY_SELECT: ctx.tenant.slug }, logFile: join(ctx.workDir, 'destroy.log'), timeoutMs: this.options.timeoutMs,
    });
    return { stack, destroyed: true, namespace: tenantNames(ctx.tenant.slug).namespace };
  }
}

/**
 * The arguments of every `cdktf deploy|destroy` of an already synthesized stack: the onboarding
 * and offboarding jobs' and the local deploys' (lib/local/cdktf-local.ts), so both do the same
 * Terraform work.
 *
 * `--skip-provider-lock`: without it, cdktf runs `terraform providers lock -platform=linux_amd64`
 * after `terraform init` in every stack directory that has no lock file yet, which is every job's
 * fresh synthesis. That command asks the providers' origin registry and ignores the CLI
 * configuration's `provider_installation` (a filesystem or network mirror), so with a mirror and
 * no route to registry.terraform.io it fails: each job's first attempt failed and only the queue's
 * retry, finding the lock file that init had left, got through. It adds nothing here: the stack
 * pins the exact provider version, and `terraform init` already verifies the package it installs
 * and writes its checksums into the (throwaway) lock file.
 */
export function cdktfStackArgs(verb: 'deploy' | 'destroy', stack: string, outdir: string, extra: readonly string[] = []): string[] {
  return [verb, stack, '--auto-approve', '--skip-synth', '--skip-provider-lock', '--output', outdir, ...extra, '--no-color'];
}

/** The tenant's outputs in a `cdktf deploy --outputs-file` file, validated as the post-apply hooks validate them. */
export function tenantOutputsFrom(raw: unknown, tenant: Tenant, file: string): TenantOutputs {
  const stack = tenantNames(tenant.slug).stack;
  const outputs = (raw as Record<string, unknown>)?.[stack];
  if (!outputs) throw new DeployOutputsError(`${file}: no outputs of stack ${stack}`);
  const parsed = parseDeployOutputs({ [stack]: outputs }, file).tenants[0];
  if (!parsed || parsed.tenant_id !== tenant.id) throw new DeployOutputsError(`${file}: ${stack}.tenant_id is not ${tenant.id}`);
  return parsed;
}

/** Runs a command, its output appended to `logFile`; rejects with the end of the log on failure. Resolves to stdout. */
export function runCommand(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string; timeoutMs?: number }): Promise<string> {
  mkdirSync(options.cwd, { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  log.write(`$ ${command} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    // Its own process group, so that terraform under cdktf can be told to stop too (see stopChildrenOnExit).
    const child = spawn(command, [...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 2 * 3600_000, detached: true });
    trackChild(child);
    let stdout = '';
    let tail = '';
    const keep = (chunk: Buffer) => {
      log.write(chunk);
      tail = (tail + String(chunk)).slice(-4000);
    };
    child.stdout.on('data', (c: Buffer) => {
      stdout += String(c);
      keep(c);
    });
    child.stderr.on('data', keep);
    child.once('error', (e) => {
      log.end();
      reject(new Error(`${command}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      log.end();
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.slice(0, 2).join(' ')} failed (${code ?? signal}); log ${options.logFile}:\n${tail.trim()}`));
    });
  });
}

/** Process groups of the commands running now (cdktf and the terraform it starts). */
const runningGroups = new Set<number>();

/**
 * A worker that exits while a `cdktf deploy`/`destroy` runs (its SIGTERM stop bound expired, or an
 * error) sends SIGTERM to the command's whole process group: terraform then stops gracefully and
 * releases the state lock, instead of running on unattended and holding it.
 */
function trackChild(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (runningGroups.size === 0) process.once('exit', stopChildrenOnExit);
  runningGroups.add(pid);
  child.once('close', () => {
    runningGroups.delete(pid);
    if (runningGroups.size === 0) process.removeListener('exit', stopChildrenOnExit);
  });
}

function stopChildrenOnExit(): void {
  for (const pid of runningGroups) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------------------------
// local (synthesize-only)
// ---------------------------------------------------------------------------------------------

export interface LocalDeployerOptions {
  /** Where generated login passwords are kept. */
  readonly secrets: LocalSecretStore;
  /** Directory of local final snapshots (pg_dump files). @default <workDir>/snapshots */
  readonly snapshotDir?: string;
  /** pg_dump binary for silo snapshots. @default found on the PATH or under /usr/lib/postgresql */
  readonly pgDump?: string;
  /** CA file for pg_dump's TLS (the connector's); unset with insecureNoTls. */
  readonly sslCaFile?: string;
  readonly insecureNoTls?: boolean;
}

/** Local stand-in for the login secret of a bridge or silo tenant (Terraform creates it in Secrets Manager). */
export const localCredentialsRef = (slug: string) => `local:${tenantNames(slug).path}/db-credentials`;

export class LocalDeployer implements StackDeployer {
  readonly mode = 'local' as const;

  constructor(private readonly options: LocalDeployerOptions) {}

  async deploy(ctx: StackContext): Promise<TenantOutputs> {
    const { tenant } = ctx;
    const stack = tenantNames(tenant.slug).stack;
    const synthFile = join(ctx.outdir, 'stacks', stack, 'cdk.tf.json');
    if (!existsSync(synthFile)) throw new Error(`local deploy: ${synthFile} does not exist; the synthesize step must run first`);
    // The synthesized outputs; values Terraform computes at apply time (`${…}`) are filled in below.
    const synthesized = (JSON.parse(readFileSync(synthFile, 'utf8')) as { output?: Record<string, { value: unknown }> }).output ?? {};
    const literal: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(synthesized)) if (!(typeof v.value === 'string' && v.value.includes('${'))) literal[k] = v.value;
    const names = tenantSqlNames(tenant.slug);
    let computed: Record<string, unknown> = {};
    switch (tenant.model) {
      case 'pool':
        break;
      case 'bridge': {
        const ref = localCredentialsRef(tenant.slug);
        await this.options.secrets.ensure(ref, names.role);
        computed = { credentials_secret_arn: ref };
        break;
      }
      case 'silo': {
        const server = ctx.platform.localSilo.get(tenant.region);
        if (!server) throw new Error(`local deploy of silo tenant ${tenant.slug}: the platform outputs of ${tenant.region} name no silo server (silo_endpoint, silo_port, silo_master_secret_arn)`);
        const ref = localCredentialsRef(tenant.slug);
        await this.options.secrets.ensure(ref, names.role);
        const created = await ctx.databases.withClient(siloServer(server), async (c) => {
          const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [names.database]);
          if (exists.rowCount) return false;
          await c.query(`CREATE DATABASE ${quoteIdent(names.database)}`);
          return true;
        });
        computed = {
          db_identifier: tenantNames(tenant.slug).awsPrefix, db_address: server.endpoint, db_port: server.port, db_name: names.database,
          db_master_secret_arn: server.masterSecretArn, db_kms_key_arn: 'local:no-kms', app_credentials_secret_arn: ref, local_database_created: created,
        };
        break;
      }
    }
    const outputs = { ...computed, ...literal };
    delete outputs.local_database_created;
    return tenantOutputsFrom({ [stack]: outputs }, tenant, synthFile);
  }

  async snapshot(ctx: StackContext): Promise<Record<string, unknown>> {
    if (ctx.tenant.model !== 'silo') return { skipped: `${ctx.tenant.model} tenants have no database of their own` };
    const server = this.siloServerOf(ctx);
    const { database } = tenantSqlNames(ctx.tenant.slug);
    const exists = await ctx.databases.withClient(server, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount);
    const dir = this.options.snapshotDir ?? join(ctx.workDir, 'snapshots');
    const file = join(dir, `${database}-final-${ctx.jobId.slice(0, 8)}.dump`);
    if (!exists) {
      if (existsSync(file)) return { snapshot: file, bytes: statSync(file).size, note: 'taken by an earlier attempt' };
      return { skipped: `database ${database} does not exist (already destroyed)` };
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const config = await ctx.databases.config(server, database);
    await runCommand(this.options.pgDump ?? findPgDump(), ['--format=custom', '--no-owner', `--file=${file}`, `--dbname=${database}`], {
      cwd: dir,
      env: {
        PGHOST: String(config.host), PGPORT: String(config.port), PGUSER: String(config.user), PGPASSWORD: String(config.password),
        ...(this.options.insecureNoTls ? { PGSSLMODE: 'disable' } : { PGSSLMODE: 'verify-full', ...(this.options.sslCaFile ? { PGSSLROOTCERT: this.options.sslCaFile } : {}) }),
      },
      logFile: join(ctx.workDir, 'snapshot.log'),
    });
    return { snapshot: file, bytes: statSync(file).size };
  }

  async liftDeletionProtection(ctx: StackContext): Promise<Record<string, unknown>> {
    return { instance: tenantNames(ctx.tenant.slug).awsPrefix, deletionProtection: false, note: 'local deploy: no RDS instance; recorded so the step is audited as in production' };
  }

  async destroy(ctx: StackContext): Promise<Record<string, unknown>> {
    const { tenant } = ctx;
    const names = tenantSqlNames(tenant.slug);
    const result: Record<string, unknown> = { stack: tenantNames(tenant.slug).stack, namespace: tenantNames(tenant.slug).namespace };
    if (tenant.model === 'silo') {
      const server = this.siloServerOf(ctx);
      await ctx.databases.withClient(server, async (c) => {
        const db = await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [names.database]);
        if (db.rowCount) await c.query(`DROP DATABASE ${quoteIdent(names.database)} WITH (FORCE)`);
        result.databaseDropped = Boolean(db.rowCount);
        const role = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [names.role]);
        if (role.rowCount) await c.query(`DROP ROLE ${quoteIdent(names.role)}`);
        result.roleDropped = Boolean(role.rowCount);
        const left = await c.query(`SELECT (SELECT count(*) FROM pg_database WHERE datname = ${quoteLiteral(names.database)})::int AS databases, (SELECT count(*) FROM pg_roles WHERE rolname = ${quoteLiteral(names.role)})::int AS roles`);
        result.remaining = left.rows[0];
      }, 'postgres');
    }
    if (tenant.model !== 'pool') result.secretDeleted = this.options.secrets.remove(localCredentialsRef(tenant.slug));
    return result;
  }

  private siloServerOf(ctx: StackContext): DatabaseEndpoint {
    const server = ctx.platform.localSilo.get(ctx.tenant.region);
    if (!server) throw new Error(`local silo server of ${ctx.tenant.region} is not in the platform outputs (silo_endpoint, silo_port, silo_master_secret_arn)`);
    return siloServer(server);
  }
}

const siloServer = (s: { endpoint: string; port: number; masterSecretArn: string }): DatabaseEndpoint => ({ host: s.endpoint, port: s.port, database: 'postgres', secretRef: s.masterSecretArn });

function findPgDump(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'pg_dump'))) return join(dir, 'pg_dump');
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const { readdirSync } = require('node:fs') as typeof import('node:fs');
    for (const v of readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))) {
      if (existsSync(join(root, v, 'bin', 'pg_dump'))) return join(root, v, 'bin', 'pg_dump');
    }
  }
  return 'pg_dump';
}
