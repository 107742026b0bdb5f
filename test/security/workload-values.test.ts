// Reproduces: a tenant's own workload values (tenants/<slug>.yaml workload.values or
// tenants/<slug>.values.yaml) claim what is not theirs: another tenant's or a wildcard ingress
// host, the ingress class, nginx snippet/auth annotations that run in the shared controller, an
// image from any registry or an unpinned one, TENANT_ID/DATABASE_* shadowed through extraEnv (or
// envFrom, or a probe that makes the kubelet fetch any address). Fails on 0f20909 (main before
// the fix): the registry accepted every one of these values (only eight top-level keys such as
// `tenant` were refused; that case stays here as a guard), the chart put extraEnv after the
// platform's variables, so a duplicate TENANT_ID won, dropped an image digest, and a suspended
// tenant's own autoscaling values started it again.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { synthesize } from '../../lib/app/synthesize';
import { loadRegistry } from '../../lib/registry/load-registry';
import { RegistryError } from '../../lib/registry/registry-error';
import { Testing } from 'cdktf';
import { TenantStack } from '../../stacks/tenant-stack';
import { TENANT_APP_CHART, helmTemplate, onlyManifest, renderRelease } from '../support/helm';
import { expectAccepted, expectRejected, makeProject, q, tenantYaml, otherTenantYaml, BETA_ID, type ExpectedProblem } from '../registry/helpers';

/** A platform.yaml of the test's own (never the repository's), with the allowlists this test uses. */
const platformYaml = (kubernetes = ''): string => `name: tenancy
baseDomain: saas.example.com
controlPlaneRegion: us-east-1
regions:
  us-east-1:
    vpcId: vpc-0a1b2c3d4e5f60718
    privateSubnetIds: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]
    workloadSecurityGroupId: sg-0a1b2c3d4e5f60aa1
    clusterName: tenancy-us-east-1
    databaseSubnetCidrs: [10.10.32.0/20]
    oidcProviderArn: arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9
${kubernetes}`;
const PLATFORM = platformYaml();
const PLATFORM_WITH_ALLOWLISTS = platformYaml(`kubernetes:
  appImage: ghcr.io/cdktf-tenancy/tenant-app:0.1.0
  allowedImageRegistries: [registry.acme.example/apps]
  ingress:
    className: nginx-public
    allowedAnnotations: [nginx.ingress.kubernetes.io/proxy-body-size]
`);

/** acme (custom domain portal.acme.example) and beta, a second tenant whose host acme must not claim. */
const ACME_DOMAIN = 'domain:\n  subdomain: acme\n  custom: portal.acme.example\n';
const beta = otherTenantYaml('beta', BETA_ID);
/** acme's tenant file with `values` (YAML lines, indented by 4) under workload.values. */
const acmeWithValues = (values: string) => tenantYaml({}, `${ACME_DOMAIN}workload:\n  values:\n${values}`);

interface Attack {
  readonly name: string;
  /** Lines under workload.values, indented by 4. */
  readonly values: string;
  /** Path below workload.values and a message. */
  readonly path: string;
  readonly message: RegExp;
  /** The line the problem points at. */
  readonly at: RegExp;
  readonly platform?: string;
}

const attacks: Attack[] = [
  // Ingress hosts: only acme.saas.example.com and portal.acme.example.
  { name: "another tenant's host", values: '    ingress:\n      host: beta.saas.example.com\n', path: 'ingress.host', message: /not a host of this tenant.*acme\.saas\.example\.com, portal\.acme\.example/, at: /host: beta/ },
  { name: 'a wildcard host', values: "    ingress:\n      extraHosts: ['*.saas.example.com']\n", path: 'ingress.extraHosts[0]', message: /no wildcard/, at: /extraHosts/ },
  { name: 'a host nobody recorded for it', values: '    ingress:\n      extraHosts: [login.bank.example]\n', path: 'ingress.extraHosts[0]', message: /not a host of this tenant/, at: /extraHosts/ },
  // Ingress class and controller annotations come from the platform.
  { name: 'its own ingress class', values: '    ingress:\n      className: internal-admin\n', path: 'ingress.className', message: /set by the platform.*kubernetes\.ingress\.className/, at: /className/ },
  { name: 'its own TLS secret', values: '    ingress:\n      tlsSecretName: database-credentials\n', path: 'ingress.tlsSecretName', message: /set by the platform/, at: /tlsSecretName/ },
  { name: 'an nginx server-snippet', values: '    ingress:\n      annotations:\n        nginx.ingress.kubernetes.io/server-snippet: "location /x { proxy_pass http://169.254.169.254; }"\n', path: 'ingress.annotations.nginx.ingress.kubernetes.io/server-snippet', message: /runs in the shared ingress controller/, at: /server-snippet/ },
  { name: 'an nginx configuration-snippet', values: '    ingress:\n      annotations:\n        nginx.ingress.kubernetes.io/configuration-snippet: "more_set_headers X: y;"\n', path: 'ingress.annotations.nginx.ingress.kubernetes.io/configuration-snippet', message: /runs in the shared ingress controller/, at: /configuration-snippet/ },
  { name: 'an nginx auth-url', values: '    ingress:\n      annotations:\n        nginx.ingress.kubernetes.io/auth-url: http://169.254.169.254/latest/meta-data/\n', path: 'ingress.annotations.nginx.ingress.kubernetes.io/auth-url', message: /runs in the shared ingress controller|not in platform\.yaml kubernetes\.ingress\.allowedAnnotations/, at: /auth-url/ },
  { name: "a server-alias for another tenant's host", values: '    ingress:\n      annotations:\n        nginx.ingress.kubernetes.io/server-alias: beta.saas.example.com\n', path: 'ingress.annotations.nginx.ingress.kubernetes.io/server-alias', message: /runs in the shared ingress controller|allowedAnnotations/, at: /server-alias/ },
  { name: 'an annotation the platform did not allow', values: '    ingress:\n      annotations:\n        nginx.ingress.kubernetes.io/whitelist-source-range: 0.0.0.0/0\n', path: 'ingress.annotations.nginx.ingress.kubernetes.io/whitelist-source-range', message: /not in platform\.yaml kubernetes\.ingress\.allowedAnnotations/, at: /whitelist-source-range/ },
  // Images: only allowed registries (by default: the platform's own repository), pinned.
  { name: 'an image from any registry', values: '    image:\n      repository: docker.io/attacker/miner\n      tag: "1.0"\n', path: 'image.repository', message: /not in a registry platform\.yaml allows/, at: /repository:/ },
  { name: 'an image named like an allowed registry', values: '    image:\n      repository: ghcr.io/cdktf-tenancy/tenant-app.evil\n      tag: "1.0"\n', path: 'image.repository', message: /not in a registry platform\.yaml allows/, at: /repository:/ },
  { name: 'the latest tag', values: '    image:\n      tag: latest\n', path: 'image.tag', message: /must be pinned/, at: /tag: latest/ },
  { name: 'a repository without a tag', values: '    image:\n      repository: ghcr.io/cdktf-tenancy/tenant-app\n', path: 'image', message: /must be pinned/, at: /image:/ },
  { name: 'an init container', values: '    initContainers:\n      - name: x\n        image: alpine\n', path: 'initContainers', message: /not a value a tenant may set/, at: /initContainers/ },
  // Identity variables.
  { name: 'TENANT_ID through extraEnv', values: `    extraEnv:\n      - name: TENANT_ID\n        value: ${q(BETA_ID)}\n`, path: 'extraEnv[0].name', message: /set by the platform/, at: /name: TENANT_ID/ },
  { name: 'DATABASE_HOST through extraEnv', values: '    extraEnv:\n      - { name: DATABASE_HOST, value: beta.db.internal }\n', path: 'extraEnv[0].name', message: /set by the platform/, at: /DATABASE_HOST/ },
  { name: 'a future platform variable (reserved prefix)', values: '    extraEnv:\n      - { name: TENANT_REGION, value: x }\n', path: 'extraEnv[0].name', message: /set by the platform/, at: /TENANT_REGION/ },
  { name: 'envFrom (a ConfigMap could hold TENANT_ID)', values: '    envFrom:\n      - configMapRef: { name: spoof }\n', path: 'envFrom', message: /not a value a tenant may set/, at: /envFrom/ },
  { name: 'an env entry with extra fields', values: '    extraEnv:\n      - { name: A, value: b, valueFrom: { fieldRef: { fieldPath: metadata.name } } }\n', path: 'extraEnv[0]', message: /either value or valueFrom/, at: /name: A/ },
  { name: 'the tenant identity', values: `    tenant:\n      id: ${q(BETA_ID)}\n`, path: 'tenant', message: /set by the platform/, at: /tenant:/ },
  // Other values paths into the pod spec.
  { name: 'a probe that makes the kubelet fetch the metadata service', values: '    probes:\n      liveness:\n        httpGet: { host: 169.254.169.254, path: /latest/meta-data/, port: 80 }\n', path: 'probes.liveness.httpGet', message: /not a value a tenant may set/, at: /httpGet/ },
  { name: 'a platform label on the pods', values: `    podLabels:\n      tenancy.io/tenant-id: ${q(BETA_ID)}\n`, path: 'podLabels.tenancy.io/tenant-id', message: /without a prefix/, at: /tenancy\.io\/tenant-id/ },
  { name: 'a controller annotation on the pods', values: '    podAnnotations:\n      k8s.v1.cni.cncf.io/networks: host-net\n', path: 'podAnnotations.k8s.v1.cni.cncf.io/networks', message: /without a prefix/, at: /cni/ },
  { name: 'image pull secrets', values: '    imagePullSecrets: [{ name: database-credentials }]\n', path: 'imagePullSecrets', message: /not a value a tenant may set/, at: /imagePullSecrets/ },
];

describe('a tenant cannot set, in tenants/<slug>.yaml workload.values, …', () => {
  test.each(attacks.map((a) => [a.name, a] as const))('%s', (_name, a) => {
    const text = acmeWithValues(a.values);
    expectRejected(
      { platform: a.platform ?? PLATFORM_WITH_ALLOWLISTS, tenants: { 'acme.yaml': text, 'beta.yaml': beta } },
      [{ file: 'tenants/acme.yaml', path: `workload.values.${a.path}`, message: a.message, at: a.at }],
      false,
    );
  });
});

describe('… nor in tenants/<slug>.values.yaml, with file:line in that file', () => {
  /** The same values, one level up (the values file is the values mapping itself). */
  const unindent = (values: string) => values.replace(/^ {4}/gm, '');
  test.each(attacks.map((a) => [a.name, a] as const))('%s', (_name, a) => {
    const text = unindent(a.values);
    expectRejected(
      { platform: a.platform ?? PLATFORM_WITH_ALLOWLISTS, tenants: { 'acme.yaml': tenantYaml({}, ACME_DOMAIN), 'acme.values.yaml': text, 'beta.yaml': beta } },
      [{ file: 'tenants/acme.values.yaml', path: a.path, message: a.message, at: a.at }],
      false,
    );
  });
});

describe('what a tenant may set', () => {
  test('its own hosts, allowed annotations, a pinned image from an allowed registry, its own variables and sizing', () => {
    const registry = expectAccepted({
      platform: PLATFORM_WITH_ALLOWLISTS,
      tenants: {
        'beta.yaml': beta,
        'acme.yaml': acmeWithValues(
          [
            '    ingress:',
            '      host: portal.acme.example',
            '      extraHosts: [acme.saas.example.com]',
            '      annotations: { nginx.ingress.kubernetes.io/proxy-body-size: 16m }',
            '    image: { repository: registry.acme.example/apps/portal, tag: "2.3.1" }',
            '    extraEnv:',
            '      - { name: REPORTING_BACKEND, value: warehouse }',
            '      - name: API_KEY',
            '        valueFrom: { secretKeyRef: { name: partner-api, key: token } }',
            '    podAnnotations: { team: analytics }',
            '    podLabels: { team: analytics }',
            '    resources: { requests: { cpu: 200m, memory: 256Mi }, limits: { cpu: "1", memory: 512Mi } }',
            '    autoscaling: { maxReplicas: 9, targetCPUUtilizationPercentage: 60 }',
            '    probes: { path: /ready, liveness: { periodSeconds: 30 } }',
            '',
          ].join('\n'),
        ),
        'acme.values.yaml': 'image:\n  digest: sha256:' + 'a'.repeat(64) + '\n',
      },
    });
    const acme = registry.tenants.find((t) => t.slug === 'acme')!;
    expect(acme.workload.values).toMatchObject({ ingress: { host: 'portal.acme.example' }, image: { repository: 'registry.acme.example/apps/portal', tag: '2.3.1', digest: `sha256:${'a'.repeat(64)}` } });
  });

  test('a pool tenant runs only the platform\'s image, even from an allowed registry (it holds the shared pool role)', () => {
    expectRejected(
      { platform: PLATFORM_WITH_ALLOWLISTS, tenants: { 'acme.yaml': tenantYaml({ model: 'pool', plan: 'starter' }, 'workload:\n  values:\n    image: { repository: registry.acme.example/apps/portal, tag: "2.3.1" }\n') } },
      [{ file: 'tenants/acme.yaml', path: 'workload.values.image.repository', message: /pool tenants run the platform's image/, at: /image:/ }],
    );
  });
});

describe('platform.yaml cannot hand tenants the controller', () => {
  test.each(['nginx.ingress.kubernetes.io/server-snippet', 'nginx.ingress.kubernetes.io/auth-url', 'nginx.ingress.kubernetes.io/configuration-snippet'])('allowedAnnotations may not list %s', (key) => {
    const platform = platformYaml(`kubernetes:\n  ingress:\n    allowedAnnotations: [${key}]\n`);
    expectRejected({ platform, tenants: { 'acme.yaml': tenantYaml() } }, [{ file: 'platform.yaml', path: 'kubernetes.ingress.allowedAnnotations[0]', message: /runs in the shared ingress controller/, at: /allowedAnnotations/ }]);
  });
});

describe('the chart and the construct', () => {
  test('a duplicate of a platform variable in extraEnv loses: Kubernetes takes the last duplicate, and the platform\'s come last', () => {
    const rendered = helmTemplate(
      TENANT_APP_CHART,
      [{ tenant: { id: '2076941a-0207-46ac-9fc3-25d79442d9ff', slug: 'acme', plan: 'pro', model: 'pool' }, image: { repository: 'ghcr.io/x/app', tag: '1.0.0' }, extraEnv: [{ name: 'TENANT_ID', value: BETA_ID }] }],
      { releaseName: 'tenant-app', namespace: 'tenant-acme' },
    );
    const env = onlyManifest(rendered, 'Deployment').spec.template.spec.containers[0].env as { name: string; value?: string }[];
    const lastTenantId = env.filter((e) => e.name === 'TENANT_ID').at(-1);
    expect(lastTenantId?.value).toBe('2076941a-0207-46ac-9fc3-25d79442d9ff');
  });

  test('a suspended tenant cannot keep running through replicaCount or autoscaling in its values', () => {
    const project = makeProject({
      platform: PLATFORM,
      tenants: { 'acme.yaml': tenantYaml({ status: 'suspended' }, 'workload:\n  values:\n    replicaCount: 3\n    autoscaling: { enabled: true, minReplicas: 2 }\n') },
    });
    try {
      const registry = loadRegistry({ root: project.root });
      const stack = new TenantStack(Testing.app(), { tenant: registry.tenants[0], platform: registry.platform });
      const json = JSON.parse(Testing.synth(stack)) as Record<string, any>;
      const rendered = renderRelease(json, 'tenant-app');
      expect(onlyManifest(rendered, 'Deployment').spec.replicas).toBe(0);
      expect(rendered.manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler')).toEqual([]);
    } finally {
      project.remove();
    }
  });

  test('the image digest is rendered (a pin by digest is not dropped)', () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const rendered = helmTemplate(TENANT_APP_CHART, [{ tenant: { id: '2076941a-0207-46ac-9fc3-25d79442d9ff', slug: 'acme' }, image: { repository: 'ghcr.io/x/app', digest } }], { releaseName: 'tenant-app', namespace: 'tenant-acme' });
    expect(onlyManifest(rendered, 'Deployment').spec.template.spec.containers[0].image).toBe(`ghcr.io/x/app@${digest}`);
  });

  test('values from another registry source that skipped the checks are refused by the construct, and nothing is written', () => {
    const project = makeProject({ platform: PLATFORM, tenants: { 'acme.yaml': tenantYaml() } });
    try {
      const registry = loadRegistry({ root: project.root });
      const forged = { ...registry, tenants: registry.tenants.map((t) => ({ ...t, workload: { ...t.workload, values: { ingress: { host: 'beta.saas.example.com' } } } })) };
      expect(() => synthesize({ root: project.root, registry: forged })).toThrow(/TenantAppRelease acme: .*ingress\.host.*not a host of this tenant/);
      expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
      expect(readdirSync(project.root).filter((f) => f.includes('staging'))).toEqual([]);
    } finally {
      project.remove();
    }
  });

  test('synth refuses the registry and writes nothing', () => {
    const project = makeProject({ platform: PLATFORM, tenants: { 'acme.yaml': acmeWithValues('    ingress:\n      host: beta.saas.example.com\n'), 'beta.yaml': beta } });
    try {
      expect(() => synthesize({ root: project.root })).toThrow(RegistryError);
      expect(() => synthesize({ root: project.root })).toThrow(/tenants\/acme\.yaml:\d+:\d+: workload\.values\.ingress\.host: /);
      expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
      expect(readdirSync(project.root).filter((f) => f.includes('staging'))).toEqual([]);
    } finally {
      project.remove();
    }
  });
});
