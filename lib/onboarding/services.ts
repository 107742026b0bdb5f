import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Pool, PoolConfig } from 'pg';
import { guardedPool } from '../db/lost-connections';
import { ControlPlane } from '../control-plane/control-plane';
import { controlPlaneConnection } from '../control-plane/connection';
import { DatabaseConnector } from '../hooks/database-connector';
import { loadMigrationSets, type MigrationSets } from '../migrate/migration-set';
import { FAILING_STATUSES } from '../migrate/result';
import { migrateTargets } from '../migrate/runner';
import { controlPlaneTarget } from '../migrate/targets';
import { AwsSecretsManagerResolver, FileSecretResolver, type SecretResolver } from '../runtime/secret-resolver';
import type { BillingProvider } from './billing';
import { DatabaseRegistrySource } from './database-registry-source';
import { DirectoryRegistrySource } from './directory-registry-source';
import { RecordOnlyEscalationPolicy, WebhookEscalationPolicy, type EscalationPolicy } from './escalation';
import { LifecycleStore } from './lifecycle-store';
import { ChainSecretResolver, LocalSecretStore, readPlatformOutputsFile, type LifecyclePlatform } from './local-platform';
import { LifecycleConfigError, type LifecycleConfig } from './config';
import { RedisLock } from './lock';
import { LogNotifier, SmtpNotifier, type Notifier } from './notifier';
import { redisOptionsFromUrl } from './queue';
import type { RegistrySource } from './registry-source';
import { CdktfDeployer, LocalDeployer, type StackDeployer } from './stack-deployer';

export { lifecycleConfig, LifecycleConfigError, type LifecycleConfig } from './config';

/** Parts a caller may supply instead of the ones built from the configuration (tests, embedding). */
export interface LifecycleOverrides {
  readonly billing?: BillingProvider;
  readonly notifier?: Notifier;
  readonly escalation?: EscalationPolicy;
  readonly deployer?: StackDeployer;
}

/**
 * Everything a lifecycle command or worker uses, opened once: the control-plane pool (its schema
 * migrated first), Redis and the lock, the registry source, the database connector, the deployer,
 * the migrations, the notifier, the escalation policy and billing.
 */
export class LifecycleServices {
  private platformCache?: LifecyclePlatform;

  private constructor(
    readonly config: LifecycleConfig,
    readonly pool: Pool,
    readonly store: LifecycleStore,
    readonly controlPlane: ControlPlane,
    readonly redis: Redis,
    readonly lock: RedisLock,
    readonly registry: RegistrySource,
    readonly databases: DatabaseConnector,
    readonly localSecrets: LocalSecretStore,
    readonly deployer: StackDeployer,
    readonly migrations: MigrationSets,
    readonly notifier: Notifier,
    readonly escalation: EscalationPolicy,
    readonly billing: BillingProvider | undefined,
  ) {}

  static async open(config: LifecycleConfig, overrides: LifecycleOverrides = {}, options: { migrateControlPlane?: boolean; poolMax?: number } = {}): Promise<LifecycleServices> {
    const migrations = loadMigrationSets(config.migrationsDir);
    const cpConfig: PoolConfig = controlPlaneConnection(config.controlPlaneUrl, { insecureNoTls: config.insecureNoTls, applicationName: 'tenancy-lifecycle' });
    if (options.migrateControlPlane ?? true) {
      const run = await migrateTargets({ targets: [controlPlaneTarget({ connection: cpConfig })], migrations, concurrency: 1 });
      const cp = run.results[0];
      if (!cp || FAILING_STATUSES.has(cp.status)) throw new Error(`migrating the control plane failed: ${cp?.error ?? cp?.status ?? 'no result'}`);
    }
    // Guarded: a connection the server ends (restart, failover) fails its call, never the process.
    const pool = guardedPool({ ...cpConfig, max: options.poolMax ?? 4 });
    const redis = new Redis(redisOptionsFromUrl(config.redisUrl));
    try {
      const lock = new RedisLock(redis, { ttlMs: config.lockTtlMs });
      const store = new LifecycleStore(pool, config.actor);
      const controlPlane = new ControlPlane(pool, config.actor);
      const registry: RegistrySource = config.registrySource === 'database'
        ? new DatabaseRegistrySource(pool, config.root)
        // git's index has one writer: commits of every process serialize on a Redis lock.
        : new DirectoryRegistrySource({ root: config.root, serialize: (fn) => lock.withLock(`registry-git:${config.root}`, { waitMs: 120_000 }, () => fn()) });
      const localSecrets = new LocalSecretStore(join(config.workDir, 'secrets'));
      const base: SecretResolver = config.secretsFile ? new FileSecretResolver(config.secretsFile) : new AwsSecretsManagerResolver();
      const secrets = config.deploy === 'local' ? new ChainSecretResolver([base, localSecrets]) : base;
      const databases = new DatabaseConnector({ secrets, sslCaFile: config.sslCaFile, insecureNoTls: config.insecureNoTls, applicationName: 'tenancy-lifecycle' });
      const deployer = overrides.deployer ?? (config.deploy === 'local'
        ? new LocalDeployer({ secrets: localSecrets, sslCaFile: config.sslCaFile, insecureNoTls: config.insecureNoTls, snapshotDir: join(config.workDir, 'snapshots') })
        : new CdktfDeployer());
      const notifier = overrides.notifier ?? (config.smtpUrl ? new SmtpNotifier({ url: config.smtpUrl, from: config.mailFrom ?? 'noreply@localhost' }) : new LogNotifier());
      const escalation = overrides.escalation ?? (config.escalationWebhook ? new WebhookEscalationPolicy({ url: config.escalationWebhook, token: config.escalationToken }) : new RecordOnlyEscalationPolicy());
      return new LifecycleServices(config, pool, store, controlPlane, redis, lock, registry, databases, localSecrets, deployer, migrations, notifier, escalation, overrides.billing);
    } catch (e) {
      redis.disconnect();
      await pool.end();
      throw e;
    }
  }

  /** The platform outputs file, read once. */
  platform(): LifecyclePlatform {
    if (!this.platformCache) {
      if (!this.config.platformOutputsFile) throw new LifecycleConfigError('no platform outputs: set TENANCY_PLATFORM_OUTPUTS (the platform stacks\' `cdktf output --outputs-file`)');
      this.platformCache = readPlatformOutputsFile(this.config.platformOutputsFile);
    }
    return this.platformCache;
  }

  async close(): Promise<void> {
    (this.notifier as { close?: () => void }).close?.();
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.pool.end();
  }
}
