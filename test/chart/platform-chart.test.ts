import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing, TerraformStack } from 'cdktf';
import { TENANT_PLATFORM_CHART_VERSION, TenantNamespace } from '../../lib/kubernetes/tenant-namespace';
import { PLATFORM_CHART_DIR, named, renderPlatform } from '../kubernetes/platform-release';
import { HelmError, helmLint } from '../support/helm';
import { schemaProblems } from '../support/kubernetes-schema';
import {
  dynamicValueLookups, loadChartValues, loadChartYaml, loadTemplates, missingValueRefs, misspellingMutants, namedTemplates, unusedValues, valuePathsOf,
} from './chart-values';
import { misspeltKeyMutants, schemaPaths, type JsonSchema } from './values-schema';

const SCHEMA = JSON.parse(readFileSync(join(PLATFORM_CHART_DIR, 'values.schema.json'), 'utf8')) as JsonSchema;

/** The values TenantNamespace computes for a bridge tenant with one secret sync (complete values to vary). */
function namespaceValues(): Record<string, any> {
  const ns = new TenantNamespace(new TerraformStack(Testing.app(), 'ns'), 'namespace', {
    tenantId: '00000000-0000-4000-8000-000000000001', slug: 'acme', plan: 'pro', model: 'bridge', databaseEgress: [{ cidr: '10.0.32.0/20', ports: [5432] }],
  });
  ns.addSecretSync({ name: 'database-credentials', region: 'eu-west-1', roleArn: 'arn:aws:iam::123456789012:role/acme-reader', key: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenancy/acme', template: { username: '{{ .username }}', password: '{{ .password }}' } });
  return JSON.parse(JSON.stringify(ns.values));
}

// charts/tenant-platform: static checks, its values.schema.json and what Helm refuses. What it renders
// for each sample tenant is tested in sample-tenants.test.ts and test/kubernetes.
describe('charts/tenant-platform', () => {
  test('Chart.yaml: apiVersion v2, tenant-platform, the version the constructs compute values for', () => {
    expect(loadChartYaml(PLATFORM_CHART_DIR)).toMatchObject({ apiVersion: 'v2', name: 'tenant-platform', type: 'application', version: TENANT_PLATFORM_CHART_VERSION });
  });

  test('every template is present', () => {
    for (const f of ['_helpers.tpl', 'namespace.yaml', 'networkpolicies.yaml', 'quota.yaml', 'rbac.yaml', 'secret-sync.yaml', 'pgbouncer.yaml', 'post-apply-job.yaml']) {
      expect(existsSync(join(PLATFORM_CHART_DIR, 'templates', f))).toBe(true);
    }
  });

  test('no template creates a cluster-scoped RBAC object or a Service that leaves the cluster', () => {
    for (const [file, text] of loadTemplates(PLATFORM_CHART_DIR)) {
      expect({ file, clusterRbac: /kind:\s*Cluster(Role|RoleBinding)\b/.test(text) }).toEqual({ file, clusterRbac: false });
      expect({ file, exposed: /type:\s*(LoadBalancer|NodePort)\b/.test(text) }).toEqual({ file, exposed: false });
    }
  });

  test('every .Values reference exists, every value is read, lookups are by path, included templates are defined', () => {
    expect(missingValueRefs(PLATFORM_CHART_DIR)).toEqual([]);
    expect(unusedValues(PLATFORM_CHART_DIR)).toEqual([]);
    expect(dynamicValueLookups(PLATFORM_CHART_DIR)).toEqual([]);
    const { defined, used } = namedTemplates(PLATFORM_CHART_DIR);
    expect([...used].filter((n) => !defined.has(n))).toEqual([]);
  });

  test('misspelling any one reference fails the check', () => {
    const { mutants, missed } = misspellingMutants(PLATFORM_CHART_DIR);
    expect(missed).toEqual([]);
    expect(mutants).toBeGreaterThan(20);
  });
});

describe('charts/tenant-platform with helm', () => {
  const base = namespaceValues();

  test('complete values render, lint clean under --strict and pass the schemas', () => {
    const rendered = renderPlatform(base);
    expect(rendered.manifests.flatMap(schemaProblems)).toEqual([]);
    expect(helmLint(PLATFORM_CHART_DIR, [base], { namespace: 'tenancy-system' })).toMatchObject({ ok: true });
  });

  test('a secret sync without the optional refreshInterval renders its default, 1h', () => {
    const { refreshInterval, ...withoutInterval } = base.secretSyncs[0];
    expect(refreshInterval).toBe('1h');
    const externalSecret = named(renderPlatform({ ...base, secretSyncs: [withoutInterval] }), 'ExternalSecret', 'database-credentials');
    expect(externalSecret.spec.refreshInterval).toBe('1h');
    expect(named(renderPlatform({ ...base, secretSyncs: [{ ...withoutInterval, refreshInterval: '15m' }] }), 'ExternalSecret', 'database-credentials').spec.refreshInterval).toBe('15m');
  });

  test.each<[string, (v: Record<string, any>) => Record<string, any>, RegExp]>([
    ['no egress (the workload could not reach its database)', (v) => ({ ...v, egress: [] }), /egress is empty: the workload could not reach its database/],
    ['no quota', (v) => ({ ...v, quota: { hard: {} } }), /quota\.hard is required/],
    ['no namespace', (v) => ({ ...v, namespace: '' }), /namespace is required/],
    ['no tenant id', (v) => ({ ...v, tenant: { ...v.tenant, id: '' } }), /tenant\.id is required/],
    ['no workload ServiceAccount', (v) => ({ ...v, workload: { serviceAccount: '' } }), /workload\.serviceAccount is required/],
    ['a secret sync without its key', (v) => ({ ...v, secretSyncs: [{ ...v.secretSyncs[0], key: undefined }] }), /secretSyncs\.0: key is required/],
    ['PgBouncer without its configuration', (v) => ({ ...v, pgbouncer: { ...v.pgbouncer, enabled: true, image: 'pgbouncer:1.23' } }), /pgbouncer\.ini is required/],
    ['an egress port that is not a port', (v) => ({ ...v, egress: [{ cidr: '10.0.32.0/20', ports: [0] }] }), /egress\.0\.ports\.0: Must be greater than or equal to 1/],
    ['an egress item with a misspelt key', (v) => ({ ...v, egress: [{ cidr: '10.0.32.0/20', port: [5432] }] }), /egress\.0: Additional property port is not allowed/],
    ['a Pod Security level that does not exist', (v) => ({ ...v, podSecurity: { ...v.podSecurity, enforce: 'restriced' } }), /podSecurity\.enforce: podSecurity\.enforce must be one of the following/],
  ])('refuses %s', (_name, change, message) => {
    expect(() => renderPlatform(change(base))).toThrow(HelmError);
    expect(() => renderPlatform(change(base))).toThrow(message);
  });

  test('the egress policy lists the configured destinations, in order, each with its TCP ports', () => {
    const egress = [{ cidr: '10.0.32.0/20', ports: [5432] }, { cidr: '198.51.100.0/24', ports: [636, 443] }];
    const policy = named(renderPlatform({ ...base, egress }), 'NetworkPolicy', 'allow-listed-egress');
    expect(policy.spec.egress).toEqual([
      { to: [{ ipBlock: { cidr: '10.0.32.0/20' } }], ports: [{ port: 5432, protocol: 'TCP' }] },
      { to: [{ ipBlock: { cidr: '198.51.100.0/24' } }], ports: [{ port: 636, protocol: 'TCP' }, { port: 443, protocol: 'TCP' }] },
    ]);
  });

  test('values.schema.json describes exactly the values of values.yaml (free-form mappings and Kubernetes types aside)', () => {
    const { owned, open } = schemaPaths(SCHEMA);
    const inValues = valuePathsOf(loadChartValues(PLATFORM_CHART_DIR)).filter((p) => !open.some((o) => p.startsWith(`${o}.`)));
    expect([...owned].sort()).toEqual(inValues.sort());
    expect(open.sort()).toEqual(['dns.podLabels', 'limits.default', 'limits.defaultRequest', 'limits.max', 'pgbouncer.resources.limits', 'pgbouncer.resources.requests', 'placement.affinity', 'postApplyJob.resources.limits', 'postApplyJob.resources.requests', 'quota.hard']);
  });

  test('misspelling any one key the chart owns fails helm template', () => {
    const mutants = misspeltKeyMutants(SCHEMA, loadChartValues(PLATFORM_CHART_DIR));
    expect(mutants.length).toBeGreaterThan(50);
    const accepted = mutants.filter(({ values }) => {
      try {
        renderPlatform(merge(base, values));
        return true;
      } catch (e) {
        return !(e instanceof HelmError && /Additional property \S+x is not allowed/.test(e.stderr));
      }
    });
    expect(accepted.map((m) => m.path)).toEqual([]);
  });
});

/** `over` merged into `base` (mappings merge, everything else replaces), as Helm merges values layers. */
function merge(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object' && !Array.isArray(base[k]) ? merge(base[k], v) : v;
  }
  return out;
}
