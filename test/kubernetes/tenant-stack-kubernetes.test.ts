import { Testing } from 'cdktf';
import { PLATFORM_ENFORCED_VALUES } from '../../lib/kubernetes/enforced-values';
import { PLAN_PROFILES } from '../../lib/plans';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { TenantStack } from '../../stacks/tenant-stack';
import { assertPathsExist, loadChartValues } from '../chart/chart-values';
import { restrictedViolations } from '../chart/pod-security';
import { onlyManifest, releaseValueLayers, renderRelease } from '../support/helm';
import { loadSampleRegistry } from '../support/sample-registry';
import { named, renderPlatformRelease } from './platform-release';

const registry = loadSampleRegistry();
const platform = { ...registry.platform, kubernetes: { ...registry.platform.kubernetes, enabled: true } };
const live = registry.tenants.filter((t) => t.status !== 'offboarded');
const chartValues = loadChartValues();

function build(t: Tenant) {
  const stack = new TenantStack(Testing.app(), { tenant: t, platform });
  return { stack, json: JSON.parse(Testing.synth(stack)) as Record<string, any> };
}
const all = (json: Record<string, any>, type: string): any[] => Object.values(json.resource?.[type] ?? {});

describe.each(live.map((t) => [t.slug, t] as const))('tenant %s: Kubernetes side', (_slug, t) => {
  const { stack, json } = build(t);
  const release = all(json, 'helm_release').find((r) => r.name === 'tenant-app');
  const platformObjects = renderPlatformRelease(json);
  const layers = releaseValueLayers(release);

  test('the Helm release is pinned to the platform chart version in the tenant namespace, after the platform release', () => {
    expect(release).toMatchObject({ name: 'tenant-app', namespace: `tenant-${t.slug}`, version: registry.platform.kubernetes.chartVersion, atomic: true });
    const [platformId] = Object.entries(json.resource.helm_release).find(([, r]: [string, any]) => r.name === `tenant-${t.slug}`)!;
    expect(release.depends_on).toEqual([`helm_release.${platformId}`]);
  });

  test('values are merged in the documented order: plan, then the tenant, then what the platform enforces', () => {
    expect(layers).toHaveLength(3);
    const [plan, own, enforced] = layers;
    expect(plan.replicaCount).toBe(t.workload.replicas ?? PLAN_PROFILES[t.plan].replicas);
    expect(own).toEqual(t.workload.values ?? {});
    expect(Object.keys(enforced).sort()).toEqual([...PLATFORM_ENFORCED_VALUES].filter((k) => !/SecurityContext$|^securityContext$/.test(k)).sort());
    expect(enforced.tenant).toEqual({ id: t.id, slug: t.slug, plan: t.plan, model: t.model });
    // Every value the construct passes exists in the chart's values.yaml.
    for (const layer of [plan, enforced]) assertPathsExist(layer, chartValues);
  });

  test('the chart rendered by helm with these values runs as restricted pods with the tenant identity and database settings', () => {
    const rendered = renderRelease(json, 'tenant-app');
    const deployment = onlyManifest(rendered, 'Deployment');
    const pod = deployment.spec.template.spec;
    expect(restrictedViolations(pod)).toEqual([]);
    const env = Object.fromEntries(pod.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
    expect(env).toMatchObject({ TENANT_ID: t.id, TENANT_SLUG: t.slug });
    expect(env.DATABASE_HOST).toBe(t.model === 'silo' ? `pgbouncer.tenant-${t.slug}.svc.cluster.local` : `${t.model}.db.tenancy.internal`);
    expect(pod.serviceAccountName).toBe('tenant-app');
    expect(pod.automountServiceAccountToken).toBe(false);
    if (t.compliance.pci) {
      expect(pod.tolerations).toEqual([{ key: 'tenancy.io/dedicated', operator: 'Equal', value: 'pci', effect: 'NoSchedule' }]);
      expect(JSON.stringify(pod.affinity)).toContain('tenancy.io/dedicated');
    }
  });

  test('database credentials reach the namespace through a secret sync whose IAM role only this namespace can assume', () => {
    const roles = all(json, 'aws_iam_role');
    expect(roles).toHaveLength(1);
    const trust = JSON.parse(roles[0].assume_role_policy);
    const condition = trust.Statement[0].Condition.StringEquals;
    const sub = Object.entries(condition).find(([k]) => k.endsWith(':sub'))![1] as string;
    expect(sub).toMatch(new RegExp(`^system:serviceaccount:tenant-${t.slug}:[a-z-]+-reader$`));
    const reader = sub.split(':').at(-1)!;
    const secretName = reader.replace(/-reader$/, '');
    // The ServiceAccount that assumes the role, the store that uses it and the ExternalSecret are in the tenant's platform release.
    expect(named(platformObjects, 'ServiceAccount', reader).metadata.annotations['eks.amazonaws.com/role-arn']).toMatch(/^\$\{aws_iam_role\.[^}]+\.arn\}$/);
    expect(named(platformObjects, 'SecretStore', `${secretName}-store`).spec.provider.aws.auth.jwt.serviceAccountRef.name).toBe(reader);
    const externalSecret = named(platformObjects, 'ExternalSecret', secretName);
    expect(externalSecret.metadata.namespace).toBe(`tenant-${t.slug}`);
    expect(externalSecret.spec.secretStoreRef.name).toBe(`${secretName}-store`);
    // The role may read exactly the secret the ExternalSecret extracts (silo and bridge: the tenant's own).
    const policy = JSON.parse(all(json, 'aws_iam_role_policy')[0].policy);
    if (t.model !== 'pool') expect(policy.Statement[0].Resource).toBe(externalSecret.spec.dataFrom[0].extract.key);
  });

  if (t.model === 'silo') {
    test('silo: PgBouncer in transaction mode in front of the tenant database, non-root, read-only, sized by plan', () => {
      const config = named(platformObjects, 'ConfigMap', 'pgbouncer-config').data['pgbouncer.ini'] as string;
      expect(config).toContain('pool_mode = transaction');
      expect(config).toMatch(/host=\$\{aws_db_instance\.[^}]+\.address\} port=5432 dbname=tenant_/);
      expect(config).toContain(`default_pool_size = ${PLAN_PROFILES[t.plan].pgbouncer.defaultPoolSize}`);
      expect(config).toMatch(/server_tls_sslmode = (require|verify-full)/);
      const deployment = named(platformObjects, 'Deployment', 'pgbouncer');
      expect(deployment.spec.replicas).toBe(PLAN_PROFILES[t.plan].pgbouncer.replicas);
      const pod = deployment.spec.template.spec;
      expect(restrictedViolations(pod)).toEqual([]);
      expect(pod.containers[0].securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      expect(pod.containers[0].resources.limits).toEqual({ cpu: '500m', memory: '128Mi' });
      expect(pod.containers[0].readinessProbe).toEqual({ tcpSocket: { port: 'postgres' }, periodSeconds: 5 });
      expect(pod.automountServiceAccountToken).toBe(false);
      expect((pod.tolerations ?? []).length > 0).toBe(t.compliance.pci);
      expect(Boolean(pod.affinity)).toBe(t.compliance.pci);
      const volumes = Object.fromEntries(pod.volumes.map((v: any) => [v.name, v]));
      expect(volumes.auth.secret.secretName).toBe('pgbouncer-auth');
      expect(named(platformObjects, 'Service', 'pgbouncer').spec).toMatchObject({ type: 'ClusterIP', ports: [{ port: 6432, targetPort: 'postgres', protocol: 'TCP', name: 'postgres' }] });
      // The password is never in the synthesized configuration: it comes from the ExternalSecret.
      expect(JSON.stringify(json)).not.toMatch(/userlist\.txt":\s*"(?!\\"\{\{)/);
      expect(stack.pgbouncer).toBeDefined();
    });

    test('silo: PgBouncer and the workload log in as the application role, from its own secret, never the RDS master secret', () => {
      const [secretId, secret] = Object.entries(json.resource.aws_secretsmanager_secret)[0] as [string, any];
      const appSecretArn = `\${aws_secretsmanager_secret.${secretId}.arn}`;
      expect(Object.keys(json.resource.aws_secretsmanager_secret)).toEqual([secretId]);
      expect(secret.name).toBe(`tenancy/tenants/${t.id}/db-credentials`);
      const [keyId] = Object.keys(json.resource.aws_kms_key);
      const siloKeyArn = `\${aws_kms_key.${keyId}.arn}`;
      expect(secret.kms_key_id).toBe(siloKeyArn);

      // External Secrets extracts the application role's secret into PgBouncer's auth Secret.
      const externalSecret = named(platformObjects, 'ExternalSecret', 'pgbouncer-auth');
      expect(externalSecret.spec.dataFrom).toEqual([{ extract: { key: appSecretArn } }]);
      expect(externalSecret.spec.target.template.data['userlist.txt']).toBe('"{{ .username }}" "{{ .password }}"\n');

      // Its IAM role may read that secret only, and decrypt with the silo's own key only through Secrets Manager.
      const policies = all(json, 'aws_iam_role_policy');
      expect(policies).toHaveLength(1);
      expect(JSON.parse(policies[0].policy)).toEqual({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: appSecretArn },
          { Effect: 'Allow', Action: 'kms:Decrypt', Resource: siloKeyArn, Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${t.region}.amazonaws.com` } } },
        ],
      });
      // The master secret reaches nothing in the tenant namespace: it is only a hook output.
      const masterSecret = /master_user_secret/;
      expect(policies[0].policy).not.toMatch(masterSecret);
      const inNamespace = platformObjects.manifests.filter((m) => m.metadata?.namespace === `tenant-${t.slug}`);
      expect(inNamespace.map((m) => m.kind)).toEqual(expect.arrayContaining(['ExternalSecret', 'SecretStore', 'Deployment', 'ConfigMap']));
      expect(JSON.stringify(inNamespace)).not.toMatch(masterSecret);
      expect(JSON.stringify(layers)).not.toMatch(masterSecret);
      expect(json.output.db_master_secret_arn.value).toMatch(masterSecret);

      // The workload connects through PgBouncer with the same Secret.
      const enforced = layers[2] as { database: { credentialsSecret: string } };
      expect(enforced.database.credentialsSecret).toBe('pgbouncer-auth');
      expect(stack.pgbouncer!.credentialsSecret).toBe('pgbouncer-auth');
    });
  }
});

test('a tenant override of a platform-enforced value is rejected by the construct', () => {
  const t = live.find((x) => x.slug === 'acme')!;
  expect(() => build({ ...t, workload: { ...t.workload, values: { tenant: { id: live[1].id } } } })).toThrow(/values tenant: is set by the platform/);
});

test('the sample tenants\' own values use only values the chart has', () => {
  for (const t of live) assertPathsExist(t.workload.values ?? {}, chartValues);
});

test('a tenant\'s configured egress destinations, and only those, are added to its egress policy', () => {
  const t = live.find((x) => x.slug === 'initech')!;
  const policy = named(renderPlatformRelease(build(t).json), 'NetworkPolicy', 'allow-listed-egress');
  const cidrs = policy.spec.egress.map((e: any) => e.to[0].ipBlock.cidr);
  expect(cidrs).toEqual([...registry.platform.regions[t.region].databaseSubnetCidrs, '198.51.100.0/24']);
  expect(policy.spec.egress.at(-1).ports).toEqual([{ port: 636, protocol: 'TCP' }]);
});
