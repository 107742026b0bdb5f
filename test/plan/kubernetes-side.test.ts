import { join } from 'node:path';
import { synthesize, type SynthesizeResult } from '../../lib/app/synthesize';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { tenantTags } from '../../lib/tenant-tags';
import { awsProjection, type AwsProjection } from '../support/aws-projection';
import { FixtureProject } from '../support/fixture-project';
import { planOfflineTogether, readStackJson, type PlannedStacks } from '../support/terraform';
import { jsonDocument, ofType, only, projectPlan, refersTo } from './plan-projection';

/**
 * The sample registry (`kubernetes.enabled: true` in platform.yaml, the default), synthesized as
 * `cdktf synth` would. Tenant stacks are planned through awsProjection (the mirror holds only hashicorp/aws, and
 * the EKS data sources that configure the kubernetes and helm providers would call AWS); platform
 * stacks as they are. The Kubernetes side must add to the AWS side exactly: per tenant, the IAM
 * role and inline policy External Secrets reads the tenant's one secret with; per region, the
 * private zone with a CNAME per shared cluster. Everything else is the AWS-only stack
 * (`kubernetes.enabled: false`), which tenant-stacks.test.ts and platform-stacks.test.ts plan.
 */

const OIDC_PROVIDERS: Record<string, string> = {
  'us-east-1': 'arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9',
  'eu-central-1': 'arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/1B2C3D4E5F60718293A4B5C6D7E8F90A',
};
const VPCS: Record<string, string> = { 'us-east-1': 'vpc-0a1b2c3d4e5f60718', 'eu-central-1': 'vpc-0b1c2d3e4f5a60718' };

/** Left out of each tenant's plan: the two Helm releases (platform and workload) that hold every Kubernetes object. */
const K8S_TYPES = ['helm_release', 'helm_release'];

let project: FixtureProject;
let off: SynthesizeResult;
let on: SynthesizeResult;
let planned: PlannedStacks;
const projections = new Map<string, AwsProjection>();
const defaults = new Map<string, Record<string, any>>();

beforeAll(() => {
  project = FixtureProject.fromSample();
  on = synthesize({ root: project.root, outdir: join(project.root, 'out-kubernetes') });
  project.setKubernetesEnabled(false);
  off = synthesize({ root: project.root, outdir: join(project.root, 'out-aws-only') });
  for (const s of [...on.stacks.platform, ...on.stacks.tenants]) {
    projections.set(s.node.id, awsProjection(readStackJson(on.outdir, s.node.id)));
    defaults.set(s.node.id, readStackJson(off.outdir, s.node.id));
  }
  // One terraform run for every stack; each test reads its own plan.
  planned = planOfflineTogether(Object.fromEntries([...projections].map(([name, p]) => [name, p.stack])));
});
afterAll(() => project?.remove());

const tenantOf = (stack: string): Tenant => on.registry.tenants.find((t) => `tenant-${t.slug}` === stack)!;
const withoutMetadata = (value: any): any =>
  Array.isArray(value) ? value.map(withoutMetadata)
    : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== '//').map(([k, v]) => [k, withoutMetadata(v)]))
      : value;
/** The stack JSON without the given resource types and outputs, for comparison with the default stack. */
function without(json: Record<string, any>, types: readonly string[], outputs: readonly string[] = []): Record<string, any> {
  const copy = withoutMetadata(json);
  for (const type of types) delete copy.resource?.[type];
  if (copy.resource && Object.keys(copy.resource).length === 0) delete copy.resource;
  for (const name of outputs) delete copy.output?.[name];
  return copy;
}

describe('offline plan with the Kubernetes side on (kubernetes.enabled: true)', () => {
  test('the same stacks as without it', () => {
    expect(on.registry.platform.kubernetes.enabled).toBe(true);
    expect(off.registry.platform.kubernetes.enabled).toBe(false);
    expect([...on.stacks.platform, ...on.stacks.tenants].map((s) => s.node.id).sort()).toEqual([...off.stacks.platform, ...off.stacks.tenants].map((s) => s.node.id).sort());
  });

  test.each(['tenant-acme', 'tenant-tinyco', 'tenant-berlin-analytics', 'tenant-globex', 'tenant-initech', 'tenant-mediwell', 'tenant-payflow'])('%s: its secret-reader role, planned and checked', (stackName) => {
    const tenant = tenantOf(stackName);
    const { stack, dropped } = projections.get(stackName)!;
    const namespace = `tenant-${tenant.slug}`;
    const secret = tenant.model === 'silo' ? 'pgbouncer-auth' : 'database-credentials';

    // Left out: the Kubernetes side and the EKS data sources, nothing AWS; the rest is the default stack plus the role and its policy.
    expect(dropped.providers).toEqual(['helm']);
    expect(dropped.requiredProviders).toEqual(['helm']);
    expect(dropped.dataSources).toEqual(['data.aws_eks_cluster.eks', 'data.aws_eks_cluster_auth.eks-auth']);
    expect(dropped.resources.map((a) => a.split('.')[0])).toEqual(K8S_TYPES);
    expect(dropped.dependsOn).toEqual({});
    expect(without(stack, ['aws_iam_role', 'aws_iam_role_policy'], ['k8s_namespace'])).toEqual(withoutMetadata(defaults.get(stackName)!));
    expect(stack.output.k8s_namespace.value).toBe(namespace);

    const plan = planned.plan(stackName);
    expect(plan.warnings).toEqual([]);
    expect(plan.resources.every((r) => r.actions.join() === 'create')).toBe(true);

    // The role External Secrets assumes in the tenant's namespace (IRSA): only that namespace's
    // reader ServiceAccount, through the region's cluster, may assume it.
    const role = only(plan, 'aws_iam_role');
    const oidc = OIDC_PROVIDERS[tenant.region];
    const issuer = oidc.replace(/^.*:oidc-provider\//, '');
    expect(role.values).toMatchObject({ name: `${namespace}-${secret}`, path: '/', permissions_boundary: null, tags_all: tenantTags(tenant) });
    expect(jsonDocument(role, 'assume_role_policy')).toEqual({
      Version: '2012-10-17',
      Statement: [{
        Effect: 'Allow',
        Principal: { Federated: oidc },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${issuer}:sub`]: `system:serviceaccount:${namespace}:${secret}-reader`, [`${issuer}:aud`]: 'sts.amazonaws.com' } },
      }],
    });

    // Its only permissions: read the tenant's one secret and decrypt it, nothing else.
    const policy = only(plan, 'aws_iam_role_policy');
    expect(refersTo(policy, 'role')).toEqual([`${role.address}.name`]);
    const readSecret = (arn: string) => ({ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: arn });
    const decryptViaSecretsManager = (arn: string) => ({
      Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*',
      Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${tenant.region}.amazonaws.com` }, StringLike: { 'kms:EncryptionContext:SecretARN': arn } },
    });
    let statements: unknown[];
    if (tenant.model === 'silo') {
      // The application role's secret (PgBouncer logs in as that role), encrypted with the tenant's
      // own key; never the RDS-managed master secret of the instance.
      const secret = only(plan, 'aws_secretsmanager_secret');
      const key = only(plan, 'aws_kms_key');
      expect(secret.values.name).toBe(`tenancy/tenants/${tenant.id}/db-credentials`);
      expect(refersTo(secret, 'kms_key_id')).toEqual([`${key.address}.arn`]);
      expect(JSON.stringify(policy.expressions.policy)).not.toContain('master_user_secret');
      statements = [
        readSecret(`→ ${secret.address}.arn`),
        { Effect: 'Allow', Action: 'kms:Decrypt', Resource: `→ ${key.address}.arn`, Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${tenant.region}.amazonaws.com` } } },
      ];
    } else if (tenant.model === 'bridge') {
      // The tenant's credentials secret (encrypted with the platform's tenant-secrets key): decrypt only through Secrets Manager, for that secret.
      const arn = `→ ${only(plan, 'aws_secretsmanager_secret').address}.arn`;
      statements = [readSecret(arn), decryptViaSecretsManager(arn)];
    } else {
      // The pool's application credentials, the same for every pool tenant (isolation is row-level security).
      const arn = `arn:aws:secretsmanager:${tenant.region}:*:secret:tenancy/pool/app-credentials-*`;
      expect(policy.unknown.policy).not.toBe(true);
      statements = [readSecret(arn), decryptViaSecretsManager(arn)];
    }
    expect(jsonDocument(policy, 'policy')).toEqual({ Version: '2012-10-17', Statement: statements });

    const projected = projectPlan(plan).resources as Record<string, unknown>;
    expect(Object.fromEntries([role, policy].map((r) => [r.address, projected[r.address]]))).toMatchSnapshot();
  });

  test.each([
    { region: 'us-east-1', clusters: ['bridge', 'control-plane', 'pool'] },
    { region: 'eu-central-1', clusters: ['bridge', 'pool'] },
  ])('platform-$region: a private zone with a CNAME per shared cluster', ({ region, clusters }) => {
    const stackName = `platform-${region}`;
    const { stack, dropped } = projections.get(stackName)!;
    expect(dropped).toEqual({ providers: [], requiredProviders: [], resources: [], dataSources: [], dependsOn: {} });
    expect(without(stack, ['aws_route53_zone', 'aws_route53_record'])).toEqual(withoutMetadata(defaults.get(stackName)!));

    const plan = planned.plan(stackName);
    expect(plan.warnings).toEqual([]);
    expect(plan.resources.every((r) => r.actions.join() === 'create')).toBe(true);
    const zone = only(plan, 'aws_route53_zone');
    expect(zone.values).toMatchObject({ name: 'db.tenancy.internal', comment: 'Shared tenant databases', force_destroy: false });
    expect(zone.values.vpc).toEqual([expect.objectContaining({ vpc_id: VPCS[region] })]);
    expect(zone.values.tags_all).toEqual({ 'tenancy:managed-by': 'cdktf-tenancy', 'tenancy:platform': 'tenancy' });
    const rdsClusters = ofType(plan, 'aws_rds_cluster');
    const records = ofType(plan, 'aws_route53_record');
    expect(Object.fromEntries(records.map((r) => [r.values.name, { type: r.values.type, ttl: r.values.ttl, zone: refersTo(r, 'zone_id'), records: refersTo(r, 'records') }]))).toEqual(
      Object.fromEntries(clusters.map((c) => [`${c}.db.tenancy.internal`, {
        type: 'CNAME',
        ttl: 60,
        zone: [`${zone.address}.zone_id`],
        records: [`${rdsClusters.find((r) => r.values.cluster_identifier === `tenancy-${c}`)!.address}.endpoint`],
      }])),
    );

    const projected = projectPlan(plan).resources as Record<string, unknown>;
    expect(Object.fromEntries([zone, ...records].map((r) => [r.address, projected[r.address]]))).toMatchSnapshot();
  });
});
