import { Testing } from 'cdktf';
import { TenantStack } from '../../stacks/tenant-stack';
import { awsProjection, AwsProjectionError, DROPPED_AWS_DATA_SOURCES, DROPPED_PROVIDERS } from '../support/aws-projection';
import { loadSampleRegistry } from '../support/sample-registry';
import { offlineStackJson } from '../support/terraform';

/**
 * The projection the plan tests use to plan the AWS part of a stack with the Kubernetes side on
 * (no terraform here): it leaves out exactly the Kubernetes and Helm side and the EKS data
 * sources, and refuses to leave out anything the AWS part depends on.
 */

/** A small stack in cdk.tf.json form: AWS, Kubernetes and Helm, as TenantStack emits them. */
function stack(): Record<string, any> {
  return {
    '//': { metadata: { stackName: 'tenant-x' } },
    terraform: {
      backend: { local: { path: 'state/x.tfstate' } },
      required_providers: { aws: { source: 'aws', version: '5.100.0' }, helm: { source: 'helm', version: '3.1.1' }, kubernetes: { source: 'kubernetes', version: '2.38.0' } },
    },
    provider: {
      aws: [{ region: 'us-east-1' }],
      kubernetes: [{ host: '${data.aws_eks_cluster.eks.endpoint}', token: '${data.aws_eks_cluster_auth.eks-auth.token}' }],
      helm: [{ kubernetes: { host: '${data.aws_eks_cluster.eks.endpoint}' } }],
    },
    data: {
      aws_eks_cluster: { eks: { name: 'c' } },
      aws_eks_cluster_auth: { 'eks-auth': { name: 'c' } },
    },
    resource: {
      aws_kms_key: { key: { description: 'k' } },
      aws_iam_role: { role: { name: 'r', assume_role_policy: '{}' } },
      aws_iam_role_policy: { policy: { role: '${aws_iam_role.role.name}', policy: '${jsonencode({"Resource" = aws_kms_key.key.arn})}' } },
      kubernetes_namespace_v1: { ns: { metadata: { name: 'tenant-x' } } },
      kubernetes_service_account_v1: { sa: { depends_on: ['kubernetes_namespace_v1.ns'], metadata: { annotations: { 'eks.amazonaws.com/role-arn': '${aws_iam_role.role.arn}' } } } },
      helm_release: { app: { depends_on: ['kubernetes_namespace_v1.ns'], name: 'app', values: ['a: 1\n'] } },
    },
    output: { role: { value: '${aws_iam_role.role.arn}' }, namespace: { value: 'tenant-x' } },
  };
}

describe('awsProjection', () => {
  test('drops the kubernetes and helm providers, their resources and the EKS data sources, and keeps the rest as it was', () => {
    const input = stack();
    const before = JSON.stringify(input);
    const { stack: out, dropped } = awsProjection(input);

    expect(dropped).toEqual({
      providers: ['helm', 'kubernetes'],
      requiredProviders: ['helm', 'kubernetes'],
      resources: ['helm_release.app', 'kubernetes_namespace_v1.ns', 'kubernetes_service_account_v1.sa'],
      dataSources: ['data.aws_eks_cluster.eks', 'data.aws_eks_cluster_auth.eks-auth'],
      dependsOn: {},
    });
    const expected = stack();
    delete expected.provider.kubernetes;
    delete expected.provider.helm;
    delete expected.terraform.required_providers.kubernetes;
    delete expected.terraform.required_providers.helm;
    delete expected.data;
    for (const type of ['kubernetes_namespace_v1', 'kubernetes_service_account_v1', 'helm_release']) delete expected.resource[type];
    expect(out).toEqual(expected);
    // The input is not modified.
    expect(JSON.stringify(input)).toBe(before);
    // What is left plans offline (no data source, only the mirrored provider); the whole stack does not.
    expect(() => offlineStackJson(out, '/tmp/work')).not.toThrow();
    expect(() => offlineStackJson(input, '/tmp/work')).toThrow(/cannot read data sources.*awsProjection/);
  });

  test('drops depends_on entries that name dropped resources and reports them; keeps the others', () => {
    const input = stack();
    input.resource.aws_iam_role.role.depends_on = ['kubernetes_namespace_v1.ns', 'aws_kms_key.key', '${data.aws_eks_cluster.eks}'];
    input.resource.aws_iam_role_policy.policy.depends_on = ['helm_release.app'];
    const { stack: out, dropped } = awsProjection(input);
    expect(out.resource.aws_iam_role.role.depends_on).toEqual(['aws_kms_key.key']);
    expect(out.resource.aws_iam_role_policy.policy).not.toHaveProperty('depends_on');
    expect(dropped.dependsOn).toEqual({
      'aws_iam_role.role': ['data.aws_eks_cluster.eks', 'kubernetes_namespace_v1.ns'],
      'aws_iam_role_policy.policy': ['helm_release.app'],
    });
  });

  test.each([
    ['an AWS resource attribute', (s: any) => { s.resource.aws_iam_role.role.description = 'in ${kubernetes_namespace_v1.ns.metadata[0].name}'; }, 'aws_iam_role.role refers to kubernetes_namespace_v1.ns'],
    ['an AWS resource through a nested block', (s: any) => { s.resource.aws_kms_key.key.tags = { cluster: '${data.aws_eks_cluster.eks.arn}' }; }, 'aws_kms_key.key refers to data.aws_eks_cluster.eks'],
    ['an AWS resource inside a function call', (s: any) => { s.resource.aws_iam_role_policy.policy.policy = '${jsonencode({"Resource" = helm_release.app.id})}'; }, 'aws_iam_role_policy.policy refers to helm_release.app'],
    ['an output', (s: any) => { s.output.namespace.value = '${kubernetes_namespace_v1.ns.id}'; }, 'output namespace refers to kubernetes_namespace_v1.ns'],
    ['a local', (s: any) => { s.locals = { endpoint: '${data.aws_eks_cluster.eks.endpoint}' }; }, 'local endpoint refers to data.aws_eks_cluster.eks'],
    ['the AWS provider', (s: any) => { s.provider.aws[0].default_tags = [{ tags: { cluster: '${data.aws_eks_cluster.eks.id}' } }]; }, 'provider aws refers to data.aws_eks_cluster.eks'],
    ['a kept data source', (s: any) => { s.data.aws_iam_policy_document = { doc: { statement: [{ resources: ['${kubernetes_service_account_v1.sa.id}'] }] } }; }, 'data.aws_iam_policy_document.doc refers to kubernetes_service_account_v1.sa'],
  ])('fails loudly when %s refers to something dropped', (_what, edit, problem) => {
    const input = stack();
    edit(input);
    let error: unknown;
    try {
      awsProjection(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AwsProjectionError);
    expect((error as Error).message).toMatch(/planning it would hide something/);
    expect((error as Error).message).toContain(problem);
  });

  test('names every dropped reference of every offending block in one error', () => {
    const input = stack();
    input.resource.aws_iam_role.role.description = '${kubernetes_namespace_v1.ns.id} ${helm_release.app.id}';
    input.output.role.value = '${data.aws_eks_cluster_auth.eks-auth.token}';
    expect(() => awsProjection(input)).toThrow(
      /aws_iam_role\.role refers to helm_release\.app, kubernetes_namespace_v1\.ns\n\s+output role refers to data\.aws_eks_cluster_auth\.eks-auth/,
    );
  });

  test('does not mistake a kept reference for a dropped one with a similar address', () => {
    const input = stack();
    // A resource aws_eks_cluster.eks (not the data source), a longer name, and plain text without an interpolation.
    input.resource.aws_eks_cluster = { eks: { name: 'c', role_arn: '${aws_iam_role.role.arn}' } };
    input.resource.aws_kms_key['key-2'] = { description: 'kubernetes_namespace_v1.ns is named in text only' };
    input.resource.aws_iam_role.role.description = '${aws_eks_cluster.eks.arn} ${aws_kms_key.key-2.arn}';
    input.data.aws_eks_cluster.eks2 = { name: 'other' };
    const { stack: out, dropped } = awsProjection(input);
    expect(dropped.dataSources).toEqual(['data.aws_eks_cluster.eks', 'data.aws_eks_cluster.eks2', 'data.aws_eks_cluster_auth.eks-auth']);
    expect(out.resource.aws_eks_cluster.eks.name).toBe('c');
    expect(out.resource.aws_iam_role.role.description).toBe('${aws_eks_cluster.eks.arn} ${aws_kms_key.key-2.arn}');
  });

  test('keeps AWS data sources other than the EKS ones (the offline plan then refuses them by name)', () => {
    const input = stack();
    input.data.aws_caller_identity = { current: {} };
    const { stack: out } = awsProjection(input);
    expect(out.data).toEqual({ aws_caller_identity: { current: {} } });
    expect(() => offlineStackJson(out, '/tmp/work')).toThrow(/cannot read data sources.*data\.aws_caller_identity\.current/);
  });

  test('refuses a provider it does not know, instead of guessing whether to drop it', () => {
    const withResource = stack();
    withResource.resource.random_password = { p: { length: 32 } };
    expect(() => awsProjection(withResource)).toThrow(/resource random_password\.p uses provider "random", which is neither aws nor one of the dropped providers/);
    const withProvider = stack();
    withProvider.terraform.required_providers.tls = { source: 'hashicorp/tls' };
    expect(() => awsProjection(withProvider)).toThrow(/required_providers entry "tls" uses provider "tls"/);
  });

  test('an explicit provider meta-argument decides, not the type prefix', () => {
    const input = stack();
    input.resource.kubernetes_namespace_v1.ns.provider = 'kubernetes.other';
    input.resource.aws_kms_key.key.provider = 'aws.replica';
    const { dropped, stack: out } = awsProjection(input);
    expect(dropped.resources).toContain('kubernetes_namespace_v1.ns');
    expect(out.resource.aws_kms_key.key.provider).toBe('aws.replica');
  });

  test('lists what it drops by name', () => {
    expect(DROPPED_PROVIDERS).toEqual(['kubernetes', 'helm']);
    expect(DROPPED_AWS_DATA_SOURCES).toEqual(['aws_eks_cluster', 'aws_eks_cluster_auth']);
  });

  // The real TenantStack of each model with the Kubernetes side on: the projection keeps every AWS
  // resource and output, and no AWS resource or output of a tenant depends on the cluster side.
  const registry = loadSampleRegistry();
  const platform = registry.platform;
  const awsOnlyPlatform = { ...registry.platform, kubernetes: { ...registry.platform.kubernetes, enabled: false } };
  test.each(['initech', 'globex', 'acme'])('TenantStack %s (Kubernetes side on): keeps every AWS resource and output, drops only the Kubernetes side', (slug) => {
    const tenant = registry.tenants.find((t) => t.slug === slug)!;
    const json = JSON.parse(Testing.synth(new TenantStack(Testing.app(), { tenant, platform })));
    const { stack: out, dropped } = awsProjection(json);
    const addresses = (j: any) => Object.entries<object>(j.resource ?? {}).flatMap(([type, byName]) => Object.keys(byName).map((n) => `${type}.${n}`)).sort();
    expect(addresses(json).filter((a) => a.startsWith('helm_release.'))).toHaveLength(2);
    expect(addresses(out)).toEqual(addresses(json).filter((a) => a.startsWith('aws_')));
    expect(dropped.resources).toEqual(addresses(json).filter((a) => !a.startsWith('aws_')));
    expect(dropped.resources.every((a) => /^helm_release\./.test(a))).toBe(true);
    expect(dropped.dataSources).toEqual(['data.aws_eks_cluster.eks', 'data.aws_eks_cluster_auth.eks-auth']);
    expect(dropped.dependsOn).toEqual({});
    expect(out.output).toEqual(json.output);
    expect(out.provider).toEqual({ aws: json.provider.aws });
    expect(out.terraform).toEqual({ ...json.terraform, required_providers: { aws: json.terraform.required_providers.aws } });
    expect(out.data).toBeUndefined();
  });

  test('TenantStack with the Kubernetes side off: nothing to drop', () => {
    const tenant = registry.tenants.find((t) => t.slug === 'initech')!;
    const json = JSON.parse(Testing.synth(new TenantStack(Testing.app(), { tenant, platform: awsOnlyPlatform })));
    const { stack: out, dropped } = awsProjection(json);
    expect(out).toEqual(json);
    expect(dropped).toEqual({ providers: [], requiredProviders: [], resources: [], dataSources: [], dependsOn: {} });
  });
});
