import { Testing, TerraformStack } from 'cdktf';
import { PLATFORM_OWNED_RESOURCES, TenantNamespace, type TenantNamespaceProps } from '../../lib/kubernetes/tenant-namespace';
import { PLAN_PROFILES } from '../../lib/plans';
import { loadRegistry } from '../../lib/registry/load-registry';
import { REPO_ROOT } from '../support/fixture-project';

const registry = loadRegistry({ root: REPO_ROOT });
const DB = [{ cidr: '10.0.32.0/20', ports: [5432] }];
const PCI_NODES = { labelKey: 'tenancy.io/dedicated', labelValue: 'pci', taintKey: 'tenancy.io/dedicated' };

function synth(props: Partial<TenantNamespaceProps> & Pick<TenantNamespaceProps, 'slug'>) {
  const stack = new TerraformStack(Testing.app(), 'ns');
  const ns = new TenantNamespace(stack, 'namespace', {
    tenantId: '00000000-0000-4000-8000-000000000001', plan: 'pro', model: 'bridge', databaseEgress: DB, ...props,
  });
  return { ns, json: JSON.parse(Testing.synth(stack)) as Record<string, any> };
}
const all = (json: Record<string, any>, type: string): any[] => Object.values(json.resource?.[type] ?? {});
const byName = (json: Record<string, any>, type: string, name: string) => all(json, type).find((r) => r.metadata.name === name);

describe.each(registry.tenants.filter((t) => t.status !== 'offboarded').map((t) => [t.slug, t] as const))('TenantNamespace of %s', (_slug, t) => {
  const { ns, json } = synth({
    tenantId: t.id, slug: t.slug, plan: t.plan, model: t.model, quota: t.quotas,
    regulated: t.compliance.hipaa || t.compliance.pci,
    dedicatedNodes: t.compliance.pci ? PCI_NODES : undefined,
  });

  test('namespace tenant-<slug>, labelled, Pod Security restricted in enforce, audit and warn', () => {
    const namespace = all(json, 'kubernetes_namespace_v1')[0];
    expect(namespace.metadata.name).toBe(`tenant-${t.slug}`);
    expect(namespace.metadata.labels).toMatchObject({
      'tenancy.io/tenant-id': t.id, 'tenancy.io/tenant-slug': t.slug, 'tenancy.io/plan': t.plan, 'tenancy.io/model': t.model,
      'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/audit': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted',
    });
  });

  test('a default-deny policy selects every pod in both directions; every other policy only adds narrow exceptions', () => {
    const deny = byName(json, 'kubernetes_network_policy_v1', 'default-deny-all');
    expect(deny.spec).toEqual({ pod_selector: {}, policy_types: ['Ingress', 'Egress'] });
    const policies = all(json, 'kubernetes_network_policy_v1');
    for (const p of policies) {
      expect(p.metadata.namespace).toBe(`tenant-${t.slug}`);
      for (const rule of p.spec.egress ?? []) {
        for (const to of rule.to) {
          // Egress leaves the namespace only to DNS or a listed CIDR, never to another namespace or the internet.
          if (to.namespace_selector) expect(to.namespace_selector.match_labels).toEqual({ 'kubernetes.io/metadata.name': 'kube-system' });
          if (to.ip_block) expect(to.ip_block.cidr).not.toMatch(/\/0$/);
        }
      }
      for (const rule of p.spec.ingress ?? []) {
        for (const from of rule.from) {
          expect(from.ip_block).toBeUndefined();
          if (from.namespace_selector) expect(from.namespace_selector.match_labels).toEqual({ 'kubernetes.io/metadata.name': 'ingress-nginx' });
        }
      }
    }
    const db = byName(json, 'kubernetes_network_policy_v1', 'allow-database-egress');
    expect(db.spec.egress).toEqual([{ to: [{ ip_block: { cidr: DB[0].cidr } }], ports: [{ port: '5432', protocol: 'TCP' }] }]);
  });

  test('the quota covers compute, storage and object counts; no load balancers or node ports', () => {
    const hard = all(json, 'kubernetes_resource_quota_v1')[0].spec.hard;
    const expected = { ...PLAN_PROFILES[t.plan].quota, ...Object.fromEntries(Object.entries(t.quotas).filter(([, v]) => v !== undefined)) };
    expect(hard).toEqual({
      'requests.cpu': expected.cpu, 'limits.cpu': expected.cpu,
      'requests.memory': expected.memory, 'limits.memory': expected.memory,
      'requests.storage': expected.storage,
      persistentvolumeclaims: String(expected.persistentVolumeClaims), pods: String(expected.pods), services: String(expected.services),
      'services.loadbalancers': '0', 'services.nodeports': '0',
      configmaps: String(expected.configMaps), secrets: String(expected.secrets),
    });
    const limit = all(json, 'kubernetes_limit_range_v1')[0].spec.limit[0];
    expect(limit.type).toBe('Container');
    expect(limit.default).toEqual(PLAN_PROFILES[t.plan].containerLimits.defaultLimit);
    expect(limit.default_request).toEqual(PLAN_PROFILES[t.plan].containerLimits.defaultRequest);
  });

  test('RBAC: a namespaced role, no cluster-scoped binding, no write verb on platform-owned kinds, token not automounted', () => {
    expect(Object.keys(json.resource).filter((type) => /cluster_role/.test(type))).toEqual([]);
    const writes = ['create', 'update', 'patch', 'delete', 'deletecollection', '*', 'escalate', 'bind'];
    for (const role of all(json, 'kubernetes_role_v1')) {
      expect(role.metadata.namespace).toBe(`tenant-${t.slug}`);
      for (const rule of role.rule) {
        expect(rule.resources).not.toContain('*');
        expect(rule.resources).not.toContain('secrets');
        if (rule.resources.some((r: string) => (PLATFORM_OWNED_RESOURCES as readonly string[]).includes(r))) {
          expect(rule.verbs.filter((v: string) => writes.includes(v))).toEqual([]);
        }
      }
    }
    const binding = all(json, 'kubernetes_role_binding_v1')[0];
    expect(binding.role_ref.kind).toBe('Role');
    expect(binding.subject).toEqual([{ kind: 'ServiceAccount', name: 'tenant-app', namespace: `tenant-${t.slug}` }]);
    expect(all(json, 'kubernetes_service_account_v1')[0].automount_service_account_token).toBe(false);
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
  ])('%s', (_n, props, message) => {
    expect(() => synth({ slug: 'acme', ...props })).toThrow(message);
  });
});
