import { join } from 'node:path';
import { synthesize, type SynthesizeResult } from '../../lib/app/synthesize';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { TAG_KEYS, tenantTags } from '../../lib/tenant-tags';
import { FixtureProject } from '../support/fixture-project';
import { planOfflineTogether, readStackJson, type PlannedStacks } from '../support/terraform';
import { only, projectPlan, refersTo, taggable } from './plan-projection';

/**
 * Every live tenant of the sample registry, synthesized as `cdktf synth` would and planned
 * from its cdk.tf.json: one stack per tenant, each planning on its own.
 */

interface Expected {
  readonly region: string;
  readonly types: readonly string[];
  /** Silo only. */
  readonly db?: { instance_class: string; multi_az: boolean; backup_retention_period: number; performance_insights_enabled: boolean };
}

const SILO_TYPES = [
  'aws_cloudwatch_log_group', 'aws_cloudwatch_log_group', 'aws_db_instance', 'aws_db_parameter_group',
  'aws_db_subnet_group', 'aws_kms_alias', 'aws_kms_key', 'aws_secretsmanager_secret', 'aws_secretsmanager_secret_version',
  'aws_security_group',
];
const BRIDGE_TYPES = ['aws_secretsmanager_secret', 'aws_secretsmanager_secret_version'];

const TENANT_STACKS: Record<string, Expected> = {
  // pool, starter and free: no AWS resource of their own
  'tenant-acme': { region: 'us-east-1', types: [] },
  'tenant-tinyco': { region: 'us-east-1', types: [] },
  // bridge, pro, in both regions
  'tenant-berlin-analytics': { region: 'eu-central-1', types: BRIDGE_TYPES },
  'tenant-globex': { region: 'us-east-1', types: BRIDGE_TYPES },
  // silo: enterprise, pro + HIPAA (regulated: 30 days of backups), enterprise + PCI
  'tenant-initech': { region: 'us-east-1', types: SILO_TYPES, db: { instance_class: 'db.m6g.large', multi_az: true, backup_retention_period: 35, performance_insights_enabled: true } },
  'tenant-mediwell': { region: 'us-east-1', types: SILO_TYPES, db: { instance_class: 'db.t3.medium', multi_az: false, backup_retention_period: 30, performance_insights_enabled: true } },
  'tenant-payflow': { region: 'us-east-1', types: SILO_TYPES, db: { instance_class: 'db.m6g.large', multi_az: true, backup_retention_period: 35, performance_insights_enabled: true } },
};

let project: FixtureProject;
let synth: SynthesizeResult;
let planned: PlannedStacks;

beforeAll(() => {
  // The AWS side alone (kubernetes-side.test.ts plans what the Kubernetes side adds).
  project = FixtureProject.fromSample().setKubernetesEnabled(false);
  synth = synthesize({ root: project.root, outdir: join(project.root, 'cdktf.out') });
  // One terraform run for every tenant stack (each keeps its own provider, tags and outputs); each test reads its own plan.
  planned = planOfflineTogether(Object.fromEntries(synth.stacks.tenants.map((s) => [s.node.id, readStackJson(synth.outdir, s.node.id)])));
});
afterAll(() => project?.remove());

const tenantOf = (stack: string): Tenant => synth.registry.tenants.find((t) => `tenant-${t.slug}` === stack)!;

describe('offline plan of the tenant stacks', () => {
  test('the sample registry has one stack per live tenant, covering every model', () => {
    expect(synth.stacks.tenants.map((s) => s.node.id).sort()).toEqual(Object.keys(TENANT_STACKS).sort());
    expect(new Set(synth.stacks.tenants.map((s) => s.tenant.model))).toEqual(new Set(['silo', 'bridge', 'pool']));
  });

  test.each(Object.entries(TENANT_STACKS))('%s', (stackName, expected) => {
    const tenant = tenantOf(stackName);
    const plan = planned.plan(stackName);

    expect(plan.warnings).toEqual([]);
    expect(plan.raw.configuration.provider_config.aws.expressions.region.constant_value).toBe(expected.region);
    expect(plan.resources.map((r) => r.type).sort()).toEqual(expected.types);
    expect(plan.resources.every((r) => r.actions.join() === 'create')).toBe(true);

    // Every AWS resource that can carry tags carries the tenant's, from the provider's default tags.
    const tags = tenantTags(tenant);
    expect(tags[TAG_KEYS.tenantId]).toBe(tenant.id);
    for (const r of taggable(plan)) expect(r.values.tags_all).toEqual(tags);
    expect(plan.resources.filter((r) => !('tags_all' in r.values)).map((r) => r.type)).toEqual(
      expected.types.filter((t) => t === 'aws_kms_alias' || t === 'aws_secretsmanager_secret_version'),
    );

    if (expected.db) {
      const db = only(plan, 'aws_db_instance');
      expect(db.values).toMatchObject({
        ...expected.db,
        identifier: stackName,
        storage_encrypted: true,
        publicly_accessible: false,
        deletion_protection: true,
        manage_master_user_password: true,
        password: null,
        skip_final_snapshot: false,
      });
      const sg = only(plan, 'aws_security_group');
      expect(sg.values.ingress.map((r: any) => [r.from_port, r.to_port, r.security_groups])).toEqual([[5432, 5432, ['sg-0a1b2c3d4e5f60aa1']]]);

      // The application role's credentials (PgBouncer's login), encrypted with the tenant's own key, generated at apply.
      const secret = only(plan, 'aws_secretsmanager_secret');
      const version = only(plan, 'aws_secretsmanager_secret_version');
      expect(secret.values).toMatchObject({ name: `tenancy/tenants/${tenant.id}/db-credentials`, recovery_window_in_days: 30 });
      expect(refersTo(secret, 'kms_key_id')).toEqual([`${only(plan, 'aws_kms_key').address}.arn`]);
      expect(refersTo(version, 'secret_id')).toEqual([`${secret.address}.id`]);
      expect(version.unknown.secret_string).toBe(true);
      expect(version.expressions.secret_string.constant_value).toContain(`"username" = "tenant_${tenant.slug.replace(/-/g, '_')}_app", "password" = replace(join("", [uuid(), uuid()]), "-", "")`);
      expect(projectPlan(plan).outputs).toMatchObject({ app_credentials_secret_arn: `→ ${secret.address}.arn`, db_master_secret_arn: `→ ${db.address}.master_user_secret[0].secret_arn` });
    }

    // The outputs the post-apply hooks read: the tenant's identity always, the model's wiring after it.
    const outputs = projectPlan(plan).outputs as Record<string, unknown>;
    expect(outputs).toMatchObject({ tenant_id: tenant.id, slug: tenant.slug, model: tenant.model, plan: tenant.plan, region: tenant.region });

    expect(projectPlan(plan)).toMatchSnapshot();
  });
});
