import type { TerraformStack } from 'cdktf';
import { SiloDatabase } from '../../lib/silo-database';
import { SiloTenant } from '../../lib/silo-tenant';
import { tenantTags } from '../../lib/tenant-tags';
import { planOffline, planOfflineTogether, TerraformError, type OfflinePlan, type PlannedStacks } from '../support/terraform';
import { describeRule, only, ofType, projectPlan, refersTo, taggable } from './plan-projection';
import { addOutputs, awsStack, NETWORK, synthJson, type TestTenant } from './test-stacks';

/** What the plan of one silo database must show. */
interface Expected {
  readonly identifier: string;
  readonly engineVersion: string;
  readonly family: string;
  readonly instanceClass: string;
  readonly allocatedStorage: number;
  readonly maxAllocatedStorage: number;
  readonly backupRetention: number;
  readonly multiAz: boolean;
  /** 0 when Performance Insights is off. */
  readonly performanceInsights: 0 | 7 | 731;
  readonly deletionProtection: boolean;
  readonly logRetention: number;
  readonly dbName: string;
  readonly username: string;
}

interface Scenario {
  readonly name: string;
  readonly tenant: TestTenant;
  readonly build: (stack: TerraformStack, tenant: TestTenant) => void;
  readonly expected: Expected;
  /** Whether the stack is a SiloTenant: its hook outputs and application role credentials. */
  readonly hookOutputs: boolean;
}

const network = {
  vpcId: NETWORK.vpcId,
  subnetIds: NETWORK.subnetIds,
  workloadSecurityGroupId: NETWORK.workloadSecurityGroupId,
};

/** SiloTenant with its hook outputs (terraform checks that each output's reference exists). */
const siloTenant = (extra: Partial<ConstructorParameters<typeof SiloTenant>[2]> = {}) => (stack: TerraformStack, t: TestTenant) => {
  const silo = new SiloTenant(stack, 'silo', { tenantId: t.id, slug: t.slug, plan: t.plan, ...network, ...extra });
  addOutputs(stack, silo.hookOutputs);
};

/** The longest slug the registry allows (30 characters), to check derived names stay within AWS limits. */
const LONGEST_SLUG = 'regulated-health-records-eu-01';

const defaults = (slug: string) => ({
  identifier: `tenant-${slug}`,
  engineVersion: '16',
  family: 'postgres16',
  deletionProtection: true,
  logRetention: 365,
  dbName: `tenant_${slug.replace(/-/g, '_')}`,
  username: 'tenancy_admin',
});

const SCENARIOS: Scenario[] = [
  {
    name: 'starter (SiloDatabase on its own)',
    tenant: { id: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1a01', slug: 'silo-starter', plan: 'starter', model: 'silo' },
    build: (stack, t) => {
      new SiloDatabase(stack, 'database', { slug: t.slug, tenantId: t.id, plan: t.plan, vpcId: NETWORK.vpcId, subnetIds: NETWORK.subnetIds, allowedSecurityGroupIds: [NETWORK.workloadSecurityGroupId] });
    },
    hookOutputs: false,
    expected: { ...defaults('silo-starter'), instanceClass: 'db.t3.micro', allocatedStorage: 20, maxAllocatedStorage: 100, backupRetention: 7, multiAz: false, performanceInsights: 0 },
  },
  {
    name: 'pro (SiloTenant)',
    tenant: { id: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1a02', slug: 'silo-pro', plan: 'pro', model: 'silo' },
    hookOutputs: true,
    build: siloTenant(),
    expected: { ...defaults('silo-pro'), instanceClass: 'db.t3.medium', allocatedStorage: 50, maxAllocatedStorage: 500, backupRetention: 14, multiAz: false, performanceInsights: 7 },
  },
  {
    name: 'enterprise (SiloTenant)',
    tenant: { id: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1a03', slug: 'silo-enterprise', plan: 'enterprise', model: 'silo' },
    hookOutputs: true,
    build: siloTenant(),
    expected: { ...defaults('silo-enterprise'), instanceClass: 'db.m6g.large', allocatedStorage: 100, maxAllocatedStorage: 2000, backupRetention: 35, multiAz: true, performanceInsights: 731 },
  },
  {
    name: 'regulated pro with the longest slug (SiloTenant, HIPAA)',
    tenant: { id: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1a04', slug: LONGEST_SLUG, plan: 'pro', model: 'silo' },
    hookOutputs: true,
    build: siloTenant({ regulated: true }),
    expected: { ...defaults(LONGEST_SLUG), instanceClass: 'db.t3.medium', allocatedStorage: 50, maxAllocatedStorage: 500, backupRetention: 30, multiAz: false, performanceInsights: 7 },
  },
  {
    name: 'pro with every database override (SiloTenant)',
    tenant: { id: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1a05', slug: 'silo-custom', plan: 'pro', model: 'silo' },
    hookOutputs: true,
    build: siloTenant({
      database: {
        engineVersion: '15.7', instanceClass: 'db.r6g.xlarge', allocatedStorageGb: 200, maxAllocatedStorageGb: 1000, backupRetentionDays: 3,
        multiAz: true, performanceInsightsRetentionDays: 0, deletionProtection: false, logRetentionDays: 30, databaseName: 'app', masterUsername: 'owner',
      },
    }),
    expected: {
      identifier: 'tenant-silo-custom', engineVersion: '15.7', family: 'postgres15', instanceClass: 'db.r6g.xlarge', allocatedStorage: 200, maxAllocatedStorage: 1000,
      backupRetention: 3, multiAz: true, performanceInsights: 0, deletionProtection: false, logRetention: 30, dbName: 'app', username: 'owner',
    },
  },
];

const EXPECTED_TYPES = [
  'aws_cloudwatch_log_group', 'aws_cloudwatch_log_group', 'aws_db_instance', 'aws_db_parameter_group',
  'aws_db_subnet_group', 'aws_kms_alias', 'aws_kms_key', 'aws_security_group',
];
/** What SiloTenant adds to its database: the application role's credentials. */
const APP_CREDENTIALS_TYPES = ['aws_secretsmanager_secret', 'aws_secretsmanager_secret_version'];

function expectSiloDatabasePlan(plan: OfflinePlan, t: TestTenant, e: Expected, siloTenant: boolean): void {
  const types = [...EXPECTED_TYPES, ...(siloTenant ? APP_CREDENTIALS_TYPES : [])];
  expect(plan.warnings).toEqual([]);
  expect(plan.resources.map((r) => r.type).sort()).toEqual(types.sort());
  expect(plan.resources.every((r) => r.actions.join() === 'create')).toBe(true);

  const key = only(plan, 'aws_kms_key');
  const sg = only(plan, 'aws_security_group');
  const parameters = only(plan, 'aws_db_parameter_group');
  const subnets = only(plan, 'aws_db_subnet_group');
  const db = only(plan, 'aws_db_instance');
  const keyArn = `${key.address}.arn`;

  // The tenant's own key, rotated; its alias points at it.
  expect(key.values).toMatchObject({ enable_key_rotation: true, deletion_window_in_days: 30, is_enabled: true });
  expect(only(plan, 'aws_kms_alias').values.name).toBe(`alias/${e.identifier}`);
  expect(refersTo(only(plan, 'aws_kms_alias'), 'target_key_id')).toEqual([`${key.address}.key_id`]);

  // Only the workload security group, only on 5432; no egress configured (Terraform removes AWS's default rule).
  expect(sg.values.vpc_id).toBe(NETWORK.vpcId);
  expect(sg.values.ingress).toHaveLength(1);
  expect(describeRule(sg.values.ingress[0])).toBe(`tcp 5432-5432 from ${NETWORK.workloadSecurityGroupId} (PostgreSQL from cluster workloads (PgBouncer))`);
  expect(sg.expressions.egress?.constant_value ?? []).toEqual([]);
  expect(sg.values.egress ?? []).toEqual([]);

  // SSL forced, in the parameter group family of the engine's major version.
  expect(parameters.values.family).toBe(e.family);
  expect(parameters.values.parameter).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'rds.force_ssl', value: '1' })]));
  expect(subnets.values.subnet_ids).toEqual([...NETWORK.subnetIds].sort());

  // The instance.
  expect(db.values).toMatchObject({
    identifier: e.identifier,
    engine: 'postgres',
    engine_version: e.engineVersion,
    instance_class: e.instanceClass,
    allocated_storage: e.allocatedStorage,
    max_allocated_storage: e.maxAllocatedStorage,
    storage_type: 'gp3',
    storage_encrypted: true,
    publicly_accessible: false,
    deletion_protection: e.deletionProtection,
    manage_master_user_password: true,
    password: null,
    password_wo: null,
    multi_az: e.multiAz,
    backup_retention_period: e.backupRetention,
    skip_final_snapshot: false,
    // Named by the tenant id too: the snapshot outlives the instance, a later tenant may reuse the slug.
    final_snapshot_identifier: `${e.identifier}-final-${t.id}`,
    iam_database_authentication_enabled: true,
    db_name: e.dbName,
    username: e.username,
    performance_insights_enabled: e.performanceInsights > 0,
    enabled_cloudwatch_logs_exports: ['postgresql', 'upgrade'],
  });
  expect(db.expressions.password).toBeUndefined();
  expect(refersTo(db, 'kms_key_id')).toEqual([keyArn]);
  expect(refersTo(db, 'master_user_secret_kms_key_id')).toEqual([keyArn]);
  expect(refersTo(db, 'vpc_security_group_ids')).toEqual([`${sg.address}.id`]);
  expect(refersTo(db, 'parameter_group_name')).toEqual([`${parameters.address}.name`]);
  expect(refersTo(db, 'db_subnet_group_name')).toEqual([`${subnets.address}.name`]);
  if (e.performanceInsights > 0) {
    expect(db.values.performance_insights_retention_period).toBe(e.performanceInsights);
    expect(refersTo(db, 'performance_insights_kms_key_id')).toEqual([keyArn]);
  } else {
    expect(db.expressions.performance_insights_retention_period).toBeUndefined();
    expect(db.expressions.performance_insights_kms_key_id).toBeUndefined();
  }

  // The exported logs' groups exist before the instance, with a retention.
  const logs = ofType(plan, 'aws_cloudwatch_log_group');
  expect(logs.map((l) => l.values.name).sort()).toEqual([`/aws/rds/instance/${e.identifier}/postgresql`, `/aws/rds/instance/${e.identifier}/upgrade`]);
  expect(logs.every((l) => l.values.retention_in_days === e.logRetention)).toBe(true);
  expect([...db.dependsOn].sort()).toEqual(logs.map((l) => l.address).sort());

  // Every taggable resource carries the tenant's tags (the provider's default tags).
  expect(taggable(plan)).toHaveLength(types.length - (siloTenant ? 2 : 1)); // all but the alias and the secret version
  for (const r of taggable(plan)) expect(r.values.tags_all).toEqual(tenantTags(t));
}

/** SiloTenant's application role credentials: a secret encrypted with the database's own key, its password generated at apply. */
function expectAppCredentialsPlan(plan: OfflinePlan, t: TestTenant, e: Expected): void {
  const key = only(plan, 'aws_kms_key');
  const db = only(plan, 'aws_db_instance');
  const secret = only(plan, 'aws_secretsmanager_secret');
  const version = only(plan, 'aws_secretsmanager_secret_version');
  const sqlSlug = t.slug.replace(/-/g, '_');
  expect(secret.values).toMatchObject({
    name: `tenancy/tenants/${t.id}/db-credentials`,
    description: `Login role tenant_${sqlSlug}_app of tenant ${t.slug} on ${e.identifier}`,
    recovery_window_in_days: 30,
  });
  expect(refersTo(secret, 'kms_key_id')).toEqual([`${key.address}.arn`]);
  expect(refersTo(version, 'secret_id')).toEqual([`${secret.address}.id`]);
  // The password is generated by terraform at apply: unknown in the plan; the instance's address and port are references.
  expect(version.unknown.secret_string).toBe(true);
  expect(version.values.secret_string).toBeUndefined();
  expect(refersTo(version, 'secret_string').sort()).toEqual([`${db.address}.address`, `${db.address}.port`]);
  expect(version.expressions.secret_string.constant_value).toBe(
    `\${jsonencode({"username" = "tenant_${sqlSlug}_app", "password" = replace(join("", [uuid(), uuid()]), "-", ""), "dbname" = "${e.dbName}", ` +
      `"host" = ${db.address}.address, "port" = ${db.address}.port, "schema" = "tenant_${sqlSlug}", "dbInstanceIdentifier" = "${e.identifier}", "engine" = "postgres"})}`,
  );
  expect(taggable(plan).map((r) => r.address)).toContain(secret.address);
}

/** SiloTenant's hook outputs point at the instance, its RDS-managed master secret, its key and the application role's secret. */
function expectHookOutputs(plan: OfflinePlan, e: Expected): void {
  const db = only(plan, 'aws_db_instance').address;
  expect(projectPlan(plan).outputs).toEqual({
    app_credentials_secret_arn: `→ ${only(plan, 'aws_secretsmanager_secret').address}.arn`,
    db_address: `→ ${db}.address`,
    db_identifier: e.identifier,
    db_kms_key_arn: `→ ${only(plan, 'aws_kms_key').address}.arn`,
    db_master_secret_arn: `→ ${db}.master_user_secret[0].secret_arn`,
    db_name: e.dbName,
    db_port: `→ ${db}.port`,
  });
}

describe('offline plan of a silo database', () => {
  // One terraform run for every scenario; each test reads its own stack's plan.
  let planned: PlannedStacks;
  beforeAll(() => {
    planned = planOfflineTogether(Object.fromEntries(SCENARIOS.map(({ name, tenant, build }) => {
      const stack = awsStack(`silo-${tenant.slug}`, tenant);
      build(stack, tenant);
      return [name, synthJson(stack)];
    })));
  });

  test.each(SCENARIOS)('$name', ({ name, tenant, expected, hookOutputs }) => {
    const plan = planned.plan(name);
    // Only SiloTenant has the hook outputs and the application role's credentials.
    expectSiloDatabasePlan(plan, tenant, expected, hookOutputs);
    if (hookOutputs) {
      expectAppCredentialsPlan(plan, tenant, expected);
      expectHookOutputs(plan, expected);
    } else expect(plan.outputs).toEqual({});
    expect(projectPlan(plan)).toMatchSnapshot();
  });

  test('a logRetentionDays CloudWatch Logs rejects is refused before it reaches terraform', () => {
    expect(() => new SiloDatabase(awsStack('silo-log-retention'), 'database', {
      slug: 'logs', tenantId: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1a0f', plan: 'pro', vpcId: NETWORK.vpcId, subnetIds: NETWORK.subnetIds, allowedSecurityGroupIds: [NETWORK.workloadSecurityGroupId], logRetentionDays: 17,
    })).toThrow(/logRetentionDays must be one of/);
  });
});
