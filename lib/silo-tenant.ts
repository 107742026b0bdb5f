import { Construct } from 'constructs';
import { SiloDatabase, type SiloDatabaseProps } from './silo-database';
import { tenantNames } from './naming';
import type { Plan } from './registry/tenant-schema';

/** Overrides of the silo database's plan-derived settings. */
export type SiloDatabaseOverrides = Omit<SiloDatabaseProps, 'slug' | 'plan' | 'vpcId' | 'subnetIds' | 'allowedSecurityGroupIds' | 'regulated'>;

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
}

/**
 * A tenant with its own database. It composes the dedicated RDS instance
 * ({@link SiloDatabase}) and, on the Kubernetes side, the PgBouncer pool in front of it.
 */
export class SiloTenant extends Construct {
  readonly database: SiloDatabase;
  readonly tenantId: string;
  readonly slug: string;

  constructor(scope: Construct, id: string, props: SiloTenantProps) {
    super(scope, id);
    tenantNames(props.slug);
    this.tenantId = props.tenantId;
    this.slug = props.slug;
    this.database = new SiloDatabase(this, 'database', {
      ...props.database,
      slug: props.slug,
      plan: props.plan,
      vpcId: props.vpcId,
      subnetIds: props.subnetIds,
      allowedSecurityGroupIds: [props.workloadSecurityGroupId],
      regulated: props.regulated,
    });
  }

  /** What the post-apply hooks need to reach and migrate the tenant database. */
  get hookOutputs(): Record<string, string | number> {
    const db = this.database;
    return {
      db_identifier: db.instance.identifier,
      db_address: db.instance.address,
      db_port: db.instance.port,
      db_name: db.settings.databaseName,
      db_master_secret_arn: db.instance.masterUserSecret.get(0).secretArn,
      db_kms_key_arn: db.key.arn,
    };
  }
}
