import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { synthesize, type SynthesizeResult } from '../../lib/app/synthesize';
import { RegistryError } from '../../lib/registry/registry-error';
import { FixtureProject } from '../support/fixture-project';
import { planOfflineTogether, readStackJson, type PlannedStacks } from '../support/terraform';
import { describeRule, ofType, only, projectPlan, refersTo, taggable } from './plan-projection';

/** The real PlatformStacks of the sample platform.yaml, synthesized as `cdktf synth` would. */

const NETWORKS: Record<string, { vpcId: string; subnets: string[]; workloadSg: string }> = {
  'us-east-1': { vpcId: 'vpc-0a1b2c3d4e5f60718', subnets: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002', 'subnet-0a1b2c3d4e5f60003'], workloadSg: 'sg-0a1b2c3d4e5f60aa1' },
  'eu-central-1': { vpcId: 'vpc-0b1c2d3e4f5a60718', subnets: ['subnet-0b1c2d3e4f5a60001', 'subnet-0b1c2d3e4f5a60002', 'subnet-0b1c2d3e4f5a60003'], workloadSg: 'sg-0b1c2d3e4f5a60aa1' },
};

let project: FixtureProject;
let synth: SynthesizeResult;
let planned: PlannedStacks;

beforeAll(() => {
  // Without the Kubernetes side (kubernetes-side.test.ts plans what it adds: the private zone).
  project = FixtureProject.fromSample().setKubernetesEnabled(false);
  synth = synthesize({ root: project.root, outdir: join(project.root, 'cdktf.out'), select: 'platform' });
  // One terraform run for both stacks (each keeps its own provider and outputs); each test reads its own plan.
  planned = planOfflineTogether(Object.fromEntries(synth.stacks.platform.map((s) => [s.node.id, readStackJson(synth.outdir, s.node.id)])));
});
afterAll(() => project?.remove());

describe('offline plan of the platform stacks', () => {
  test('the sample registry has a platform stack per region in use', () => {
    expect(synth.stacks.platform.map((s) => s.node.id)).toEqual(['platform-eu-central-1', 'platform-us-east-1']);
  });

  test.each([
    { region: 'us-east-1', clusters: ['bridge', 'control-plane', 'pool'] },
    { region: 'eu-central-1', clusters: ['bridge', 'pool'] },
  ])('platform-$region (clusters: $clusters)', ({ region, clusters }) => {
    const plan = planned.plan(`platform-${region}`);
    const network = NETWORKS[region];

    expect(plan.warnings).toEqual([]);
    expect(plan.raw.configuration.provider_config.aws.expressions.region.constant_value).toBe(region);
    expect(plan.resources.every((r) => r.actions.join() === 'create')).toBe(true);

    // Two rotated keys (shared data, tenant secrets) with their aliases.
    const dataKey = plan.resources.find((r) => r.address === 'aws_kms_key.data-key')!;
    const secretsKey = plan.resources.find((r) => r.address === 'aws_kms_key.tenant-secrets-key')!;
    for (const key of ofType(plan, 'aws_kms_key')) expect(key.values).toMatchObject({ enable_key_rotation: true, deletion_window_in_days: 30 });
    expect(ofType(plan, 'aws_kms_key').map((k) => k.address)).toEqual([dataKey.address, secretsKey.address]);
    expect(Object.fromEntries(ofType(plan, 'aws_kms_alias').map((a) => [a.values.name, refersTo(a, 'target_key_id')]))).toEqual({
      'alias/tenancy/shared-data': ['aws_kms_key.data-key.key_id'],
      'alias/tenancy/tenant-secrets': ['aws_kms_key.tenant-secrets-key.key_id'],
    });

    // The region's private subnets and a security group that admits only its workloads on 5432.
    const subnets = only(plan, 'aws_db_subnet_group');
    expect(subnets.values).toMatchObject({ name: 'tenancy-shared', subnet_ids: network.subnets });
    const sg = only(plan, 'aws_security_group');
    expect(sg.values.vpc_id).toBe(network.vpcId);
    expect(sg.values.ingress.map(describeRule)).toEqual([`tcp 5432-5432 from ${network.workloadSg} (PostgreSQL from cluster workloads)`]);
    expect(sg.expressions.egress?.constant_value ?? []).toEqual([]);

    // The shared clusters: encrypted with the data key, private, RDS-managed master password, SSL forced.
    const rdsClusters = ofType(plan, 'aws_rds_cluster');
    expect(rdsClusters.map((c) => c.values.cluster_identifier).sort()).toEqual(clusters.map((c) => `tenancy-${c}`));
    for (const cluster of rdsClusters) {
      expect(cluster.values).toMatchObject({
        storage_encrypted: true, manage_master_user_password: true, master_password: null, deletion_protection: true,
        skip_final_snapshot: false, backup_retention_period: 14, iam_database_authentication_enabled: true,
      });
      expect(refersTo(cluster, 'kms_key_id')).toEqual(['aws_kms_key.data-key.arn']);
      expect(refersTo(cluster, 'master_user_secret_kms_key_id')).toEqual(['aws_kms_key.data-key.arn']);
      expect(refersTo(cluster, 'db_subnet_group_name')).toEqual([`${subnets.address}.name`]);
      expect(refersTo(cluster, 'vpc_security_group_ids')).toEqual([`${sg.address}.id`]);
    }
    for (const parameters of ofType(plan, 'aws_rds_cluster_parameter_group')) {
      expect(parameters.values.parameter).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'rds.force_ssl', value: '1' })]));
    }
    const instances = ofType(plan, 'aws_rds_cluster_instance');
    expect(instances).toHaveLength(2 * clusters.length);
    for (const instance of instances) {
      expect(instance.values).toMatchObject({ publicly_accessible: false, performance_insights_enabled: true });
      expect(refersTo(instance, 'performance_insights_kms_key_id')).toEqual(['aws_kms_key.data-key.arn']);
    }
    expect(plan.resources).toHaveLength(6 + 4 * clusters.length);

    // Platform tags on everything taggable; only the aliases cannot carry tags.
    for (const r of taggable(plan)) expect(r.values.tags_all).toEqual({ 'tenancy:managed-by': 'cdktf-tenancy', 'tenancy:platform': 'tenancy' });
    expect(plan.resources.filter((r) => !('tags_all' in r.values)).map((r) => r.type)).toEqual(['aws_kms_alias', 'aws_kms_alias']);

    // Outputs the tenant pipelines and hooks read.
    const outputs = projectPlan(plan).outputs as Record<string, unknown>;
    expect(outputs.tenant_secrets_key_arn).toBe('→ aws_kms_key.tenant-secrets-key.arn');
    for (const c of clusters) expect(outputs[`${c.replace('-', '_')}_cluster_identifier`]).toBe(`tenancy-${c}`);

    expect(projectPlan(plan)).toMatchSnapshot();
  });

  // Every shared name derives from the platform name, so a name with "--" or a trailing hyphen would
  // give identifiers terraform validate rejects ("ab-" → "ab--bridge-aurora-pg16": "cannot contain two
  // consecutive hyphens"). The registry must refuse such names before anything is synthesized.
  test.each(['ab-', 'a--b'])('the registry refuses the platform name %j, which would give names terraform rejects', (name) => {
    const bad = FixtureProject.fromSample();
    try {
      const text = readFileSync(join(bad.root, 'platform.yaml'), 'utf8');
      expect(text).toMatch(/^name: tenancy$/m);
      bad.writePlatform(text.replace(/^name: tenancy$/m, `name: ${JSON.stringify(name)}`));
      let error: unknown;
      try {
        synthesize({ root: bad.root, outdir: join(bad.root, 'cdktf.out'), select: 'platform' });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as RegistryError).problems.map((p) => `${p.file}: ${p.path}`)).toEqual(['platform.yaml: name']);
    } finally {
      bad.remove();
    }
  });
});
