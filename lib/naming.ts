import { BRIDGE_SHARD_ID, DEFAULT_BRIDGE_SHARD, SLUG_PATTERN } from './registry/tenant-schema';
import { cdktfNumberTokenIn } from './terraform-literal';

/**
 * Every name derived from a tenant slug, in one place. Each function re-checks the slug,
 * because these names reach SQL, Kubernetes and AWS APIs: a construct used directly
 * (without the registry) must not be able to smuggle anything through.
 */
export function assertSafeSlug(slug: string, where = 'tenant'): void {
  if (typeof slug !== 'string' || !SLUG_PATTERN.test(slug)) {
    throw new Error(`${where}: slug ${JSON.stringify(slug)} is not a safe tenant slug (${SLUG_PATTERN})`);
  }
  const token = cdktfNumberTokenIn(slug);
  if (token) throw new Error(`${where}: slug ${JSON.stringify(slug)} contains "${token}", which cdktf reads as one of its encoded tokens`);
}

export const tenantNames = (slug: string) => {
  assertSafeSlug(slug);
  const sql = slug.replace(/-/g, '_');
  return {
    /** cdktf stack id, also the directory under cdktf.out/stacks. */
    stack: `tenant-${slug}`,
    /** Kubernetes namespace. */
    namespace: `tenant-${slug}`,
    /** PostgreSQL schema (bridge) and database (silo). */
    schema: `tenant_${sql}`,
    database: `tenant_${sql}`,
    /** PostgreSQL login role of the tenant's application. */
    role: `tenant_${sql}_app`,
    /** RDS instance identifier, and the prefix of the tenant's other AWS names. */
    awsPrefix: `tenant-${slug}`,
    /** Secrets Manager and SSM path prefix. */
    path: `tenancy/tenants/${slug}`,
  };
};

/** State key of a tenant's stack: the immutable id, so a renamed slug keeps its state. */
export const tenantStateKey = (tenantId: string) => `tenants/${tenantId}.tfstate`;
export const platformStateKey = (region: string) => `platform/${region}.tfstate`;

/** Names of the shared resources of one region's platform stack. */
export const platformNames = (platformName: string) => ({
  bridgeCluster: `${platformName}-bridge`,
  bridgeDatabase: 'tenants',
  poolCluster: `${platformName}-pool`,
  poolDatabase: 'pool',
  controlPlaneCluster: `${platformName}-control-plane`,
  controlPlaneDatabase: 'control_plane',
  /** KMS alias of the key that encrypts tenants' secrets on the shared clusters. */
  tenantSecretsKeyAlias: `alias/${platformName}/tenant-secrets`,
  /** PostgreSQL role the pool application connects as (not the owner, no BYPASSRLS). */
  poolAppRole: 'pool_app',
  /** Transaction-local setting that carries the tenant id for RLS policies. */
  poolTenantSetting: 'app.tenant_id',
  /** Private DNS zone with stable names for the shared clusters, so tenant stacks need no platform state. */
  databaseZone: `db.${platformName}.internal`,
  bridgeHost: `bridge.db.${platformName}.internal`,
  poolHost: `pool.db.${platformName}.internal`,
  controlPlaneHost: `control-plane.db.${platformName}.internal`,
  /** Secrets Manager name of the pool application role's credentials (written by the pool's post-apply hook). */
  poolAppSecretName: `${platformName}/pool/app-credentials`,
});

/**
 * Names of one bridge shard (platform.yaml `regions.<region>.bridgeShards`). The default shard keeps
 * the names of the single bridge cluster of earlier versions, so existing clusters, tenants and
 * outputs are unchanged; another shard gets its id in each name, and a database name of its own,
 * so a connection that reaches the wrong cluster fails instead of landing in another shard's data.
 */
export const bridgeShardNames = (platformName: string, shard: string) => {
  if (!BRIDGE_SHARD_ID.test(shard)) throw new Error(`bridge shard ${JSON.stringify(shard)} is not a shard id (${BRIDGE_SHARD_ID})`);
  const names = platformNames(platformName);
  if (shard === DEFAULT_BRIDGE_SHARD) return { cluster: names.bridgeCluster, database: names.bridgeDatabase, host: names.bridgeHost, outputPrefix: 'bridge', constructId: 'bridge' };
  const sql = shard.replace(/-/g, '_');
  return {
    cluster: `${names.bridgeCluster}-${shard}`,
    database: `${names.bridgeDatabase}_${sql}`,
    host: `bridge-${shard}.db.${platformName}.internal`,
    /** Platform outputs `bridge_shard_<id>_endpoint`, … (hyphens as underscores). */
    outputPrefix: `bridge_shard_${sql}`,
    constructId: `bridge-${shard}`,
  };
};
