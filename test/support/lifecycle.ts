/**
 * A local platform for the tenant lifecycle (onboarding, offboarding) with real services:
 * PostgreSQL 15 (one cluster standing in for the bridge, pool, control-plane and silo servers,
 * each with its own CREATEROLE/CREATEDB master user, as on RDS), redis-server, the local
 * Stripe-compatible server (lib/testing/stripe-mock, catalog created) and a local SMTP server;
 * a project root (platform.yaml and tenants/, optionally a git work tree); the platform outputs
 * and secrets files the local deploy reads. Used by test/onboarding, test/offboarding and
 * bench/onboard-bench.ts.
 *
 *   const bed = useLifecycleTestbed();           // jest: beforeAll / afterAll
 *   const services = await bed().open();          // LifecycleServices on it (close it)
 *   bed().childEnv()                              // the same configuration for a `tenancy worker` child
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Stripe from 'stripe';
import { DEFAULT_CATALOG, ensureCatalog } from '../../lib/billing';
import { billingFromConfig } from '../../lib/onboarding/billing';
import { lifecycleConfig, type LifecycleConfig } from '../../lib/onboarding/config';
import { LifecycleServices, type LifecycleOverrides } from '../../lib/onboarding/services';
import { StripeMockServer } from '../../lib/testing/stripe-mock';
import { SAMPLE_PROJECT } from './fixture-project';
import { repoRoot } from './pool-db';
import { KEEP_TEST_DIRS, PostgresCluster } from './postgres';
import { RedisServer } from './redis';
import { SmtpTestServer } from './smtp';

export const MASTERS = {
  bridge: { user: 'bridge_master', password: 'bridge-master-pw', database: 'tenants' },
  pool: { user: 'pool_master', password: 'pool-master-pw', database: 'pool' },
  controlPlane: { user: 'cp_master', password: 'cp-master-pw', database: 'control_plane' },
  silo: { user: 'silo_master', password: 'silo-master-pw' },
} as const;
export const POOL_APP_PASSWORD = 'pool-app-pw-lifecycle';
export const AUDITOR = { user: 'pool_auditor', password: 'pool-auditor-pw' };
export const ARN = (name: string) => `arn:aws:secretsmanager:us-east-1:111122223333:secret:${name}-AbCdEf`;

export interface TestbedOptions {
  /** Copy the sample registry (tenants/) into the project, not just platform.yaml. @default false */
  readonly sampleTenants?: boolean;
  /** Make the project root a git work tree with an initial commit. @default false */
  readonly git?: boolean;
  /** The platform's services. @default every one */
  readonly smtp?: boolean;
}

export class LifecycleTestbed {
  private readonly closers: (() => Promise<unknown> | unknown)[] = [];

  private constructor(
    readonly pg: PostgresCluster,
    readonly redis: RedisServer,
    readonly stripe: StripeMockServer,
    readonly smtp: SmtpTestServer | undefined,
    /** Temporary directory holding the project root and the files below. */
    readonly dir: string,
    readonly root: string,
    readonly platformOutputsFile: string,
    readonly secretsFile: string,
    readonly stripeKey: string,
  ) {}

  static async start(options: TestbedOptions = {}): Promise<LifecycleTestbed> {
    const started: { stop(): Promise<void> }[] = [];
    try {
      const [pg, redis, stripe, smtp] = await Promise.all([
        PostgresCluster.start(),
        RedisServer.start(),
        StripeMockServer.start(),
        options.smtp === false ? Promise.resolve(undefined) : SmtpTestServer.start(),
      ]);
      started.push(pg, redis, stripe, ...(smtp ? [smtp] : []));
      await pg.createRole(MASTERS.bridge.user, { password: MASTERS.bridge.password, attributes: ['CREATEROLE', 'CREATEDB'] });
      await pg.createDatabase(MASTERS.bridge.database, { owner: MASTERS.bridge.user });
      await pg.createRole(MASTERS.pool.user, { password: MASTERS.pool.password, attributes: ['CREATEROLE', 'CREATEDB'] });
      await pg.createDatabase(MASTERS.pool.database, { owner: MASTERS.pool.user });
      await pg.createRole(MASTERS.controlPlane.user, { password: MASTERS.controlPlane.password, attributes: ['CREATEROLE', 'CREATEDB'] });
      await pg.createDatabase(MASTERS.controlPlane.database, { owner: MASTERS.controlPlane.user });
      await pg.createRole(MASTERS.silo.user, { password: MASTERS.silo.password, attributes: ['CREATEROLE', 'CREATEDB'] });
      // The pool's erasure verifier: bypasses RLS, reads only (README "Offboarding").
      await pg.createRole(AUDITOR.user, { password: AUDITOR.password, attributes: ['BYPASSRLS'] });
      await pg.query(`GRANT pg_read_all_data TO ${AUDITOR.user}`);

      const dir = mkdtempSync(join(tmpdir(), 'tenancy-lifecycle-'));
      const root = join(dir, 'project');
      mkdirSync(join(root, 'tenants'), { recursive: true });
      cpSync(join(SAMPLE_PROJECT, 'platform.yaml'), join(root, 'platform.yaml'));
      if (options.sampleTenants) cpSync(join(SAMPLE_PROJECT, 'tenants'), join(root, 'tenants'), { recursive: true });
      if (options.git) {
        const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { stdio: 'pipe', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@localhost', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@localhost' } });
        git('init', '-q', '-b', 'main');
        git('add', '-A');
        git('commit', '-q', '-m', 'initial registry');
      }
      const host = pg.host;
      const port = pg.port;
      const platformOutputsFile = join(dir, 'platform-outputs.json');
      writeFileSync(platformOutputsFile, JSON.stringify({
        'platform-us-east-1': {
          bridge_cluster_identifier: 'tenancy-bridge', bridge_endpoint: host, bridge_port: port, bridge_database: MASTERS.bridge.database, bridge_master_secret_arn: ARN('rds!cluster-bridge'),
          pool_cluster_identifier: 'tenancy-pool', pool_endpoint: host, pool_port: port, pool_database: MASTERS.pool.database, pool_master_secret_arn: ARN('rds!cluster-pool'),
          control_plane_cluster_identifier: 'tenancy-control-plane', control_plane_endpoint: host, control_plane_port: port, control_plane_database: MASTERS.controlPlane.database, control_plane_master_secret_arn: ARN('rds!cluster-cp'),
          tenant_secrets_key_arn: 'arn:aws:kms:us-east-1:111122223333:key/1',
          silo_endpoint: host, silo_port: port, silo_master_secret_arn: ARN('rds!local-silo'),
        },
      }));
      const secretsFile = join(dir, 'secrets.json');
      writeFileSync(secretsFile, JSON.stringify({
        [ARN('rds!cluster-bridge')]: { username: MASTERS.bridge.user, password: MASTERS.bridge.password },
        [ARN('rds!cluster-pool')]: { username: MASTERS.pool.user, password: MASTERS.pool.password },
        [ARN('rds!cluster-cp')]: { username: MASTERS.controlPlane.user, password: MASTERS.controlPlane.password },
        [ARN('rds!local-silo')]: { username: MASTERS.silo.user, password: MASTERS.silo.password },
        'tenancy/pool/app-credentials': { username: 'pool_app', password: POOL_APP_PASSWORD },
        'tenancy/pool/auditor-credentials': { username: AUDITOR.user, password: AUDITOR.password },
      }), { mode: 0o600 });

      const stripeKey = `sk_test_lifecycle${Math.random().toString(36).slice(2, 12)}`;
      await ensureCatalog(new Stripe(stripeKey, { ...stripe.stripeConfig(), maxNetworkRetries: 0 }), DEFAULT_CATALOG);
      return new LifecycleTestbed(pg, redis, stripe, smtp, dir, root, platformOutputsFile, secretsFile, stripeKey);
    } catch (e) {
      for (const s of started) await s.stop().catch(() => undefined);
      throw e;
    }
  }

  /** The control plane as its master user over TLS (verify-full against the cluster's CA). */
  get controlPlaneUrl(): string {
    return `postgres://${MASTERS.controlPlane.user}:${MASTERS.controlPlane.password}@${this.pg.host}:${this.pg.port}/${MASTERS.controlPlane.database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(this.pg.tls!.caFile)}`;
  }

  /** The lifecycle's environment variables for this testbed (what a `tenancy worker` child gets). */
  childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CHECKPOINT_DISABLE: '1',
      TENANCY_ROOT: this.root,
      TENANCY_WORK_DIR: join(this.dir, 'work'),
      TENANCY_REDIS_URL: this.redis.url,
      TENANCY_CONTROL_PLANE_URL: this.controlPlaneUrl,
      TENANCY_DEPLOY: 'local',
      TENANCY_PLATFORM_OUTPUTS: this.platformOutputsFile,
      TENANCY_SECRETS_FILE: this.secretsFile,
      TENANCY_SSL_CA: this.pg.tls!.caFile,
      TENANCY_MIGRATIONS: join(repoRoot(), 'migrations'),
      ...(this.smtp ? { TENANCY_SMTP_URL: this.smtp.url, TENANCY_MAIL_FROM: 'Tenancy <noreply@saas.example.com>' } : {}),
      STRIPE_SECRET_KEY: this.stripeKey,
      TENANCY_STRIPE_API_URL: this.stripe.url,
      TENANCY_BILLING_SUCCESS_URL: 'https://saas.example.com/billing/done',
      TENANCY_BILLING_CANCEL_URL: 'https://saas.example.com/billing/canceled',
      TENANCY_ACTOR: 'lifecycle-test',
      ...extra,
    };
  }

  config(overrides: Partial<LifecycleConfig> = {}, env: NodeJS.ProcessEnv = {}): LifecycleConfig {
    return lifecycleConfig(this.childEnv(env), overrides, join(repoRoot(), 'migrations'));
  }

  /** LifecycleServices on this testbed, billing on the local Stripe server. */
  open(overrides: Partial<LifecycleConfig> = {}, parts: LifecycleOverrides = {}, env: NodeJS.ProcessEnv = {}): Promise<LifecycleServices> {
    const childEnv = this.childEnv(env);
    return LifecycleServices.open(this.config(overrides, env), { billing: billingFromConfig(childEnv), ...parts });
  }

  /** A fresh Stripe SDK client on this testbed's account. */
  stripeClient(): Stripe {
    return new Stripe(this.stripeKey, { ...this.stripe.stripeConfig(), maxNetworkRetries: 0 });
  }

  /** Runs `close` (a worker, a queue, services) when the testbed stops, before its servers do (newest first). */
  track<T>(value: T, close: (value: T) => Promise<unknown> | unknown): T {
    this.closers.push(() => close(value));
    return value;
  }

  async stop(): Promise<void> {
    for (const close of this.closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    await Promise.all([this.pg.stop(), this.redis.stop(), this.stripe.stop(), this.smtp?.stop()].map((p) => p?.catch(() => undefined)));
    if (!KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}

export function useLifecycleTestbed(options: TestbedOptions = {}): () => LifecycleTestbed {
  let bed: LifecycleTestbed | undefined;
  beforeAll(async () => {
    bed = await LifecycleTestbed.start(options);
  });
  afterAll(async () => {
    await bed?.stop();
  });
  return () => {
    if (!bed) throw new Error('useLifecycleTestbed: the testbed did not start (see the beforeAll error)');
    return bed;
  };
}
