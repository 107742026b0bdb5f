import { scramSha256Verifier } from '../db/scram';
import { tenantSqlNames } from '../db/sql';
import { checksumOf, latestVersion, type MigrationSets } from '../migrate/migration-set';
import { FAILING_STATUSES } from '../migrate/result';
import { migrateTargets } from '../migrate/runner';
import { bridgeTarget, poolTarget, siloTarget, type MigrationTarget } from '../migrate/targets';
import { platformNames } from '../naming';
import { PLAN_PROFILES } from '../plans';
import { POOL_DEFAULTS, provisionPool } from '../pool/provision';
import type { DatabaseEndpoint } from './database-connector';
import { recordedBridgeShard } from '../registry/bridge-shards';
import { DEFAULT_BRIDGE_SHARD } from '../registry/tenant-schema';
import { bridgeShardCluster, type PlatformOutputs, type SharedCluster, type TenantOutputs } from './deploy-outputs';
import type { HookContext, PostApplyHook } from './post-apply-hook';
import { provisionTenantSchema } from './tenant-schema-provisioning';

/**
 * The hooks every deployed tenant gets, in order: register it in the control plane, provision
 * its database objects, migrate them, mark it active. Each is idempotent.
 */
export function builtinHooks(migrations: MigrationSets): PostApplyHook[] {
  return [registerHook, provisionHook, migrateHook(migrations), activateHook];
}

/** Where the tenant's data lives, as the control plane and the router see it (no password). */
export function placementOf(tenant: TenantOutputs, platform: PlatformOutputs | undefined): Record<string, unknown> {
  switch (tenant.model) {
    case 'silo': {
      const names = tenantSqlNames(tenant.slug);
      return { host: tenant.db_address, port: tenant.db_port, database: tenant.db_name, schema: names.schema, role: names.role, secret_ref: tenant.app_credentials_secret_arn ?? null };
    }
    case 'bridge': {
      const cluster = shared(platform, 'bridge', tenant);
      // The shard is recorded for the placement decisions (bridge-placement.ts); none means the default shard.
      return { host: cluster.endpoint, port: cluster.port, database: tenant.db_name, schema: tenant.schema, role: tenant.role, secret_ref: tenant.credentials_secret_arn, ...(tenant.bridge_shard ? { bridge_shard: tenant.bridge_shard } : {}) };
    }
    case 'pool': {
      const cluster = shared(platform, 'pool', tenant);
      return { host: cluster.endpoint, port: cluster.port, database: tenant.db_name, schema: POOL_DEFAULTS.schema, role: tenant.app_role, secret_ref: poolAppSecretRef(tenant), tenant_setting: tenant.tenant_setting };
    }
  }
}

/** The admin (master user) endpoint of the database holding the tenant's data. */
export function adminEndpoint(tenant: TenantOutputs, platform: PlatformOutputs | undefined): DatabaseEndpoint {
  switch (tenant.model) {
    case 'silo':
      return { host: tenant.db_address, port: tenant.db_port, database: tenant.db_name, secretRef: tenant.db_master_secret_arn };
    case 'bridge':
    case 'pool': {
      const cluster = shared(platform, tenant.model, tenant);
      return { host: cluster.endpoint, port: cluster.port, database: tenant.db_name, secretRef: cluster.masterSecretArn };
    }
  }
}

/** Registers (or updates) the tenant in the control plane; new tenants start as `provisioning`. */
export const registerHook: PostApplyHook = {
  name: 'register',
  input: ({ tenant, platform }) => ({ tenant, placement: placementOf(tenant, platform) }),
  async run({ tenant, platform, controlPlane }) {
    const existing = await controlPlane.tenantById(tenant.tenant_id);
    if (existing && tenant.model === 'bridge') assertSameBridgeShard(tenant, existing.placement);
    const registered = await controlPlane.upsertTenant({
      id: tenant.tenant_id, slug: tenant.slug, model: tenant.model, plan: tenant.plan, region: tenant.region,
      status: existing?.status ?? 'provisioning',
      placement: placementOf(tenant, platform),
    });
    return { registered };
  },
};

/** bridge: schema and login role; silo: schema and app role in its database; pool: roles, schema, grants, RLS. */
export const provisionHook: PostApplyHook = {
  name: 'provision',
  input: ({ tenant, platform }) => ({ model: tenant.model, slug: tenant.slug, admin: adminEndpoint(tenant, platform), placement: placementOf(tenant, platform) }),
  async run({ tenant, platform, databases, controlPlane }) {
    const admin = adminEndpoint(tenant, platform);
    switch (tenant.model) {
      case 'bridge':
      case 'silo': {
        const secretRef = tenant.model === 'bridge' ? tenant.credentials_secret_arn : tenant.app_credentials_secret_arn;
        if (!secretRef) throw new Error(`tenant-${tenant.slug}: no app_credentials_secret_arn output; deploy the stack with this version first`);
        const { password } = await databases.credentials(secretRef);
        // Objects from before attribution are adopted only for a tenant the control plane already
        // knows as provisioned; a new tenant never inherits a leftover schema or role.
        const known = await controlPlane.tenantById(tenant.tenant_id);
        const adoptUnattributed = known?.status === 'active' || known?.status === 'past_due' || known?.status === 'suspended';
        await databases.withClient(admin, (c) => provisionTenantSchema(c, {
          slug: tenant.slug, tenantId: tenant.tenant_id, password, database: admin.database, limits: PLAN_PROFILES[tenant.plan].databaseRole, adoptUnattributed,
        }));
        return { schema: tenantSqlNames(tenant.slug).schema, role: tenantSqlNames(tenant.slug).role };
      }
      case 'pool': {
        const { password } = await databases.credentials(poolAppSecretRef(tenant));
        const result = await databases.withClient(admin, (c) =>
          provisionPool(c, { appRole: tenant.app_role, appPassword: scramSha256Verifier(password), tenantSetting: tenant.tenant_setting }));
        return { schema: result.schema, appRole: result.appRole, changes: [...result.changes], tables: result.tables.length };
      }
    }
  },
};

/** Applies the pending tenant (bridge, silo) or pool migrations, with the runner's locks and checks. */
export function migrateHook(migrations: MigrationSets): PostApplyHook {
  return {
    name: 'migrate',
    input: (ctx) => {
      const set = ctx.tenant.model === 'pool' ? migrations.pool : migrations.tenant;
      return { admin: adminEndpoint(ctx.tenant, ctx.platform), version: set ? latestVersion(set) : 0, checksums: set?.migrations.map((m) => checksumOf(m.up.sql)) ?? [] };
    },
    async run(ctx) {
      const target = await migrationTarget(ctx);
      const run = await migrateTargets({ targets: [target], migrations, concurrency: 1 });
      const [result] = run.results;
      if (!result || FAILING_STATUSES.has(result.status)) throw new Error(`migrating ${target.name}: ${result?.status ?? 'no result'}${result?.error ? `: ${result.error}` : ''}`);
      return { target: result.target, status: result.status, version: result.version, migrations: result.migrations.map((m) => `${m.version}_${m.name}`) };
    },
  };
}

/** Marks a tenant that finished provisioning as active (suspended tenants stay suspended). */
export const activateHook: PostApplyHook = {
  name: 'activate',
  input: ({ tenant }) => ({ tenant: tenant.tenant_id }),
  async run({ tenant, controlPlane }) {
    const current = await controlPlane.tenantById(tenant.tenant_id);
    if (current?.status === 'provisioning') await controlPlane.setStatus(tenant.tenant_id, 'active');
    return { status: current?.status === 'provisioning' ? 'active' : current?.status ?? 'unknown' };
  },
};

async function migrationTarget({ tenant, platform, databases }: HookContext): Promise<MigrationTarget> {
  const connection = await databases.config(adminEndpoint(tenant, platform));
  switch (tenant.model) {
    case 'bridge':
      return bridgeTarget({ slug: tenant.slug, tenantId: tenant.tenant_id, connection });
    case 'silo':
      return siloTarget({ slug: tenant.slug, tenantId: tenant.tenant_id, connection });
    case 'pool':
      return poolTarget({ connection, role: POOL_DEFAULTS.ownerRole });
  }
}

function shared(platform: PlatformOutputs | undefined, kind: 'bridge' | 'pool', tenant: TenantOutputs): SharedCluster {
  if (kind === 'bridge' && tenant.model === 'bridge' && tenant.bridge_shard && tenant.bridge_shard !== DEFAULT_BRIDGE_SHARD) {
    const cluster = bridgeShardCluster(platform, tenant.bridge_shard);
    if (!cluster) throw new Error(`tenant-${tenant.slug}: no outputs of bridge shard ${tenant.bridge_shard} for region ${tenant.region} (bridge_shard_${tenant.bridge_shard.replace(/-/g, '_')}_endpoint, …); deploy platform-${tenant.region} with the shard and add its outputs (--outputs)`);
    return cluster;
  }
  const cluster = platform?.[kind];
  if (!cluster) throw new Error(`tenant-${tenant.slug}: no ${kind} cluster outputs for region ${tenant.region}; add the outputs of stack platform-${tenant.region} (--outputs)`);
  return cluster;
}

/**
 * A bridge tenant stays on the shard the control plane records for it: a registry edit of its
 * placement would point it at an empty schema on another cluster (its data stays behind), so the
 * hooks refuse it before anything is recorded. A record without a host was never registered
 * (only the onboarding's decision, which the outputs then carry).
 */
export function assertSameBridgeShard(tenant: Extract<TenantOutputs, { model: 'bridge' }>, recorded: Record<string, unknown>): void {
  const was = recordedBridgeShard(recorded);
  const now = tenant.bridge_shard ?? DEFAULT_BRIDGE_SHARD;
  if (was !== undefined && was !== now) {
    throw new Error(
      `tenant-${tenant.slug}: its registry entry puts it on bridge shard "${now}", but its data is on bridge shard "${was}" (control plane): ` +
        `a placement is never changed by an edit (it would not move the data). Restore placement.bridgeShard: ${was} in its entry; ` +
        'to move a tenant, export its schema, onboard it anew on the other shard and offboard the old one.',
    );
  }
}

/** The pool application role's secret: `<platform>/pool/app-credentials` (lib/naming.ts). */
function poolAppSecretRef(tenant: Extract<TenantOutputs, { model: 'pool' }>): string {
  const platformName = /^(.+)-pool$/.exec(tenant.cluster_identifier)?.[1];
  if (!platformName) throw new Error(`tenant-${tenant.slug}: cluster_identifier ${tenant.cluster_identifier} is not a pool cluster (<platform>-pool)`);
  return platformNames(platformName).poolAppSecretName;
}
