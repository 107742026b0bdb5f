import { Construct } from 'constructs';
import { SiloDatabase, type SiloDatabaseProps } from './silo-database';
import { tenantNames } from './naming';
import { TenantCredentialsSecret } from './tenant-credentials-secret';
import type { Plan } from './registry/tenant-schema';

/** Overrides of the silo database's plan-derived settings. */
export type SiloDatabaseOverrides = Omit<SiloDatabaseProps, 'slug' | 'tenantId' | 'plan' | 'vpcId' | 'subnetIds' | 'allowedSecurityGroupIds' | 'regulated'>;

/** Properties of a silo (database-per-tenant) tenant. */
export interface SiloTenantProps {
  /** Immutable tenant id (UUID). */
  readonly tenantId: string;
  /** Tenant slug. */
  readonly slug: string;
  /** Commercial plan; it sizes the database. */
  readonly plan: Plan;
  /** VPC of the cluster the tenant's workloads run in. */
  readonly vpcId: string;
  /** Private subnets for the database, in at least two availability zones. */
  readonly subnetIds: readonly string[];
  /** Security group of the cluster's workloads (PgBouncer connects from there). */
  readonly workloadSecurityGroupId: string;
  /** HIPAA or PCI data: stricter backup and deletion rules. @default false */
  readonly regulated?: boolean;
  /** Overrides of the plan's database settings. @default none: the plan decides */
  readonly database?: SiloDatabaseOverrides;
  /** Days a deleted application credentials secret can still be restored (7-30). @default 30 */
  readonly secretRecoveryWindowDays?: number;
}

/**
 * A tenant with its own database. It composes the dedicated RDS instance
 * ({@link SiloDatabase}), the credentials of the tenant's least-privilege application role
 * ({@link TenantCredentialsSecret}, encrypted with the database's own key) and, on the Kubernetes
 * side, the PgBouncer pool in front of it, which logs in as that role (never as the master user).
 * The post-apply hook creates the role and its schema `tenant_<slug>` in the database with the
 * master secret and the password of this secret.
 */
export class SiloTenant extends Construct {
  readonly database: SiloDatabase;
  /** Credentials of the application role `tenant_<slug>_app`: PgBouncer and the workload use them. */
  readonly appCredentials: TenantCredentialsSecret;
  readonly tenantId: string;
  readonly slug: string;

  constructor(scope: Construct, id: string, props: SiloTenantProps) {
    super(scope, id);
    const names = tenantNames(props.slug);
    this.tenantId = props.tenantId;
    this.slug = props.slug;
    this.database = new SiloDatabase(this, 'database', {
      ...props.database,
      slug: props.slug,
      tenantId: props.tenantId,
      plan: props.plan,
      vpcId: props.vpcId,
      subnetIds: props.subnetIds,
      allowedSecurityGroupIds: [props.workloadSecurityGroupId],
      regulated: props.regulated,
    });
    const db = this.database;
    this.appCredentials = new TenantCredentialsSecret(this, 'app-credentials', {
      slug: props.slug,
      tenantId: this.tenantId,
      kmsKeyId: db.key.arn,
      server: names.awsPrefix,
      databaseName: db.settings.databaseName,
      connection: { host: db.instance.address, port: db.instance.port, schema: names.schema, dbInstanceIdentifier: names.awsPrefix },
      recoveryWindowDays: props.secretRecoveryWindowDays,
    });
  }

  /**
   * What the post-apply hooks need to reach and migrate the tenant database: the master secret to
   * create the application role, and the application role's secret for its password.
   */
  get hookOutputs(): Record<string, string | number> {
    const db = this.database;
    return {
      db_identifier: db.instance.identifier,
      db_address: db.instance.address,
      db_port: db.instance.port,
      db_name: db.settings.databaseName,
      db_master_secret_arn: db.instance.masterUserSecret.get(0).secretArn,
      db_kms_key_arn: db.key.arn,
      app_credentials_secret_arn: this.appCredentials.arn,
    };
  }
}
