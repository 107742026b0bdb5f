/**
 * A fleet for rollout tests: tenant stacks synthesized by localDeployProject (S3 state in moto's
 * bucket), the stand-in platform outputs (shared clusters on the local PostgreSQL server, master
 * secrets in moto's Secrets Manager), the control plane migrated on that server, and what a
 * rollout worker needs, in process (hookServices) or as a `tenancy worker` child (workerEnv).
 *
 *   const fleet = await RolloutFleet.start(aws(), pg(), redis(), [validTenant({ slug: 'bravo', model: 'bridge' })]);
 *   const rollout = await fleet.createRollout(['tenant-bravo']);   // artifacts put, rows queued (round 1)
 *   await fleet.enqueue(rollout, 'tenant-bravo');
 *   await fleet.close();
 */
import type { Queue } from 'bullmq';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, type PoolConfig } from 'pg';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { DatabaseConnector } from '../../lib/hooks/database-connector';
import { parseDatabaseHostMap } from '../../lib/hooks/database-host-map';
import { parseDeployOutputs } from '../../lib/hooks/deploy-outputs';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { FAILING_STATUSES } from '../../lib/migrate/result';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { tenantStateKey } from '../../lib/naming';
import { redisOptionsFromUrl } from '../../lib/onboarding/queue';
import { artifactStore, rolloutArtifactLocation } from '../../lib/fleet/rollout-artifacts';
import { rolloutJobId, rolloutQueue, type RolloutJobData } from '../../lib/fleet/rollout-queue';
import type { RolloutHookServices } from '../../lib/fleet/rollout-worker';
import { readStackArtifact } from '../../lib/fleet/stack-artifact';
import { AwsSecretsManagerResolver } from '../../lib/runtime/secret-resolver';
import { createLocalSecret, localAwsEnv, localDeployProject, prepareLocalDatabases, standInPlatformOutputs, type LocalAws, type LocalDeployProject, type LocalDeployProjectOptions } from './moto';
import { repoRoot } from './pool-db';
import type { PostgresCluster } from './postgres';
import type { RedisServer } from './redis';
import { CLI, type WorkerProcess } from './worker-process';

export const MIGRATIONS_DIR = join(repoRoot(), 'migrations');

export class RolloutFleet {
  private queueInstance?: Queue<RolloutJobData>;
  private readonly closers: (() => Promise<unknown> | unknown)[] = [];

  private constructor(
    readonly aws: LocalAws,
    readonly pg: PostgresCluster,
    readonly redis: RedisServer,
    readonly deploy: LocalDeployProject,
    /** Temporary directory: work dirs, the platform outputs file, terraform's CLI config. */
    readonly dir: string,
    readonly platformOutputsFile: string,
    readonly controlPlaneUrl: string,
    readonly controlPlaneConfig: PoolConfig,
    /** The control plane as its master user (rows, applied stacks, tenants). */
    readonly cp: Pool,
    /** terraform's environment against moto (the provider mirror, dummy keys). */
    readonly terraformEnv: NodeJS.ProcessEnv,
  ) {}

  /**
   * Synthesizes `tenants` into a local deploy project, creates the stand-in platform's databases
   * and master users on `pg`, the pool application's secret, and migrates the control plane.
   * Sets the AWS_* variables of this jest file's process.env to moto (in-process Secrets Manager reads).
   */
  static async start(aws: LocalAws, pg: PostgresCluster, redis: RedisServer, tenants: readonly Record<string, unknown>[], options: LocalDeployProjectOptions = {}): Promise<RolloutFleet> {
    Object.assign(process.env, { AWS_ENDPOINT_URL: aws.endpoint, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' });
    const dir = mkdtempSync(join(tmpdir(), 'rollout-fleet-'));
    const deploy = localDeployProject(aws, tenants, options);
    try {
      const platform = await standInPlatformOutputs(aws.endpoint, 'us-east-1');
      const platformOutputsFile = join(dir, 'platform.outputs.json');
      writeFileSync(platformOutputsFile, JSON.stringify({ 'platform-us-east-1': platform }));
      await prepareLocalDatabases({ endpoint: aws.endpoint, region: 'us-east-1', admin: pg.adminConfig(), outputs: { 'platform-us-east-1': platform } });
      // The pool application's secret, which the platform team creates before the first pool tenant.
      await createLocalSecret(aws.endpoint, 'us-east-1', 'tenancy/pool/app-credentials', { username: 'pool_app', password: `pool-app-${randomUUID()}` });
      const master = await new AwsSecretsManagerResolver().resolve(String(platform.control_plane_master_secret_arn));
      const controlPlaneUrl = `postgres://${encodeURIComponent(master.username)}:${encodeURIComponent(master.password)}@${pg.host}:${pg.port}/${platform.control_plane_database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.tls!.caFile)}`;
      const controlPlaneConfig = pg.clientConfig({ user: master.username, password: master.password, database: String(platform.control_plane_database) }) as PoolConfig;
      const run = await migrateTargets({ targets: [controlPlaneTarget({ connection: controlPlaneConfig })], migrations: loadMigrationSets(MIGRATIONS_DIR), concurrency: 1 });
      if (!run.results[0] || FAILING_STATUSES.has(run.results[0].status)) throw new Error(`migrating the control plane failed: ${run.results[0]?.error ?? run.results[0]?.status}`);
      const cp = new Pool({ ...controlPlaneConfig, max: 4 });
      // Idle connections the server ends (it may stop before this closes: afterAll order) are not errors of the test.
      cp.on('error', () => undefined);
      const terraformEnv = localAwsEnv(aws.endpoint, join(dir, 'terraform'));
      return new RolloutFleet(aws, pg, redis, deploy, dir, platformOutputsFile, controlPlaneUrl, controlPlaneConfig, cp, terraformEnv);
    } catch (e) {
      deploy.remove();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  get databaseHostMap(): string {
    return `*.db.tenancy.internal=localhost:${this.pg.port}`;
  }

  /** The state object of a tenant's stack in the bucket. */
  stateKey(tenantId: string): string {
    return `${this.deploy.stateKeyPrefix}/${tenantStateKey(tenantId)}`;
  }

  /** What the post-apply hooks need, for an in-process worker (closed with the fleet). */
  hookServices(): RolloutHookServices {
    const pool = new Pool({ ...this.controlPlaneConfig, max: 2 });
    pool.on('error', () => undefined);
    this.closers.push(() => pool.end());
    const platforms = parseDeployOutputs(JSON.parse(readFileSync(this.platformOutputsFile, 'utf8')), this.platformOutputsFile).platforms;
    return {
      controlPlane: new ControlPlane(pool, 'rollout-test'),
      databases: new DatabaseConnector({ secrets: new AwsSecretsManagerResolver(), sslCaFile: this.pg.tls!.caFile, applicationName: 'rollout-test' }),
      migrations: loadMigrationSets(MIGRATIONS_DIR),
      platforms: () => platforms,
      databaseHostMap: parseDatabaseHostMap([this.databaseHostMap]),
    };
  }

  /** A work directory for one worker. */
  workDir(name: string): string {
    const d = join(this.dir, 'work', name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** The environment of a `tenancy worker` child taking rollout jobs of this fleet. */
  workerEnv(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...this.terraformEnv,
      TENANCY_ROOT: this.deploy.project.root,
      TENANCY_WORK_DIR: this.workDir(name),
      TENANCY_REDIS_URL: this.redis.url,
      TENANCY_CONTROL_PLANE_URL: this.controlPlaneUrl,
      TENANCY_PLATFORM_OUTPUTS: this.platformOutputsFile,
      TENANCY_SSL_CA: this.pg.tls!.caFile,
      TENANCY_MIGRATIONS: MIGRATIONS_DIR,
      TENANCY_DATABASE_HOST_MAP: this.databaseHostMap,
      TENANCY_USAGE_REPORT: 'off',
      TENANCY_ACTOR: `rollout-test-${name}`,
      ...extra,
    };
  }

  /**
   * A `tenancy worker` child process (the compiled CLI) taking this fleet's rollout jobs;
   * resolves once it says it is processing the rollout queue. Stopped (SIGTERM) by close() if still running.
   */
  startWorkerProcess(name: string, extraEnv: NodeJS.ProcessEnv = {}, args: readonly string[] = []): Promise<WorkerProcess & { readonly pid: number; stdout(): string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'worker', ...args], { env: this.workerEnv(name, extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      let err = '';
      let out = '';
      child.stdout!.on('data', (c) => (out += String(c)));
      const handle = { child, exited, pid: child.pid!, stderr: () => err, stdout: () => out };
      this.closers.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await exited;
        }
      });
      child.stderr!.on('data', (c) => {
        err += String(c);
        if (/processing tenancy-rollout/.test(err)) resolve(handle);
      });
      child.once('error', reject);
      void exited.then((code) => reject(new Error(`worker ${name} exited (${code}) before it was ready: ${err}`)));
    });
  }

  /**
   * A rollout of `stacks` as the coordinator records it: artifacts put in the state bucket, one
   * row per stack, queued in round 1 (not yet in the queue: see enqueue). Any other running
   * rollout of the fleet is stopped first (one runs at a time).
   * `edit` may change a stack's synthesized JSON before it is put (a broken resource).
   */
  async createRollout(stacks: readonly string[], edit: (stack: string, json: Record<string, any>) => Record<string, any> | undefined = () => undefined): Promise<string> {
    const id = randomUUID();
    const location = rolloutArtifactLocation({ backend: 's3', bucket: this.aws.stateBucket, region: 'us-east-1', keyPrefix: this.deploy.stateKeyPrefix }, id);
    const store = artifactStore(location, this.terraformEnv);
    await this.cp.query("UPDATE tenancy.rollouts SET status = 'stopped', stop_reason = 'test: next rollout' WHERE status = 'running'");
    await this.cp.query(
      `INSERT INTO tenancy.rollouts (id, status, waves, parallel, max_failures, artifacts, outdir, library_version, created_by)
       VALUES ($1, 'running', $2, 4, '0', $3, $4, 'test', 'rollout-test')`,
      [id, JSON.stringify([{ index: 0, name: '100%', size: stacks.length }]), location, this.deploy.runner.outdir],
    );
    for (const stack of stacks) {
      let outdir = this.deploy.runner.outdir;
      const original = JSON.parse(readFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
      const edited = edit(stack, original);
      if (edited) {
        outdir = join(this.dir, 'edited', id);
        mkdirSync(join(outdir, 'stacks', stack), { recursive: true });
        writeFileSync(join(outdir, 'manifest.json'), readFileSync(join(this.deploy.runner.outdir, 'manifest.json')));
        writeFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), JSON.stringify(edited, null, 2));
      }
      const stackDir = join(outdir, 'stacks', stack);
      const artifact = readStackArtifact(outdir, stack);
      const key = await store.put(stack, stackDir);
      await this.cp.query(
        `INSERT INTO tenancy.rollout_stacks (rollout_id, stack, kind, tenant_id, wave, change, content_hash, file_hash, components, library_version, fleet_tenants, artifact_key, status, round)
         VALUES ($1, $2, $3, $4, 0, 'new', $5, $6, $7, $8, $9, $10, 'queued', 1)`,
        [id, stack, artifact.kind, artifact.tenantId, artifact.contentHash, artifact.fileHash, JSON.stringify(artifact.components), artifact.libraryVersion, artifact.fleetTenants, key],
      );
    }
    store.close();
    return id;
  }

  get queue(): Queue<RolloutJobData> {
    this.queueInstance ??= rolloutQueue(redisOptionsFromUrl(this.redis.url));
    return this.queueInstance;
  }

  /** Adds the stack's job of `round` (the coordinator's job id). */
  async enqueue(rolloutId: string, stack: string, round = 1, jobId = rolloutJobId(rolloutId, stack, round)): Promise<void> {
    await this.queue.add('apply', { rolloutId, stack }, { jobId });
  }

  async row(rolloutId: string, stack: string): Promise<Record<string, any>> {
    const { rows } = await this.cp.query('SELECT * FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND stack = $2', [rolloutId, stack]);
    return rows[0];
  }

  async close(): Promise<void> {
    for (const c of this.closers.splice(0).reverse()) await c();
    await this.queueInstance?.close();
    await this.cp.end();
    this.deploy.remove();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
