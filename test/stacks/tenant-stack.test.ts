import { Testing } from 'cdktf';
import type { Registry } from '../../lib/registry/load-registry';
import type { PlatformConfig } from '../../lib/registry/platform-schema';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { TAG_KEYS } from '../../lib/tenant-tags';
import { PlatformStack } from '../../stacks/platform-stack';
import { TenantStack } from '../../stacks/tenant-stack';
import { loadSampleRegistry } from '../support/sample-registry';

const registry: Registry = loadSampleRegistry();
/** The sample platform has the Kubernetes side on (the default); this is the same without it. */
const withKubernetes: PlatformConfig = registry.platform;
const awsOnlyPlatform: PlatformConfig = { ...registry.platform, kubernetes: { ...registry.platform.kubernetes, enabled: false } };
const tenant = (slug: string): Tenant => {
  const t = registry.tenants.find((x) => x.slug === slug);
  if (!t) throw new Error(`sample tenant ${slug} missing`);
  return t;
};

function synthTenant(t: Tenant, platform: PlatformConfig = registry.platform): Record<string, any> {
  const stack = new TenantStack(Testing.app(), { tenant: t, platform });
  return JSON.parse(Testing.synth(stack, true));
}

const resourceTypes = (json: Record<string, any>) => Object.keys(json.resource ?? {}).sort();

describe('TenantStack', () => {
  // The secret sync's IAM role; every Kubernetes object is in the two Helm releases.
  const SECRET_SYNC_TYPES = ['aws_iam_role', 'aws_iam_role_policy'];
  test.each([
    ['initech', 'silo', ['aws_cloudwatch_log_group', 'aws_db_instance', 'aws_db_parameter_group', 'aws_db_subnet_group', 'aws_kms_alias', 'aws_kms_key', 'aws_secretsmanager_secret', 'aws_secretsmanager_secret_version', 'aws_security_group', ...SECRET_SYNC_TYPES]],
    ['globex', 'bridge', ['aws_secretsmanager_secret', 'aws_secretsmanager_secret_version', ...SECRET_SYNC_TYPES]],
    ['acme', 'pool', [...SECRET_SYNC_TYPES]],
  ])('%s (%s) composes the constructs of its model, its namespace and its Helm release', (slug, model, types) => {
    const t = tenant(slug);
    expect(t.model).toBe(model);
    const json = synthTenant(t, withKubernetes);
    expect(resourceTypes(json)).toEqual([...types, 'helm_release'].sort());
    expect(Object.values(json.resource.helm_release).map((r: any) => r.name).sort()).toEqual(['tenant-app', `tenant-${slug}`].sort());
    // Without kubernetes.enabled, only the AWS side of the model.
    const awsOnly = types.filter((x) => x.startsWith('aws_') && !x.startsWith('aws_iam_'));
    const withoutKubernetes = synthTenant(t, awsOnlyPlatform);
    expect(resourceTypes(withoutKubernetes)).toEqual(awsOnly);
    expect(Object.keys(withoutKubernetes.provider)).toEqual(['aws']);
    expect(withoutKubernetes.data).toBeUndefined();
  });

  test('Helm is configured from the EKS cluster of the tenant region, never a kubeconfig; there is no kubernetes provider', () => {
    const t = tenant('berlin-analytics');
    const json = synthTenant(t, withKubernetes);
    expect(Object.values(json.data.aws_eks_cluster)).toEqual([expect.objectContaining({ name: 'tenancy-eu-central-1' })]);
    expect(Object.values(json.data.aws_eks_cluster_auth)).toEqual([expect.objectContaining({ name: 'tenancy-eu-central-1' })]);
    expect(Object.keys(json.provider).sort()).toEqual(['aws', 'helm']);
    const kube = json.provider.helm[0].kubernetes;
    expect(kube.host).toMatch(/^\$\{data\.aws_eks_cluster\.[^.]+\.endpoint\}$/);
    expect(kube.cluster_ca_certificate).toMatch(/^\$\{base64decode\(data\.aws_eks_cluster\.[^.]+\.certificate_authority\[0\]\.data\)\}$/);
    expect(kube.token).toMatch(/^\$\{data\.aws_eks_cluster_auth\.[^.]+\.token\}$/);
    expect(kube.config_path).toBeUndefined();
  });

  test.each(['initech', 'mediwell', 'payflow', 'globex', 'berlin-analytics', 'acme', 'tinyco'])(
    '%s: every AWS resource is tagged with the tenant, in its own region, with state keyed by its id',
    (slug) => {
      const t = tenant(slug);
      const json = synthTenant(t);
      const aws = json.provider.aws[0];
      expect(aws.region).toBe(t.region);
      expect(aws.default_tags[0].tags).toMatchObject({
        [TAG_KEYS.tenantId]: t.id,
        [TAG_KEYS.tenantSlug]: t.slug,
        [TAG_KEYS.model]: t.model,
        [TAG_KEYS.plan]: t.plan,
      });
      expect(json.terraform.backend.local.path).toBe(`../../../state/tenants/${t.id}.tfstate`);
      expect(json.output.tenant_id.value).toBe(t.id);
      expect(json.output.model.value).toBe(t.model);
    },
  );

  test('HIPAA and PCI silo tenants get regulated backups', () => {
    for (const slug of ['mediwell', 'payflow']) {
      const db = Object.values(synthTenant(tenant(slug)).resource.aws_db_instance)[0] as any;
      expect(db.backup_retention_period).toBeGreaterThanOrEqual(30);
      expect(db.deletion_protection).toBe(true);
    }
  });

  test('silo outputs give the hooks the endpoint, the RDS-managed secret and the application role\'s secret, never a password', () => {
    const json = synthTenant(tenant('initech'), withKubernetes);
    expect(Object.keys(json.output).sort()).toEqual(
      ['app_credentials_secret_arn', 'db_address', 'db_identifier', 'db_kms_key_arn', 'db_master_secret_arn', 'db_name', 'db_port', 'k8s_namespace', 'model', 'plan', 'region', 'slug', 'tenant_id'],
    );
    expect(json.output.db_master_secret_arn.value).toMatch(/master_user_secret\[0\]\.secret_arn/);
    const [secretId, secret] = Object.entries(json.resource.aws_secretsmanager_secret)[0] as [string, any];
    expect(json.output.app_credentials_secret_arn.value).toBe(`\${aws_secretsmanager_secret.${secretId}.arn}`);
    expect(secret.name).toBe(`tenancy/tenants/${json.output.tenant_id.value}/db-credentials`);
    expect(secret.kms_key_id).toBe(json.output.db_kms_key_arn.value);
    // The only "password" keys are External Secrets templates resolved in the cluster, and the
    // application role's password is a Terraform expression evaluated at apply, never a literal.
    expect(JSON.stringify(json)).not.toMatch(/"(password|master_password)"\s*:\s*"(?!\{\{ \.password \}\})/);
    expect(JSON.stringify(json)).not.toMatch(/\\"password\\"\s*=\s*\\"/);
    expect(JSON.stringify(json)).toContain('\\"password\\" = replace(join(\\"\\", [uuid(), uuid()]), \\"-\\", \\"\\")');
  });

  test('with an S3 backend, state is one object per tenant id, encrypted and locked by a lock file', () => {
    const platform: PlatformConfig = { ...registry.platform, state: { backend: 's3', bucket: 'acme-tf-state', region: 'us-east-1', keyPrefix: 'tenancy' } };
    const t = tenant('globex');
    const json = synthTenant(t, platform);
    expect(json.terraform.backend.s3).toEqual({ bucket: 'acme-tf-state', region: 'us-east-1', key: `tenancy/tenants/${t.id}.tfstate`, encrypt: true, use_lockfile: true });
  });

  test('a tenant in a region platform.yaml lacks is rejected', () => {
    expect(() => synthTenant({ ...tenant('acme'), region: 'ap-south-1' })).toThrow(/region ap-south-1 is not configured/);
  });

  test('the policy aspect runs per stack and fails synth when a tenant tag is missing', () => {
    const stack = new TenantStack(Testing.app(), { tenant: tenant('globex'), platform: registry.platform });
    stack.aws.defaultTags = [{ tags: { [TAG_KEYS.tenantId]: 'x' } }];
    expect(() => Testing.fullSynth(stack)).toThrow(/TENANCY-TAG-1/);
  });

  // One snapshot of the synthesized JSON (AWS, Kubernetes and Helm) per model.
  test.each([['silo', 'initech'], ['bridge', 'globex'], ['pool', 'acme']])('snapshot: %s model (%s)', (_model, slug) => {
    expect(synthTenant(tenant(slug), withKubernetes)).toMatchSnapshot();
  });
});

describe('PlatformStack', () => {
  test('the control-plane region also holds the control-plane database', () => {
    const home = JSON.parse(Testing.synth(new PlatformStack(Testing.app(), { platform: registry.platform, region: 'us-east-1' })));
    const other = JSON.parse(Testing.synth(new PlatformStack(Testing.app(), { platform: registry.platform, region: 'eu-central-1' })));
    const ids = (json: any) => Object.values(json.resource.aws_rds_cluster).map((c: any) => c.cluster_identifier).sort();
    expect(ids(home)).toEqual(['tenancy-bridge', 'tenancy-control-plane', 'tenancy-pool']);
    expect(ids(other)).toEqual(['tenancy-bridge', 'tenancy-pool']);
    expect(home.terraform.backend.local.path).toBe('../../../state/platform/us-east-1.tfstate');
    expect(Object.keys(home.output)).toEqual(expect.arrayContaining(['bridge_endpoint', 'pool_endpoint', 'control_plane_endpoint', 'tenant_secrets_key_arn']));
    expect(Object.values(home.resource.aws_kms_key).every((k: any) => k.enable_key_rotation === true)).toBe(true);
  });

  test('the bridge secrets key alias the tenant stacks name is the one the platform creates', () => {
    const home = JSON.parse(Testing.synth(new PlatformStack(Testing.app(), { platform: registry.platform, region: 'us-east-1' })));
    const aliases = Object.values(home.resource.aws_kms_alias).map((a: any) => a.name);
    const bridge = synthTenant(tenant('globex'));
    const secret = Object.values(bridge.resource.aws_secretsmanager_secret)[0] as any;
    expect(aliases).toContain(secret.kms_key_id);
  });

  test('snapshot: control-plane region', () => {
    expect(JSON.parse(Testing.synth(new PlatformStack(Testing.app(), { platform: registry.platform, region: 'us-east-1' })))).toMatchSnapshot();
  });
});
