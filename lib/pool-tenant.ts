import { Construct } from 'constructs';
import { tenantNames } from './naming';

/** Properties of a pool (shared tables with row-level security) tenant. */
export interface PoolTenantProps {
  /** Immutable tenant id (UUID); it is the value of tenant_id in every pooled row. */
  readonly tenantId: string;
  /** Tenant slug. */
  readonly slug: string;
  /** Identifier of the shared pool cluster (created by the PlatformStack of the tenant's region). */
  readonly clusterIdentifier: string;
  /** Database on the pool cluster that holds the shared tables. */
  readonly databaseName: string;
  /** Role the application connects as; never the table owner and never BYPASSRLS. */
  readonly appRole: string;
  /** Transaction-local setting the RLS policies read the tenant id from. @default "app.tenant_id" */
  readonly tenantSetting?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A tenant whose rows live in the shared pool tables. Its slice of the pool is its tenant id:
 * no AWS resource is dedicated to it, so this construct records where the slice lives and
 * what the post-apply hook needs to verify RLS and seed the tenant.
 */
export class PoolTenant extends Construct {
  readonly tenantId: string;
  readonly slug: string;
  readonly clusterIdentifier: string;
  readonly databaseName: string;
  readonly appRole: string;
  readonly tenantSetting: string;

  constructor(scope: Construct, id: string, props: PoolTenantProps) {
    super(scope, id);
    tenantNames(props.slug);
    if (!UUID.test(props.tenantId)) throw new Error(`PoolTenant ${props.slug}: tenantId ${JSON.stringify(props.tenantId)} must be a UUID: it is the RLS key of every row`);
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(props.appRole)) throw new Error(`PoolTenant ${props.slug}: appRole ${JSON.stringify(props.appRole)} must be a lowercase SQL identifier`);
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(props.clusterIdentifier)) throw new Error(`PoolTenant ${props.slug}: clusterIdentifier ${JSON.stringify(props.clusterIdentifier)} is not an RDS cluster identifier`);
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(props.databaseName)) throw new Error(`PoolTenant ${props.slug}: databaseName ${JSON.stringify(props.databaseName)} must be a lowercase SQL identifier`);
    const setting = props.tenantSetting ?? 'app.tenant_id';
    // A custom setting must be namespaced (x.y) or PostgreSQL rejects set_config on it.
    if (!/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/.test(setting)) throw new Error(`PoolTenant ${props.slug}: tenantSetting ${JSON.stringify(setting)} must look like "app.tenant_id"`);
    this.tenantId = props.tenantId.toLowerCase();
    this.slug = props.slug;
    this.clusterIdentifier = props.clusterIdentifier;
    this.databaseName = props.databaseName;
    this.appRole = props.appRole;
    this.tenantSetting = setting;
  }

  /** What the post-apply hook needs to seed the tenant and audit RLS for it. */
  get hookOutputs(): Record<string, string> {
    return {
      cluster_identifier: this.clusterIdentifier,
      db_name: this.databaseName,
      app_role: this.appRole,
      tenant_setting: this.tenantSetting,
    };
  }
}
