import { Testing, TerraformStack } from 'cdktf';
import { PLATFORM_OWNED_RESOURCES, TENANT_PLATFORM_CHART_VERSION, TenantNamespace, type TenantNamespaceProps } from '../../lib/kubernetes/tenant-namespace';
import { loadChartYaml } from '../chart/chart-values';
import { PLAN_PROFILES } from '../../lib/plans';
import { loadSampleRegistry } from '../support/sample-registry';
import { PLATFORM_CHART_DIR, named, ofKind, platformRelease, renderPlatform } from './platform-release';

const registry = loadSampleRegistry();
const DB = [{ cidr: '10.0.32.0/20', ports: [5432] }];
const PCI_NODES = { labelKey: 'tenancy.io/dedicated', labelValue: 'pci', taintKey: 'tenancy.io/dedicated' };

function synth(props: Partial<TenantNamespaceProps> & Pick<TenantNamespaceProps, 'slug'>) {
  const stack = new TerraformStack(Testing.app(), 'ns');
  const ns = new TenantNamespace(stack, 'namespace', {
    tenantId: '00000000-0000-4000-8000-000000000001', plan: 'pro', model: 'bridge', databaseEgress: DB, ...props,
  });
  const json = JSON.parse(Testing.synth(stack)) as Record<string, any>;
  return { ns, json, rendered: renderPlatform(JSON.parse(platformRelease(json).values[0])) };
}

describe.each(registry.tenants.filter((t) => t.status !== 'offboarded').map((t) => [t.slug, t] as const))('TenantNamespace of %s', (_slug, t) => {
  const { ns, json, rendered } = synth({
    tenantId: t.id, slug: t.slug, plan: t.plan, model: t.model, quota: t.quotas,
    regulated: t.compliance.hipaa || t.compliance.pci,
    dedicatedNodes: t.compliance.pci ? PCI_NODES : undefined,
  });

  test('namespace tenant-<slug>, labelled, Pod Security restricted in enforce, audit and warn', () => {
    const [namespace] = ofKind(rendered, 'Namespace');
    expect(namespace.metadata.name).toBe(`tenant-${t.slug}`);
    expect(namespace.metadata.labels).toMatchObject({
      'tenancy.io/tenant-id': t.id, 'tenancy.io/tenant-slug': t.slug, 'tenancy.io/plan': t.plan, 'tenancy.io/model': t.model,
      'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/audit': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted',
    });
  });

  test('a default-deny policy selects every pod in both directions; every other policy only adds narrow exceptions', () => {
    const deny = named(rendered, 'NetworkPolicy', 'default-deny-all');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const policies = ofKind(rendered, 'NetworkPolicy');
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(['allow-dns', 'allow-ingress-controller', 'allow-listed-egress', 'allow-same-namespace', 'default-deny-all']);
    for (const p of policies) {
      expect(p.metadata.namespace).toBe(`tenant-${t.slug}`);
      expect(p.spec.podSelector).toEqual({});
      for (const rule of p.spec.egress ?? []) {
        for (const to of rule.to) {
          // Egress leaves the namespace only to DNS or a listed CIDR, never to another namespace or the internet.
          if (to.namespaceSelector) expect(to.namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'kube-system' });
          if (to.ipBlock) expect(to.ipBlock.cidr).not.toMatch(/\/0$/);
          if (!to.ipBlock && !to.namespaceSelector) expect(to).toEqual({ podSelector: {} });
        }
      }
      for (const rule of p.spec.ingress ?? []) {
        for (const from of rule.from) {
          expect(from.ipBlock).toBeUndefined();
          if (from.namespaceSelector) expect(from.namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'ingress-nginx' });
          else expect(from).toEqual({ podSelector: {} });
        }
      }
    }
    const dns = named(rendered, 'NetworkPolicy', 'allow-dns');
    expect(dns.spec.egress[0].to[0].podSelector.matchLabels).toEqual({ 'k8s-app': 'kube-dns' });
    expect(dns.spec.egress[0].ports).toEqual([{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }]);
    const db = named(rendered, 'NetworkPolicy', 'allow-listed-egress');
    expect(db.spec.egress).toEqual([{ to: [{ ipBlock: { cidr: DB[0].cidr } }], ports: [{ port: 5432, protocol: 'TCP' }] }]);
  });

  test('the quota covers compute, storage and object counts; no load balancers or node ports', () => {
    const [quota] = ofKind(rendered, 'ResourceQuota');
    expect(quota.metadata.namespace).toBe(`tenant-${t.slug}`);
    const hard = quota.spec.hard;
    const expected = { ...PLAN_PROFILES[t.plan].quota, ...Object.fromEntries(Object.entries(t.quotas).filter(([, v]) => v !== undefined)) };
    expect(hard).toEqual({
      'requests.cpu': expected.cpu, 'limits.cpu': expected.cpu,
      'requests.memory': expected.memory, 'limits.memory': expected.memory,
      'requests.storage': expected.storage,
      persistentvolumeclaims: String(expected.persistentVolumeClaims), pods: String(expected.pods), services: String(expected.services),
      'services.loadbalancers': '0', 'services.nodeports': '0',
      configmaps: String(expected.configMaps), secrets: String(expected.secrets),
    });
    const limit = ofKind(rendered, 'LimitRange')[0].spec.limits[0];
    expect(limit.type).toBe('Container');
    expect(limit.default).toEqual(PLAN_PROFILES[t.plan].containerLimits.defaultLimit);
    expect(limit.defaultRequest).toEqual(PLAN_PROFILES[t.plan].containerLimits.defaultRequest);
    expect(limit.max).toEqual(PLAN_PROFILES[t.plan].containerLimits.max);
  });

  test('RBAC: a namespaced role, no cluster-scoped binding, no write verb on platform-owned kinds, token not automounted', () => {
    // Nothing cluster-scoped but the namespace itself; every other object is in the tenant namespace.
    expect(Object.keys(json.resource)).toEqual(['helm_release']);
    for (const m of rendered.manifests.filter((x) => x.kind !== 'Namespace')) expect(`${m.kind}/${m.metadata.namespace}`).toBe(`${m.kind}/tenant-${t.slug}`);
    expect(rendered.manifests.filter((m) => /^Cluster/.test(m.kind))).toEqual([]);
    const writes = ['create', 'update', 'patch', 'delete', 'deletecollection', '*', 'escalate', 'bind', 'impersonate'];
    for (const role of ofKind(rendered, 'Role')) {
      for (const rule of role.rules) {
        expect(rule.resources).not.toContain('*');
        expect(rule.resources).not.toContain('secrets');
        if (rule.resources.some((r: string) => (PLATFORM_OWNED_RESOURCES as readonly string[]).includes(r))) {
          expect(rule.verbs.filter((v: string) => writes.includes(v))).toEqual([]);
        }
      }
    }
    const [binding] = ofKind(rendered, 'RoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant-app' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'tenant-app', namespace: `tenant-${t.slug}` }]);
    for (const sa of ofKind(rendered, 'ServiceAccount')) expect(sa.automountServiceAccountToken).toBe(false);
  });

  test('PCI tenants are placed on dedicated nodes; others are not', () => {
    if (t.compliance.pci) {
      expect(ns.placement.tolerations).toEqual([{ key: 'tenancy.io/dedicated', operator: 'Equal', value: 'pci', effect: 'NoSchedule' }]);
      expect(JSON.stringify(ns.placement.affinity)).toContain('"values":["pci"]');
    } else {
      expect(ns.placement).toEqual({ affinity: {}, tolerations: [] });
    }
  });
});

describe('TenantNamespace rejects', () => {
  test.each<[string, Partial<TenantNamespaceProps>, RegExp]>([
    ['a quota above the plan ceiling', { plan: 'starter', quota: { cpu: '8' } }, /quota cpu 8 exceeds the starter plan ceiling of 4/],
    ['too many pods for the plan', { plan: 'free', model: 'pool', quota: { pods: 11 } }, /quota pods 11 exceeds/],
    ['egress to the whole internet', { extraEgress: [{ cidr: '0.0.0.0/0', ports: [443] }] }, /whole internet/],
    ['a malformed CIDR', { databaseEgress: [{ cidr: '10.0.0.0', ports: [5432] }] }, /not an IPv4 CIDR/],
    ['no database egress', { databaseEgress: [] }, /databaseEgress is empty/],
    ['an egress without ports', { extraEgress: [{ cidr: '192.0.2.0/24', ports: [] }] }, /needs ports/],
    ['extra egress for regulated data', { regulated: true, extraEgress: [{ cidr: '192.0.2.0/24', ports: [443] }] }, /regulated/],
    ['a bad ingress namespace', { ingressControllerNamespace: 'Ingress NGINX' }, /not a namespace name/],
    ['an unsafe slug', { slug: 'tenant-a;rm' }, /not a safe tenant slug/],
    ['a tenant namespace as the release namespace', { releaseNamespace: 'tenant-other' }, /looks like a tenant namespace/],
    ['a bad release namespace', { releaseNamespace: '../kube-system' }, /releaseNamespace .* is not a namespace name/],
  ])('%s', (_n, props, message) => {
    expect(() => synth({ slug: 'acme', ...props })).toThrow(message);
  });
});

describe('the platform release', () => {
  test('one release tenant-<slug> recorded in the platform namespace, pinned to the chart version this code computes values for', () => {
    const { json } = synth({ slug: 'acme' });
    expect(platformRelease(json)).toMatchObject({
      name: 'tenant-acme', namespace: 'tenancy-system', chart: '../../../charts/tenant-platform', version: TENANT_PLATFORM_CHART_VERSION, atomic: true, cleanup_on_fail: true,
    });
    expect(loadChartYaml(PLATFORM_CHART_DIR)).toMatchObject({ name: 'tenant-platform', version: TENANT_PLATFORM_CHART_VERSION });
  });

  test('a chart repository and a release namespace are taken as given', () => {
    const { json } = synth({ slug: 'acme', releaseNamespace: 'platform-releases', chartRepository: 'oci://registry.example.com/charts' });
    expect(platformRelease(json)).toMatchObject({ namespace: 'platform-releases', chart: 'tenant-platform', repository: 'oci://registry.example.com/charts' });
  });

  test('secret syncs and PgBouncer join the same release; each only once', () => {
    const stack = new TerraformStack(Testing.app(), 'ns');
    const ns = new TenantNamespace(stack, 'namespace', { tenantId: '00000000-0000-4000-8000-000000000001', slug: 'acme', plan: 'pro', model: 'silo', databaseEgress: DB });
    const sync = { name: 'pgbouncer-auth', region: 'us-east-1', roleArn: 'arn:aws:iam::111122223333:role/r', key: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:s', template: { username: '{{ .username }}' } };
    ns.addSecretSync(sync);
    expect(() => ns.addSecretSync(sync)).toThrow(/secret sync pgbouncer-auth is added twice/);
    expect(() => ns.addSecretSync({ ...sync, name: 'Bad_Name' })).toThrow(/is not a Secret name/);
    const pgbouncer = { image: 'edoburu/pgbouncer:v1.23.1-p3', replicas: 2, port: 6432, ini: '[pgbouncer]\n', authSecret: 'pgbouncer-auth', caConfigMap: '' };
    ns.addPgbouncer(pgbouncer);
    expect(() => ns.addPgbouncer(pgbouncer)).toThrow(/PgBouncer is added twice/);
    const values = JSON.parse(platformRelease(JSON.parse(Testing.synth(stack))).values[0]);
    const rendered = renderPlatform(values);
    // Helm does not template values: the External Secrets template reaches the cluster verbatim.
    expect(named(rendered, 'ExternalSecret', 'pgbouncer-auth').spec.target.template.data).toEqual({ username: '{{ .username }}' });
    expect(named(rendered, 'ServiceAccount', 'pgbouncer-auth-reader').metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': sync.roleArn });
    expect(named(rendered, 'Deployment', 'pgbouncer').spec.replicas).toBe(2);
  });
});

describe('charts/tenant-platform refuses incomplete values', () => {
  const { ns } = synth({ slug: 'acme' });
  test.each<[string, (v: Record<string, any>) => void, RegExp]>([
    ['no egress at all', (v) => { v.egress = []; }, /egress is empty/],
    ['no quota', (v) => { v.quota = { hard: {} }; }, /quota.hard is required/],
    ['no namespace', (v) => { v.namespace = ''; }, /namespace is required/],
    ['no tenant id', (v) => { v.tenant.id = ''; }, /tenant.id is required/],
    ['PgBouncer without its configuration', (v) => { v.pgbouncer = { enabled: true, image: 'x:1', ini: '' }; }, /pgbouncer.ini is required/],
  ])('%s', (_n, change, message) => {
    const values = JSON.parse(JSON.stringify(ns.values));
    change(values);
    expect(() => renderPlatform(values)).toThrow(message);
  });
});
