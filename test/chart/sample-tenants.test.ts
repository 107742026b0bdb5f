import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing } from 'cdktf';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { terraformLiteral } from '../../lib/terraform-literal';
import { TenantStack } from '../../stacks/tenant-stack';
import {
  DEFAULT_KUBE_VERSION, HelmError, TENANT_APP_CHART, TENANT_PLATFORM_CHART, helmBinary, helmLint, helmTemplate, named, onlyManifest,
  releaseOf, releaseValueLayers, renderRelease, terraformTemplateText,
} from '../support/helm';
import { schemaProblems } from '../support/kubernetes-schema';
import { loadSampleRegistry } from '../support/sample-registry';
import { offlineCliConfig } from '../support/terraform';

// Both charts rendered by real Helm (v3.17.1, test/support/helm.ts) for every sample tenant, with
// the values of its synthesized stack; every object checked against its OpenAPI schema.

const registry = loadSampleRegistry();
const platform = { ...registry.platform, kubernetes: { ...registry.platform.kubernetes, enabled: true } };
const live = registry.tenants.filter((t) => t.status !== 'offboarded');
const CHARTS = ['tenant-app', 'tenant-platform'] as const;
const chartDir = (chart: (typeof CHARTS)[number]) => (chart === 'tenant-app' ? TENANT_APP_CHART : TENANT_PLATFORM_CHART);

const synth = (t: Tenant): Record<string, any> => JSON.parse(Testing.synth(new TenantStack(Testing.app(), { tenant: t, platform })));

test('the helm binary is v3.17.1', () => {
  expect(execFileSync(helmBinary(), ['version', '--short'], { encoding: 'utf8' }).trim()).toMatch(/^v3\.17\.1\+g[0-9a-f]+$/);
});

test('the sample registry has tenants of every model, and a PCI one', () => {
  expect(new Set(live.map((t) => t.model))).toEqual(new Set(['silo', 'bridge', 'pool']));
  expect(live.some((t) => t.compliance.pci)).toBe(true);
});

describe.each(live.map((t) => [t.slug, t] as const))('tenant %s', (_slug, t) => {
  const json = synth(t);

  test.each(CHARTS)('%s: helm template renders the release, and every object passes its schema', (chart) => {
    const rendered = renderRelease(json, chart);
    expect(rendered.manifests.length).toBeGreaterThan(0);
    expect(rendered.manifests.flatMap(schemaProblems)).toEqual([]);
    // Every object carries the tenant's identity.
    for (const m of rendered.manifests) expect(m.metadata.labels).toMatchObject({ 'tenancy.io/tenant-id': t.id, 'tenancy.io/tenant-slug': t.slug });
  });

  test.each(CHARTS)('%s: helm lint --strict passes with the release\'s values', (chart) => {
    const release = releaseOf(json, chart);
    const lint = helmLint(chartDir(chart), releaseValueLayers(release), { namespace: release.namespace });
    expect({ ok: lint.ok, output: lint.ok ? '' : lint.output }).toEqual({ ok: true, output: '' });
  });

  test('the isolation set: namespace, default deny and its four exceptions, quota, limits, RBAC, the credential sync (and PgBouncer for silo)', () => {
    const rendered = renderRelease(json, 'tenant-platform');
    const sync = t.model === 'silo' ? 'pgbouncer-auth' : 'database-credentials';
    const expected = [
      `Namespace/tenant-${t.slug}`,
      'NetworkPolicy/allow-dns', 'NetworkPolicy/allow-ingress-controller', 'NetworkPolicy/allow-listed-egress', 'NetworkPolicy/allow-same-namespace', 'NetworkPolicy/default-deny-all',
      'ResourceQuota/tenant-quota', 'LimitRange/tenant-limits',
      'ServiceAccount/tenant-app', 'Role/tenant-app', 'RoleBinding/tenant-app',
      `ServiceAccount/${sync}-reader`, `SecretStore/${sync}-store`, `ExternalSecret/${sync}`,
      ...(t.model === 'silo' ? ['ConfigMap/pgbouncer-config', 'Deployment/pgbouncer', 'Service/pgbouncer'] : []),
    ];
    expect(rendered.manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(expected.sort());
    for (const m of rendered.manifests.filter((x) => x.kind !== 'Namespace')) expect(`${m.kind}/${m.metadata.name}: ${m.metadata.namespace}`).toBe(`${m.kind}/${m.metadata.name}: tenant-${t.slug}`);
    // The workload: a Deployment and its Service in the tenant namespace, never a ServiceAccount of its own.
    const app = renderRelease(json, 'tenant-app');
    expect(app.manifests.map((m) => m.kind)).toEqual(expect.arrayContaining(['Deployment', 'Service']));
    expect(app.manifests.filter((m) => m.kind === 'ServiceAccount' || /^Cluster/.test(m.kind))).toEqual([]);
    for (const m of app.manifests) expect(m.metadata.namespace ?? `tenant-${t.slug}`).toBe(`tenant-${t.slug}`);
  });

  test.each(CHARTS)('%s: a cluster older than the chart\'s kubeVersion is refused', (chart) => {
    expect(() => renderRelease(json, chart, { kubeVersion: '1.24.9' })).toThrow(/chart requires kubeVersion: >=1\.25\.0-0 which is incompatible with Kubernetes v1\.24\.9/);
    expect(renderRelease(json, chart, { kubeVersion: '1.25.0' }).manifests.length).toBeGreaterThan(0);
  });
});

test('the sample tenants render 140 objects in all', () => {
  const count = live.reduce((n, t) => { const json = synth(t); return n + CHARTS.reduce((k, c) => k + renderRelease(json, c).manifests.length, 0); }, 0);
  expect(count).toBe(140);
});

describe('the schema check is not vacuous', () => {
  test('a wrong type, a missing required field and an unknown kind are problems', () => {
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { selector: {}, replicas: '3', template: { spec: { containers: [{ image: 'x' }] } } } };
    expect(schemaProblems(deployment)).toEqual([expect.stringMatching(/^Deployment\/d: .*replicas must be integer.*containers\/0 must have required property name/)]);
    const externalSecret = { apiVersion: 'external-secrets.io/v1beta1', kind: 'ExternalSecret', metadata: { name: 'e' }, spec: { refreshInterval: 60, secretStoreRef: {} } };
    expect(schemaProblems(externalSecret)).toEqual([expect.stringMatching(/refreshInterval must be string.*secretStoreRef must have required property name/)]);
    expect(schemaProblems({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(['Widget/w: no schema for example.com/v1 Widget']);
    expect(schemaProblems({ apiVersion: 'v1', kind: 'Servce', metadata: { name: 's' } })).toEqual(['Servce/s: no schema for v1 Servce']);
  });
});

describe('values reach Helm as Terraform passes them', () => {
  const TEXTS = ['${data.aws_eks_cluster_auth.eks-auth.token}', '%{ if true }x%{ endif }', '$${already-escaped}', '%%{x}', '$$${three}', '${TfToken[TOKEN.1]}', '#{TfToken[TOKEN.2]}', 'x-8.109562212591421e+298', '${', 'plain'];

  test.each(TEXTS)('terraformTemplateText inverts terraformLiteral: %s', (text) => {
    expect(terraformTemplateText(terraformLiteral(text))).toBe(text);
  });

  test('a tenant\'s value holding Terraform template syntax renders as its exact text', () => {
    const t = live.find((x) => x.model === 'bridge')!;
    const value = TEXTS.join(' ');
    const json = synth({ ...t, workload: { ...t.workload, values: { ...t.workload.values, extraEnv: [{ name: 'GREETING', value }] } } });
    const env = onlyManifest(renderRelease(json, 'tenant-app'), 'Deployment').spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'GREETING')?.value).toBe(value);
  });

  test('for every layer without a reference of the platform\'s, the text given to Helm is what terraform itself evaluates', () => {
    const withSyntax = { ...live[0], workload: { ...live[0].workload, values: { extraEnv: [{ name: 'GREETING', value: TEXTS.join(' ') }] } } };
    // The plan and tenant layers of tenant-app (the third, the platform's, holds references known only at apply).
    const layers = [...live, withSyntax].flatMap((t) => (releaseOf(synth(t), 'tenant-app').values as string[]).slice(0, 2));
    expect(evaluateWithTerraform(layers)).toEqual(layers.map(terraformTemplateText));
  });

  test('the platform\'s own interpolations (known at apply) stay references', () => {
    const t = live.find((x) => x.model === 'silo')!;
    const reader = named(renderRelease(synth(t), 'tenant-platform'), 'ServiceAccount', 'pgbouncer-auth-reader');
    expect(reader.metadata.annotations['eks.amazonaws.com/role-arn']).toMatch(/^\$\{aws_iam_role\.[^}]+\.arn\}$/);
  });
});

/** What terraform makes of strings of JSON syntax: each a local of a configuration without providers, printed by `terraform console`. */
function evaluateWithTerraform(strings: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-helm-values-'));
  try {
    writeFileSync(join(dir, 'main.tf.json'), JSON.stringify({ locals: { strings } }));
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TF_|AWS_)/.test(k)));
    const run = spawnSync('terraform', ['console', '-no-color'], {
      cwd: dir, input: 'base64encode(jsonencode(local.strings))\n', encoding: 'utf8', timeout: 120_000,
      env: { ...env, TF_CLI_CONFIG_FILE: offlineCliConfig(dir), CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0' },
    });
    const last = run.stdout.trim().split('\n').pop() ?? '';
    if (run.status !== 0 || run.stderr.trim() !== '' || !/^"[A-Za-z0-9+/=]*"$/.test(last)) throw new Error(`terraform console: ${run.stderr}${run.stdout}`);
    return JSON.parse(Buffer.from(JSON.parse(last), 'base64').toString('utf8')) as string[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('helm errors name the chart and say why', () => {
  expect(() => helmTemplate(TENANT_APP_CHART, [{ tenant: { id: 'x' } }])).toThrow(HelmError);
  expect(() => helmTemplate(TENANT_APP_CHART, [{ tenant: { id: 'x' } }])).toThrow(/tenant\.slug is required/);
  expect(DEFAULT_KUBE_VERSION).toBe('1.30.0');
});
