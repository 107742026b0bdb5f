import { Construct } from 'constructs';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group';

/** Properties of a shared Aurora PostgreSQL cluster (bridge, pool or control plane). */
export interface SharedPostgresClusterProps {
  /** Cluster identifier; instance identifiers derive from it. */
  readonly identifier: string;
  /** Database created in the cluster. */
  readonly databaseName: string;
  /** KMS key ARN for storage, the master secret and Performance Insights. */
  readonly kmsKeyArn: string;
  /** DB subnet group of the platform's private subnets. */
  readonly dbSubnetGroupName: string;
  /** Security groups of the cluster (admitting only the workloads). */
  readonly securityGroupIds: readonly string[];
  /** Aurora PostgreSQL version. @default "16.6" */
  readonly engineVersion?: string;
  /** Instance class of every instance. @default "db.r6g.large" */
  readonly instanceClass?: string;
  /** Number of instances: one writer and the rest readers in other AZs. @default 2 */
  readonly instances?: number;
  /** Days of automated backups (1-35). @default 14 */
  readonly backupRetentionDays?: number;
  /** Refuse deletion. @default true */
  readonly deletionProtection?: boolean;
}

/**
 * A shared Aurora PostgreSQL cluster: encrypted with the platform key, master password managed
 * by RDS in Secrets Manager, SSL forced, private, deletion protection and a final snapshot.
 */
export class SharedPostgresCluster extends Construct {
  readonly cluster: RdsCluster;

  constructor(scope: Construct, id: string, props: SharedPostgresClusterProps) {
    super(scope, id);
    const engineVersion = props.engineVersion ?? '16.6';
    const major = engineVersion.split('.')[0];
    const count = props.instances ?? 2;
    const retention = props.backupRetentionDays ?? 14;
    if (!Number.isInteger(count) || count < 1 || count > 15) throw new Error(`SharedPostgresCluster ${props.identifier}: instances must be 1-15, got ${count}`);
    if (!Number.isInteger(retention) || retention < 1 || retention > 35) throw new Error(`SharedPostgresCluster ${props.identifier}: backupRetentionDays must be 1-35, got ${retention}`);

    const parameters = new RdsClusterParameterGroup(this, 'parameters', {
      name: `${props.identifier}-aurora-pg${major}`,
      family: `aurora-postgresql${major}`,
      description: `${props.identifier}: SSL only, connection logging`,
      parameter: [
        { name: 'rds.force_ssl', value: '1' },
        { name: 'password_encryption', value: 'scram-sha-256' },
        { name: 'log_connections', value: '1' },
        { name: 'log_disconnections', value: '1' },
      ],
      lifecycle: { createBeforeDestroy: true },
    });

    this.cluster = new RdsCluster(this, 'cluster', {
      clusterIdentifier: props.identifier,
      engine: 'aurora-postgresql',
      engineVersion,
      databaseName: props.databaseName,
      masterUsername: 'tenancy_admin',
      manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: props.kmsKeyArn,
      storageEncrypted: true,
      kmsKeyId: props.kmsKeyArn,
      dbSubnetGroupName: props.dbSubnetGroupName,
      vpcSecurityGroupIds: [...props.securityGroupIds],
      dbClusterParameterGroupName: parameters.name,
      iamDatabaseAuthenticationEnabled: true,
      backupRetentionPeriod: retention,
      copyTagsToSnapshot: true,
      deletionProtection: props.deletionProtection ?? true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: `${props.identifier}-final`,
      enabledCloudwatchLogsExports: ['postgresql'],
    });

    for (let i = 0; i < count; i++) {
      new RdsClusterInstance(this, `instance-${i}`, {
        identifier: `${props.identifier}-${i}`,
        clusterIdentifier: this.cluster.id,
        engine: 'aurora-postgresql',
        engineVersion,
        instanceClass: props.instanceClass ?? 'db.r6g.large',
        publiclyAccessible: false,
        performanceInsightsEnabled: true,
        performanceInsightsKmsKeyId: props.kmsKeyArn,
        autoMinorVersionUpgrade: true,
        caCertIdentifier: 'rds-ca-rsa2048-g1',
      });
    }
  }
}
