import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { DbParameterGroup } from '@cdktf/provider-aws/lib/db-parameter-group';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { CLASSES_WITHOUT_PERFORMANCE_INSIGHTS, PLAN_PROFILES, REGULATED_MIN_BACKUP_RETENTION_DAYS } from './plans';
import { tenantNames } from './naming';
import type { Plan } from './registry/tenant-schema';

export const POSTGRES_PORT = 5432;
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The snapshot RDS takes when the instance is destroyed: kept after the destroy (it is the last
 * backup), so it is named by the tenant id too; `tenant-<slug>-final` alone would make a second
 * destroy for a later tenant with the slug fail with DBSnapshotAlreadyExists. RDS stores
 * identifiers in lowercase.
 */
export const finalSnapshotIdentifier = (slug: string, tenantId: string) => `${tenantNames(slug).awsPrefix}-final-${tenantId.toLowerCase()}`;
const LOG_EXPORTS = ['postgresql', 'upgrade'] as const;
/** Retentions CloudWatch Logs accepts; any other value fails at terraform validate. */
export const CLOUDWATCH_RETENTION_DAYS: readonly number[] = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** Properties of a tenant's dedicated RDS PostgreSQL instance. */
export interface SiloDatabaseProps {
  /** Tenant slug; every resource name derives from it. */
  readonly slug: string;
  /**
   * Immutable tenant id (UUID). Names that outlive the instance carry it: the final snapshot
   * `tenant-<slug>-final-<id>` stays after a destroy, and a later tenant with the same slug (a new id)
   * must not collide with it.
   */
  readonly tenantId: string;
  /** Plan that sizes the instance; each sizing prop below overrides one of its values. */
  readonly plan: Plan;
  /** VPC the instance and its security group live in. */
  readonly vpcId: string;
  /** Private subnets of the DB subnet group, in at least two availability zones. */
  readonly subnetIds: readonly string[];
  /** Security groups allowed to connect on 5432 (the cluster's workloads, where PgBouncer runs). */
  readonly allowedSecurityGroupIds: readonly string[];
  /**
   * Marks HIPAA or PCI data: backups are kept at least 30 days and deletion protection cannot be turned off.
   * @default false
   */
  readonly regulated?: boolean;
  /** PostgreSQL major version. @default "16" (RDS picks the newest minor and keeps it patched) */
  readonly engineVersion?: string;
  /** Instance class. @default the plan's class (db.t3.micro starter, db.t3.medium pro, db.m6g.large enterprise) */
  readonly instanceClass?: string;
  /** Initial storage in GiB. @default the plan's size */
  readonly allocatedStorageGb?: number;
  /** Ceiling of storage autoscaling in GiB. @default the plan's ceiling */
  readonly maxAllocatedStorageGb?: number;
  /** Days of automated backups (1-35). @default the plan's retention, at least 30 when regulated */
  readonly backupRetentionDays?: number;
  /** Standby in a second availability zone. @default true on enterprise, false otherwise */
  readonly multiAz?: boolean;
  /** Performance Insights retention; 0 turns it off. @default 7 on pro, 731 on enterprise, off on classes that lack it */
  readonly performanceInsightsRetentionDays?: 0 | 7 | 731;
  /** Refuse deletion until this is lifted deliberately (offboarding does so as an audited step). @default true */
  readonly deletionProtection?: boolean;
  /** Days CloudWatch keeps the exported PostgreSQL logs. @default 365 */
  readonly logRetentionDays?: number;
  /** Name of the database created in the instance. @default tenant_<slug> (hyphens as underscores) */
  readonly databaseName?: string;
  /** Master user; its password is generated and kept by RDS in Secrets Manager. @default "tenancy_admin" */
  readonly masterUsername?: string;
}

type ResolvedProps = Required<SiloDatabaseProps>;

/**
 * A tenant's own RDS PostgreSQL instance: its own KMS key (rotated), storage and Performance
 * Insights encrypted with it, a master password that RDS generates and keeps in Secrets Manager
 * (never in Terraform), SSL forced, no public address, reachable only from the workload security
 * group, deletion protection and a final snapshot.
 */
export class SiloDatabase extends Construct {
  readonly key: KmsKey;
  readonly instance: DbInstance;
  readonly securityGroup: SecurityGroup;
  /** The settings actually used, after plan defaults. */
  readonly settings: Readonly<ResolvedProps>;

  constructor(scope: Construct, id: string, props: SiloDatabaseProps) {
    super(scope, id);
    const s = (this.settings = SiloDatabase.resolve(props));
    const names = tenantNames(s.slug);
    const major = s.engineVersion.split('.')[0];

    this.key = new KmsKey(this, 'key', {
      description: `Encrypts the database, its snapshots, its secrets and Performance Insights of tenant ${s.slug}`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
    });
    new KmsAlias(this, 'key-alias', { name: `alias/${names.awsPrefix}`, targetKeyId: this.key.keyId });

    const subnets = new DbSubnetGroup(this, 'subnets', {
      name: names.awsPrefix,
      description: `Private subnets of tenant ${s.slug}'s database`,
      subnetIds: [...s.subnetIds],
    });

    // No egress: RDS needs none. An explicit empty list also removes rules added outside Terraform.
    this.securityGroup = new SecurityGroup(this, 'security-group', {
      name: `${names.awsPrefix}-db`,
      description: `PostgreSQL of tenant ${s.slug}: only the cluster's workloads`,
      vpcId: s.vpcId,
      ingress: [{
        description: 'PostgreSQL from cluster workloads (PgBouncer)',
        protocol: 'tcp',
        fromPort: POSTGRES_PORT,
        toPort: POSTGRES_PORT,
        securityGroups: [...s.allowedSecurityGroupIds],
      }],
      egress: [],
      revokeRulesOnDelete: true,
    });

    const parameters = new DbParameterGroup(this, 'parameters', {
      name: `${names.awsPrefix}-pg${major}`,
      family: `postgres${major}`,
      description: `Tenant ${s.slug}: SSL only, connection and slow-query logging`,
      parameter: [
        { name: 'rds.force_ssl', value: '1' },
        { name: 'password_encryption', value: 'scram-sha-256' },
        { name: 'log_connections', value: '1' },
        { name: 'log_disconnections', value: '1' },
        { name: 'log_min_duration_statement', value: '1000' },
      ],
      lifecycle: { createBeforeDestroy: true },
    });

    // Created ahead of RDS so the exported logs get a retention instead of "never expire".
    const logGroups = LOG_EXPORTS.map((log) => new CloudwatchLogGroup(this, `log-${log}`, {
      name: `/aws/rds/instance/${names.awsPrefix}/${log}`,
      retentionInDays: s.logRetentionDays,
    }));

    const pi = s.performanceInsightsRetentionDays > 0;
    this.instance = new DbInstance(this, 'instance', {
      identifier: names.awsPrefix,
      engine: 'postgres',
      engineVersion: s.engineVersion,
      instanceClass: s.instanceClass,
      allocatedStorage: s.allocatedStorageGb,
      maxAllocatedStorage: s.maxAllocatedStorageGb,
      storageType: 'gp3',
      storageEncrypted: true,
      kmsKeyId: this.key.arn,
      dbName: s.databaseName,
      username: s.masterUsername,
      manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: this.key.arn,
      iamDatabaseAuthenticationEnabled: true,
      dbSubnetGroupName: subnets.name,
      vpcSecurityGroupIds: [this.securityGroup.id],
      parameterGroupName: parameters.name,
      publiclyAccessible: false,
      multiAz: s.multiAz,
      backupRetentionPeriod: s.backupRetentionDays,
      copyTagsToSnapshot: true,
      deleteAutomatedBackups: false,
      deletionProtection: s.deletionProtection,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: finalSnapshotIdentifier(s.slug, s.tenantId),
      performanceInsightsEnabled: pi,
      performanceInsightsKmsKeyId: pi ? this.key.arn : undefined,
      performanceInsightsRetentionPeriod: pi ? s.performanceInsightsRetentionDays : undefined,
      enabledCloudwatchLogsExports: [...LOG_EXPORTS],
      autoMinorVersionUpgrade: true,
      caCertIdentifier: 'rds-ca-rsa2048-g1',
      dependsOn: logGroups,
    });
  }

  /** Applies plan defaults to `props` and rejects combinations that cannot work or are unsafe. */
  static resolve(props: SiloDatabaseProps): ResolvedProps {
    const names = tenantNames(props.slug);
    const profile = PLAN_PROFILES[props.plan];
    if (!profile) throw new Error(`SiloDatabase ${props.slug}: unknown plan ${JSON.stringify(props.plan)}`);
    const regulated = props.regulated ?? false;
    const instanceClass = props.instanceClass ?? profile.silo.instanceClass;
    const s: ResolvedProps = {
      slug: props.slug,
      tenantId: props.tenantId,
      plan: props.plan,
      vpcId: props.vpcId,
      subnetIds: props.subnetIds,
      allowedSecurityGroupIds: props.allowedSecurityGroupIds,
      regulated,
      engineVersion: props.engineVersion ?? '16',
      instanceClass,
      allocatedStorageGb: props.allocatedStorageGb ?? profile.silo.allocatedStorageGb,
      maxAllocatedStorageGb: props.maxAllocatedStorageGb ?? profile.silo.maxAllocatedStorageGb,
      backupRetentionDays:
        props.backupRetentionDays ??
        Math.max(profile.silo.backupRetentionDays, regulated ? REGULATED_MIN_BACKUP_RETENTION_DAYS : 0),
      multiAz: props.multiAz ?? profile.silo.multiAz,
      performanceInsightsRetentionDays:
        props.performanceInsightsRetentionDays ??
        (CLASSES_WITHOUT_PERFORMANCE_INSIGHTS.has(instanceClass) ? 0 : profile.silo.performanceInsightsRetentionDays || 7),
      deletionProtection: props.deletionProtection ?? true,
      logRetentionDays: props.logRetentionDays ?? 365,
      databaseName: props.databaseName ?? names.database,
      masterUsername: props.masterUsername ?? 'tenancy_admin',
    };

    const fail = (msg: string): never => {
      throw new Error(`SiloDatabase ${s.slug}: ${msg}`);
    };
    if (typeof s.tenantId !== 'string' || !TENANT_ID.test(s.tenantId)) fail(`tenantId ${JSON.stringify(s.tenantId)} must be the tenant's UUID`);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(s.engineVersion) || Number(s.engineVersion.split('.')[0]) < 13) fail(`engineVersion ${JSON.stringify(s.engineVersion)} must be PostgreSQL 13 or newer, e.g. "16" or "16.4"`);
    if (!/^db\.[a-z0-9]+\.[a-z0-9]+$/.test(s.instanceClass)) fail(`instanceClass ${JSON.stringify(s.instanceClass)} is not an RDS instance class such as "db.t3.medium"`);
    if (!Number.isInteger(s.allocatedStorageGb) || s.allocatedStorageGb < 20 || s.allocatedStorageGb > 65536) fail(`allocatedStorageGb must be a whole number from 20 to 65536 (gp3), got ${s.allocatedStorageGb}`);
    if (!Number.isInteger(s.maxAllocatedStorageGb) || s.maxAllocatedStorageGb <= s.allocatedStorageGb) fail(`maxAllocatedStorageGb (${s.maxAllocatedStorageGb}) must be greater than allocatedStorageGb (${s.allocatedStorageGb}) for storage autoscaling`);
    if (!Number.isInteger(s.backupRetentionDays) || s.backupRetentionDays < 1 || s.backupRetentionDays > 35) fail(`backupRetentionDays must be 1-35 (0 would turn backups off), got ${s.backupRetentionDays}`);
    if (regulated && s.backupRetentionDays < REGULATED_MIN_BACKUP_RETENTION_DAYS) fail(`regulated (HIPAA/PCI) databases keep backups at least ${REGULATED_MIN_BACKUP_RETENTION_DAYS} days, got ${s.backupRetentionDays}`);
    if (regulated && !s.deletionProtection) fail('regulated (HIPAA/PCI) databases cannot turn deletion protection off; offboarding lifts it as an audited step');
    if (![0, 7, 731].includes(s.performanceInsightsRetentionDays)) fail(`performanceInsightsRetentionDays must be 0, 7 or 731, got ${s.performanceInsightsRetentionDays}`);
    if (s.performanceInsightsRetentionDays > 0 && CLASSES_WITHOUT_PERFORMANCE_INSIGHTS.has(s.instanceClass)) fail(`${s.instanceClass} does not support Performance Insights; set performanceInsightsRetentionDays to 0 or choose a larger class`);
    if (s.subnetIds.length < 2) fail('subnetIds needs at least two subnets in different availability zones');
    if (s.allowedSecurityGroupIds.length === 0) fail('allowedSecurityGroupIds is empty: nothing could reach the database (PgBouncer runs in the cluster)');
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(s.databaseName)) fail(`databaseName ${JSON.stringify(s.databaseName)} must be a lowercase SQL identifier`);
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(s.masterUsername) || ['postgres', 'rdsadmin', 'admin'].includes(s.masterUsername)) fail(`masterUsername ${JSON.stringify(s.masterUsername)} must be a lowercase SQL identifier and not a reserved name`);
    if (!CLOUDWATCH_RETENTION_DAYS.includes(s.logRetentionDays)) fail(`logRetentionDays must be one of ${CLOUDWATCH_RETENTION_DAYS.join(', ')} (CloudWatch Logs retentions), got ${s.logRetentionDays}`);
    return s;
  }
}
