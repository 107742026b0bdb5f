import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { K8S_LABELS } from '../../lib/kubernetes/tenant-namespace';
import { WorkloadValuesSchema } from '../../lib/registry/workload-values';
import { TENANT_APP_CHART, HelmError, helmLint, helmTemplate, onlyManifest } from '../support/helm';
import { schemaProblems } from '../support/kubernetes-schema';
import {
  CHART_DIR, CONTRACT_PATHS, assertPathsExist, dynamicValueLookups, loadChartValues, loadChartYaml, loadTemplates,
  missingValueRefs, misspellingMutants, namedTemplates, unusedValues, valuePathsOf,
} from './chart-values';
import { restrictedViolations } from './pod-security';
import { misspeltKeyMutants, schemaPaths, type JsonSchema } from './values-schema';

// charts/tenant-app, rendered by real Helm (test/support/helm.ts) with test values; what it renders
// for each sample tenant's synthesized values is in sample-tenants.test.ts.

const FIXTURE = join(__dirname, 'fixtures', 'misspelt-chart');
const TENANT_ID = '2076941a-0207-46ac-9fc3-25d79442d9ff';
/** The least a release needs: the required values. */
const MINIMAL = {
  tenant: { id: TENANT_ID, slug: 'acme', plan: 'pro', model: 'bridge' },
  image: { repository: 'registry.example.com/tenant-app' },
};
const SCHEMA = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as JsonSchema;
/** `helm template` of the chart with MINIMAL, then `values` over it (Helm merges them). */
const render = (values: Record<string, unknown> = {}, releaseName = 'tenant-app') =>
  helmTemplate(TENANT_APP_CHART, [MINIMAL, values], { releaseName, namespace: 'tenant-acme' });
const podSpecOf = (deployment: Record<string, any>) => deployment.spec.template.spec;
const containerOf = (deployment: Record<string, any>) => podSpecOf(deployment).containers[0];
const envOf = (deployment: Record<string, any>): Record<string, any> =>
  Object.fromEntries(containerOf(deployment).env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe('chart files', () => {
  test('Chart.yaml: apiVersion v2, tenant-app, application, a semver version and an appVersion', () => {
    const chart = loadChartYaml();
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'tenant-app', type: 'application', version: '0.2.0' });
    // semver.org's regular expression
    expect(chart.version).toMatch(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/);
    expect(typeof chart.appVersion).toBe('string');
    expect(chart.appVersion).not.toBe('');
  });

  test('values.yaml parses as one mapping without duplicate keys', () => {
    expect(Object.keys(loadChartValues()).length).toBeGreaterThan(10);
  });

  test('every template is present, and no ServiceAccount template (the namespace construct owns it)', () => {
    for (const f of ['_helpers.tpl', 'deployment.yaml', 'service.yaml', 'ingress.yaml', 'hpa.yaml', 'pdb.yaml', 'NOTES.txt']) {
      expect(existsSync(join(CHART_DIR, 'templates', f))).toBe(true);
    }
    for (const [file, text] of loadTemplates()) {
      expect({ file, serviceAccount: /kind:\s*ServiceAccount\b/.test(text) }).toEqual({ file, serviceAccount: false });
    }
  });
});

describe('values contract', () => {
  test('every path the construct passes exists in values.yaml', () => {
    const paths = valuePathsOf(loadChartValues());
    expect(CONTRACT_PATHS.filter((p) => !paths.includes(p))).toEqual([]);
  });

  test('defaults are safe: nothing exposed, no credentials, no token, one replica', () => {
    expect(loadChartValues()).toMatchObject({
      tenant: { id: '', slug: '', plan: '', model: '' },
      image: { repository: '', tag: '', pullPolicy: 'IfNotPresent' },
      replicaCount: 1,
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      service: { port: 80 },
      ingress: { enabled: false, className: '', host: '', tlsSecretName: '' },
      autoscaling: { enabled: false, minReplicas: 1, maxReplicas: 3, targetCPUUtilizationPercentage: 80 },
      podDisruptionBudget: { enabled: false, minAvailable: 1 },
      database: { host: '', port: 5432, name: '', sslmode: 'require', schema: '', credentialsSecret: '', tenantSetting: '' },
      serviceAccount: { name: '', automountToken: false },
      nodeSelector: {},
      tolerations: [],
      affinity: {},
      extraEnv: [],
      probes: { path: '/healthz' },
    });
  });
});

describe('static check of .Values references (Helm renders a missing reference as nothing, even with lint --strict)', () => {
  test('every .Values reference in the templates exists in values.yaml', () => {
    expect(missingValueRefs()).toEqual([]);
  });

  test('the templates read values only by path, so the check sees every read', () => {
    expect(dynamicValueLookups()).toEqual([]);
  });

  test('every value in values.yaml is read by a template', () => {
    expect(unusedValues()).toEqual([]);
  });

  test('every included template is defined', () => {
    const { defined, used } = namedTemplates();
    expect([...used].filter((n) => !defined.has(n))).toEqual([]);
  });

  test('the fixture with misspelt references fails the check, at the right places', () => {
    expect(missingValueRefs(FIXTURE)).toEqual([
      { file: '_helpers.tpl', line: 3, path: 'ingress.hots' },
      { file: 'configmap.yaml', line: 6, path: 'image.reposiory' },
    ]);
  });

  test('misspelling any one reference of the real chart fails the check', () => {
    const { mutants, missed } = misspellingMutants();
    expect(missed).toEqual([]);
    expect(mutants).toBeGreaterThan(40);
  });

  test('which Helm itself does not catch: the fixture lints clean and renders the misspelt references as nothing', () => {
    expect(helmLint(FIXTURE, [])).toMatchObject({ ok: true });
    expect(onlyManifest(helmTemplate(FIXTURE, []), 'ConfigMap').data).toEqual({ image: ':1.0.0', host: '', port: '5432' });
  });
});

describe('values.schema.json: misspelt or unknown values fail helm template and helm lint', () => {
  test('the schema describes the values of values.yaml (the free-form mappings and Kubernetes types aside), and only optional ones besides', () => {
    const { owned, open } = schemaPaths(SCHEMA);
    const inValues = valuePathsOf(loadChartValues()).filter((p) => !open.some((o) => p.startsWith(`${o}.`)));
    expect(inValues.filter((p) => !owned.has(p))).toEqual([]);
    // Read through toYaml of the probe's mapping; no default.
    expect([...owned].filter((p) => !inValues.includes(p))).toEqual(['probes.readiness.successThreshold', 'probes.liveness.successThreshold']);
    expect(open.sort()).toEqual(['affinity', 'ingress.annotations', 'nodeSelector', 'podAnnotations', 'podLabels', 'podSecurityContext', 'resources.limits', 'resources.requests', 'securityContext']);
  });

  test('every value the registry lets a tenant set (lib/registry/workload-values.ts) is in the schema', () => {
    const allowed: string[] = [];
    const walk = (zod: any, prefix: string[]) => {
      while (zod?.def?.type === 'optional') zod = zod.unwrap();
      if (!zod?.shape) return;
      for (const [key, child] of Object.entries(zod.shape)) {
        allowed.push([...prefix, key].join('.'));
        walk(child, [...prefix, key]);
      }
    };
    walk(WorkloadValuesSchema, []);
    expect(allowed.length).toBeGreaterThan(30);
    const { owned, open } = schemaPaths(SCHEMA);
    expect(allowed.filter((p) => !owned.has(p) && !open.some((o) => p.startsWith(`${o}.`)))).toEqual([]);
  });

  test('an unknown key is refused, named with its place, by helm template and by helm lint --strict', () => {
    const misspelt = { tenant: { slgu: 'acme' }, databse: { host: 'h' }, ingress: { tls: { secretName: 'x' } } };
    let error: unknown;
    try {
      render(misspelt);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HelmError);
    expect((error as HelmError).stderr).toContain('values don\'t meet the specifications of the schema');
    for (const problem of ['(root): Additional property databse is not allowed', 'tenant: Additional property slgu is not allowed', 'ingress: Additional property tls is not allowed']) {
      expect((error as HelmError).stderr).toContain(problem);
    }
    const lint = helmLint(TENANT_APP_CHART, [MINIMAL, misspelt]);
    expect(lint.ok).toBe(false);
    expect(lint.output).toContain('tenant: Additional property slgu is not allowed');
  });

  test('a wrong type is refused: a mapping for a scalar, a scalar for a list or a mapping, a string for a number', () => {
    expect(() => render({ image: { tag: { name: 'x' } } })).toThrow(/image\.tag: Invalid type\. Expected: string, given: object/);
    expect(() => render({ resources: '500m' })).toThrow(/resources: Invalid type\. Expected: object, given: string/);
    expect(() => render({ tolerations: { key: 'x' } })).toThrow(/tolerations: Invalid type\. Expected: array, given: object/);
    expect(() => render({ extraEnv: 'A=b' })).toThrow(/extraEnv: Invalid type\. Expected: array, given: string/);
    expect(() => render({ database: { port: '5432' } })).toThrow(/database\.port: Invalid type\. Expected: integer, given: string/);
  });

  test('keys under the free-form mappings are accepted; null deletes a default and is accepted', () => {
    const rendered = render({ nodeSelector: { 'kubernetes.io/os': 'linux' }, podAnnotations: { a: 'b' }, ingress: { className: null } });
    expect(podSpecOf(onlyManifest(rendered, 'Deployment')).nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
  });

  test('misspelling any one key the chart owns fails helm template', () => {
    const mutants = misspeltKeyMutants(SCHEMA, loadChartValues());
    expect(mutants.length).toBeGreaterThan(50);
    const accepted = mutants.filter(({ values }) => {
      try {
        render(values);
        return true;
      } catch (e) {
        return !(e instanceof HelmError && /Additional property \S+x is not allowed/.test(e.stderr));
      }
    });
    expect(accepted.map((m) => m.path)).toEqual([]);
  });
});

describe('Pod Security Admission: restricted', () => {
  const values = loadChartValues() as Record<string, any>;

  test('the default pod securityContext', () => {
    const pod = values.podSecurityContext;
    expect(pod.runAsNonRoot).toBe(true);
    expect(pod.runAsUser).toBeGreaterThan(0);
    expect(pod.runAsGroup).toBeGreaterThan(0);
    expect(pod.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  });

  test('the default container securityContext', () => {
    const c = values.securityContext;
    expect(c.allowPrivilegeEscalation).toBe(false);
    expect(c.capabilities.drop).toEqual(['ALL']);
    expect(c.capabilities.add).toBeUndefined();
    expect(c.readOnlyRootFilesystem).toBe(true);
    expect(c.privileged).not.toBe(true);
    expect(c.runAsUser).not.toBe(0);
  });

  test('no template or default asks for host namespaces, host paths or privileged containers', () => {
    const texts = [...loadTemplates()].map(([file, text]) => [file, text] as const);
    texts.push(['values.yaml', readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')]);
    for (const [file, text] of texts) {
      expect({ file, found: text.match(/\b(?:hostNetwork|hostPID|hostIPC|hostPath|hostPort)\b|privileged:\s*true/g) }).toEqual({ file, found: null });
    }
  });

  test('the rendered Deployment passes the restricted profile, with a writable /tmp', () => {
    const deployment = onlyManifest(render(), 'Deployment');
    expect(restrictedViolations(podSpecOf(deployment))).toEqual([]);
    const container = containerOf(deployment);
    expect(container.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    expect(podSpecOf(deployment).volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }]);
    expect(podSpecOf(deployment)).toMatchObject({ automountServiceAccountToken: false, enableServiceLinks: false });
  });

  test('the checker is not vacuous: a privileged, root, host-network pod fails it', () => {
    const bad = {
      hostNetwork: true,
      securityContext: { runAsUser: 0 },
      volumes: [{ name: 'h', hostPath: { path: '/' } }],
      containers: [{ name: 'c', securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } }, ports: [{ hostPort: 80 }] }],
    };
    expect(restrictedViolations(bad)).toEqual(expect.arrayContaining([
      'hostNetwork is true',
      'volume h is a hostPath',
      'pod: runAsUser is 0',
      'container c: privileged is true',
      'container c: hostPort 80',
      'container c: allowPrivilegeEscalation must be false',
      'container c: runAsNonRoot must be true (on the pod or the container)',
      'container c: seccompProfile.type must be RuntimeDefault or Localhost (on the pod or the container)',
      'container c: capabilities.drop must include ALL',
      'container c: capability SYS_ADMIN may not be added',
    ]));
  });
});

describe('rendering', () => {
  test('defaults render a Deployment and a Service only, labelled like the namespace objects, valid by their schemas', () => {
    const rendered = render();
    expect(rendered.manifests.map((m) => m.kind).sort()).toEqual(['Deployment', 'Service']);
    expect(rendered.manifests.flatMap(schemaProblems)).toEqual([]);
    for (const m of rendered.manifests) {
      expect(m.metadata.labels).toMatchObject({
        [K8S_LABELS.tenantId]: TENANT_ID,
        [K8S_LABELS.tenantSlug]: 'acme',
        [K8S_LABELS.plan]: 'pro',
        [K8S_LABELS.model]: 'bridge',
        'app.kubernetes.io/name': 'tenant-app',
        'app.kubernetes.io/instance': 'tenant-app',
      });
    }
  });

  test('the Deployment: image, replicas, probes, ports, resources, service account', () => {
    const deployment = onlyManifest(render({ replicaCount: 3, image: { tag: '2.4.1' }, serviceAccount: { name: 'tenant-app' } }), 'Deployment');
    expect(deployment.spec.replicas).toBe(3);
    const container = containerOf(deployment);
    expect(container.image).toBe('registry.example.com/tenant-app:2.4.1');
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } });
    expect(podSpecOf(deployment).serviceAccountName).toBe('tenant-app');
    expect(podSpecOf(deployment).securityContext).toEqual(loadChartValues().podSecurityContext);
    expect(container.securityContext).toEqual(loadChartValues().securityContext);
    // Pod labels carry the selector.
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
  });

  test('the image tag defaults to the appVersion', () => {
    expect(containerOf(onlyManifest(render(), 'Deployment')).image).toBe(`registry.example.com/tenant-app:${loadChartYaml().appVersion}`);
  });

  test('the Service selects the pods and targets the named container port', () => {
    const rendered = render();
    const service = onlyManifest(rendered, 'Service');
    const deployment = onlyManifest(rendered, 'Deployment');
    expect(service.spec).toMatchObject({ type: 'ClusterIP', ports: [{ port: 80, targetPort: 'http', protocol: 'TCP', name: 'http' }] });
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  describe.each([
    {
      model: 'silo',
      database: { host: 'pgbouncer.tenant-acme.svc.cluster.local', port: 6432, name: 'tenant_acme', sslmode: 'disable', credentialsSecret: 'tenant-db-credentials' },
      env: { DATABASE_HOST: 'pgbouncer.tenant-acme.svc.cluster.local', DATABASE_PORT: '6432', DATABASE_NAME: 'tenant_acme', DATABASE_SSLMODE: 'disable', DATABASE_SCHEMA: '', DATABASE_TENANT_SETTING: '' },
    },
    {
      model: 'bridge',
      database: { host: 'tenancy-bridge.cluster-abc.us-east-1.rds.amazonaws.com', name: 'tenants', sslmode: 'verify-full', schema: 'tenant_acme', credentialsSecret: 'tenant-db-credentials' },
      env: { DATABASE_HOST: 'tenancy-bridge.cluster-abc.us-east-1.rds.amazonaws.com', DATABASE_PORT: '5432', DATABASE_NAME: 'tenants', DATABASE_SSLMODE: 'verify-full', DATABASE_SCHEMA: 'tenant_acme', DATABASE_TENANT_SETTING: '' },
    },
    {
      model: 'pool',
      database: { host: 'tenancy-pool.cluster-abc.us-east-1.rds.amazonaws.com', name: 'pool', schema: '', tenantSetting: 'app.tenant_id', credentialsSecret: 'pool-app-credentials' },
      env: { DATABASE_HOST: 'tenancy-pool.cluster-abc.us-east-1.rds.amazonaws.com', DATABASE_PORT: '5432', DATABASE_NAME: 'pool', DATABASE_SSLMODE: 'require', DATABASE_SCHEMA: '', DATABASE_TENANT_SETTING: 'app.tenant_id' },
    },
  ])('a $model tenant', ({ model, database, env }) => {
    const values = { tenant: { ...MINIMAL.tenant, model }, database };

    test('its values exist in the chart', () => {
      expect(() => assertPathsExist({ ...MINIMAL, ...values }, loadChartValues())).not.toThrow();
    });

    test('the container gets the tenant, the database and the credentials from the Secret', () => {
      const deployment = onlyManifest(render(values), 'Deployment');
      expect(envOf(deployment)).toEqual({
        TENANT_ID: TENANT_ID,
        TENANT_SLUG: 'acme',
        TENANT_PLAN: 'pro',
        TENANT_MODEL: model,
        ...env,
        DATABASE_USER: { secretKeyRef: { name: database.credentialsSecret, key: 'username' } },
        DATABASE_PASSWORD: { secretKeyRef: { name: database.credentialsSecret, key: 'password' } },
      });
      expect(restrictedViolations(podSpecOf(deployment))).toEqual([]);
    });
  });

  test('without a credentials Secret there are no credential variables; extraEnv comes first, so the platform\'s variables win any duplicate', () => {
    const env = envOf(onlyManifest(render({ extraEnv: [{ name: 'FEATURE_REPORTING', value: 'true' }] }), 'Deployment'));
    expect(env).not.toHaveProperty('DATABASE_USER');
    expect(env).not.toHaveProperty('DATABASE_PASSWORD');
    expect(env.FEATURE_REPORTING).toBe('true');
    expect(Object.keys(env)).toEqual([
      'FEATURE_REPORTING', 'TENANT_ID', 'TENANT_SLUG', 'TENANT_PLAN', 'TENANT_MODEL', 'DATABASE_HOST', 'DATABASE_PORT', 'DATABASE_NAME',
      'DATABASE_SSLMODE', 'DATABASE_SCHEMA', 'DATABASE_TENANT_SETTING',
    ]);
  });

  test('tenant.id, tenant.slug and image.repository are required', () => {
    const template = (values: object) => () => helmTemplate(TENANT_APP_CHART, [values], { namespace: 'tenant-acme' });
    expect(template({ ...MINIMAL, tenant: { slug: 'acme' } })).toThrow(/tenant\.id is required/);
    expect(template({ ...MINIMAL, tenant: { id: TENANT_ID } })).toThrow(/tenant\.slug is required/);
    expect(template({ tenant: MINIMAL.tenant })).toThrow(/image\.repository is required/);
    expect(template({ ...MINIMAL, tenant: { slug: 'acme' } })).toThrow(HelmError);
  });

  test('every optional object renders valid by its schema', () => {
    const rendered = render({
      ingress: { enabled: true, host: 'acme.saas.example.com', tlsSecretName: 'acme-tls' }, autoscaling: { enabled: true }, podDisruptionBudget: { enabled: true },
      database: { credentialsSecret: 'tenant-db-credentials' }, extraEnv: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
    });
    expect(rendered.manifests.map((m) => m.kind).sort()).toEqual(['Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'PodDisruptionBudget', 'Service']);
    expect(rendered.manifests.flatMap(schemaProblems)).toEqual([]);
  });

  test('the Ingress: the tenant host, the class, TLS when a secret is named, the Service as backend', () => {
    const rendered = render({ ingress: { enabled: true, className: 'nginx', host: 'acme.saas.example.com', tlsSecretName: 'acme-tls', extraHosts: ['portal.acme.example'] } });
    const ingress = onlyManifest(rendered, 'Ingress');
    const service = onlyManifest(rendered, 'Service');
    expect(ingress.apiVersion).toBe('networking.k8s.io/v1');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.tls).toEqual([{ hosts: ['acme.saas.example.com', 'portal.acme.example'], secretName: 'acme-tls' }]);
    expect(ingress.spec.rules.map((r: any) => r.host)).toEqual(['acme.saas.example.com', 'portal.acme.example']);
    for (const rule of ingress.spec.rules) {
      expect(rule.http.paths).toEqual([{ path: '/', pathType: 'Prefix', backend: { service: { name: service.metadata.name, port: { name: 'http' } } } }]);
    }
  });

  test('the Ingress without TLS or class, and not without a host', () => {
    const ingress = onlyManifest(render({ ingress: { enabled: true, host: 'acme.saas.example.com' } }), 'Ingress');
    expect(ingress.spec).not.toHaveProperty('tls');
    expect(ingress.spec).not.toHaveProperty('ingressClassName');
    expect(() => render({ ingress: { enabled: true } })).toThrow(/ingress\.host is required when ingress\.enabled/);
  });

  test('autoscaling: an autoscaling/v2 HPA on the Deployment, which then leaves replicas to it', () => {
    const rendered = render({ replicaCount: 4, autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70 } });
    const hpa = onlyManifest(rendered, 'HorizontalPodAutoscaler');
    const deployment = onlyManifest(rendered, 'Deployment');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
      minReplicas: 2,
      maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    });
    expect(deployment.spec).not.toHaveProperty('replicas');
  });

  test('a policy/v1 PodDisruptionBudget over the Deployment pods when enabled', () => {
    const rendered = render({ replicaCount: 3, podDisruptionBudget: { enabled: true, minAvailable: 2 } });
    const pdb = onlyManifest(rendered, 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec).toEqual({ minAvailable: 2, selector: { matchLabels: onlyManifest(rendered, 'Deployment').spec.selector.matchLabels } });
    expect(onlyManifest(render({ podDisruptionBudget: { enabled: true, minAvailable: '50%' } }), 'PodDisruptionBudget').spec.minAvailable).toBe('50%');
  });

  test('dedicated nodes: nodeSelector, tolerations and affinity pass through', () => {
    const placement = {
      nodeSelector: { 'tenancy.io/dedicated': 'payflow' },
      tolerations: [{ key: 'tenancy.io/dedicated', operator: 'Equal', value: 'payflow', effect: 'NoSchedule' }],
      affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'tenant-app' } } } }] } },
    };
    expect(() => assertPathsExist(placement, loadChartValues())).not.toThrow();
    const pod = podSpecOf(onlyManifest(render(placement), 'Deployment'));
    expect(pod).toMatchObject(placement);
  });

  test('the token is mounted only when asked for', () => {
    expect(podSpecOf(onlyManifest(render({ serviceAccount: { automountToken: true } }), 'Deployment')).automountServiceAccountToken).toBe(true);
    // null deletes the default; the template then reads nothing, and the pod still gets false.
    expect(podSpecOf(onlyManifest(render({ serviceAccount: { automountToken: null } }), 'Deployment')).automountServiceAccountToken).toBe(false);
  });

  test('names: the release name, unless it lacks the chart name; fullnameOverride wins', () => {
    const name = (releaseName: string, values: Record<string, unknown> = {}) => onlyManifest(render(values, releaseName), 'Deployment').metadata.name;
    expect(name('tenant-app')).toBe('tenant-app');
    expect(name('acme')).toBe('acme-tenant-app');
    expect(name('acme', { fullnameOverride: 'web' })).toBe('web');
  });
});
