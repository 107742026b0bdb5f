import { Construct } from 'constructs';
import { tenantNames } from './naming';
import { TenantCredentialsSecret } from './tenant-credentials-secret';

/** Properties of a bridge (schema-per-tenant) tenant. */
export interface BridgeTenantProps {
  /** Immutable tenant id (UUID). */
  readonly tenantId: string;
  /** Tenant slug; the schema is tenant_<slug> and the login role tenant_<slug>_app. */
  readonly slug: string;
  /** Identifier of the shared bridge cluster (created by the PlatformStack of the tenant's region). */
  readonly clusterIdentifier: string;
  /** Database on the bridge cluster that holds the tenant schemas. */
  readonly databaseName: string;
  /** KMS key (id, ARN or alias) that encrypts the tenant's credentials secret. */
  readonly secretsKmsKeyId: string;
  /** Days a deleted credentials secret can still be restored (7-30). @default 30 */
  readonly secretRecoveryWindowDays?: number;
}

/**
 * A tenant with its own schema on the shared bridge cluster. Terraform owns the tenant's
 * credentials secret ({@link TenantCredentialsSecret}); the post-apply hook creates the schema and
 * the login role from it (PostgreSQL objects are not AWS resources, and the hook runs where the
 * cluster is reachable).
 */
export class BridgeTenant extends Construct {
  readonly tenantId: string;
  readonly slug: string;
  readonly schemaName: string;
  readonly roleName: string;
  readonly clusterIdentifier: string;
  readonly databaseName: string;
  /** The login role's credentials secret, encrypted with `secretsKmsKeyId`. */
  readonly credentials: TenantCredentialsSecret;

  constructor(scope: Construct, id: string, props: BridgeTenantProps) {
    super(scope, id);
    const names = tenantNames(props.slug);
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(props.clusterIdentifier)) throw new Error(`BridgeTenant ${props.slug}: clusterIdentifier ${JSON.stringify(props.clusterIdentifier)} is not an RDS cluster identifier`);

    this.tenantId = props.tenantId;
    this.slug = props.slug;
    this.schemaName = names.schema;
    this.roleName = names.role;
    this.clusterIdentifier = props.clusterIdentifier;
    this.databaseName = props.databaseName;

    // Also checks the database name, the KMS key and the recovery window.
    this.credentials = new TenantCredentialsSecret(this, 'credentials', {
      slug: props.slug,
      tenantId: this.tenantId,
      kmsKeyId: props.secretsKmsKeyId,
      server: props.clusterIdentifier,
      databaseName: props.databaseName,
      connection: { schema: names.schema, dbClusterIdentifier: props.clusterIdentifier },
      recoveryWindowDays: props.secretRecoveryWindowDays,
    });
  }

  /** What the post-apply hook needs to create the schema and role and migrate it. */
  get hookOutputs(): Record<string, string> {
    return {
      cluster_identifier: this.clusterIdentifier,
      db_name: this.databaseName,
      schema: this.schemaName,
      role: this.roleName,
      credentials_secret_arn: this.credentials.arn,
    };
  }
}
