// platform.yaml kubernetes.postApplyJob: each tenant's post-apply hooks as a Helm hook Job of its
// platform release, in the release namespace. Off (the default), nothing changes.
import { Testing, TerraformStack } from 'cdktf';
import { POST_APPLY_JOB_DEADLINE_SECONDS, POST_APPLY_RELEASE_TIMEOUT_SECONDS, TenantNamespace, type NamespacePostApplyJob } from '../../lib/kubernetes/tenant-namespace';
import { PostApplyJobSchema, type PlatformConfig } from '../../lib/registry/platform-schema';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { TenantStack } from '../../stacks/tenant-stack';
import { restrictedViolations } from '../chart/pod-security';
import { loadSampleRegistry } from '../support/sample-registry';
import { named, ofKind, platformRelease, renderPlatform, renderPlatformRelease } from './platform-release';

type Json = Record<string, any>;

const registry = loadSampleRegistry();
const live = registry.tenants.filter((t) => t.status !== 'offboarded');
const RELEASE_NS = registry.platform.kubernetes.releaseNamespace;
const IMAGE = 'ghcr.io/cdktf-tenancy/tenancy:0.2.0';
const withJob = (job: Record<string, unknown>): PlatformConfig => ({
  ...registry.platform,
  kubernetes: { ...registry.platform.kubernetes, enabled: true, postApplyJob: PostApplyJobSchema.parse(job) },
});
const off: PlatformConfig = { ...registry.platform, kubernetes: { ...registry.platform.kubernetes, enabled: true } };
const on = withJob({ image: IMAGE });

function synth(t: Tenant, platform: PlatformConfig): Json {
  return JSON.parse(Testing.synth(new TenantStack(Testing.app(), { tenant: t, platform }))) as Json;
}

/**
 * The outputs file with every Terraform reference written as the stack's own outputs hold it
 * before apply (the string "${<reference>}"), quoted or bare: then it parses as JSON and can be
 * compared with the stack's outputs.
 */
const referencesAsStrings = (text: string) => text.replace(/"?\$\{([^}]+)\}"?/g, (_m, ref: string) => JSON.stringify(`\${${ref}}`));

/** The stack's TerraformOutputs as an outputs file (`cdktf deploy --outputs-file`) holds them. */
const stackOutputs = (t: Tenant, json: Json) => ({ [`tenant-${t.slug}`]: Object.fromEntries(Object.entries(json.output).map(([k, o]: [string, any]) => [k, o.value])) });

const podOf = (job: Json): Json => job.spec.template.spec;

describe.each(live.map((t) => [t.slug, t.model, t] as const))('tenant %s (%s) with the post-apply Job', (_slug, _model, t) => {
  const json = synth(t, on);
  const rendered = renderPlatformRelease(json);
  const jobName = `tenant-${t.slug}-post-apply`;
  const job = named(rendered, 'Job', jobName);
  const pod = podOf(job);
  const container = pod.containers[0];

  test('a post-install/post-upgrade hook Job in the release namespace, bounded in time and retries', () => {
    expect(ofKind(rendered, 'Job')).toHaveLength(1);
    expect(job.metadata.namespace).toBe(RELEASE_NS);
    expect(job.metadata.annotations).toEqual({
      'helm.sh/hook': 'post-install,post-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    expect(job.spec).toMatchObject({ backoffLimit: 1, activeDeadlineSeconds: POST_APPLY_JOB_DEADLINE_SECONDS, ttlSecondsAfterFinished: 86400 });
    expect(pod.restartPolicy).toBe('Never');
    // Helm waits for a hook Job up to the release timeout: it must outlast the Job's deadline.
    const release = platformRelease(json);
    expect(release.timeout).toBe(POST_APPLY_RELEASE_TIMEOUT_SECONDS);
    expect(release.timeout).toBeGreaterThan(job.spec.activeDeadlineSeconds);
    expect(release.namespace).toBe(RELEASE_NS);
  });

  test('runs `tenancy post-apply` for this tenant on its outputs and the platform outputs', () => {
    expect(container.image).toBe(IMAGE);
    expect(container.command).toEqual(['tenancy', 'post-apply', '--tenant', t.slug, '--outputs', '/outputs/tenant.json', '--outputs', '/platform/outputs.json']);
    expect(container.args).toBeUndefined();
    expect(pod.serviceAccountName).toBe('tenancy-hooks');
    // No control-plane Secret configured: the hooks use the home region's control-plane outputs.
    expect(container.env.map((e: Json) => e.name)).not.toContain('TENANCY_CONTROL_PLANE_URL');
  });

  test('the mounted tenant outputs are JSON equal to the stack\'s TerraformOutputs, filed under its stack name', () => {
    const configMap = named(rendered, 'ConfigMap', `${jobName}-outputs`);
    expect(configMap.metadata.namespace).toBe(RELEASE_NS);
    const mounts = Object.fromEntries(container.volumeMounts.map((m: Json) => [m.name, m]));
    const volumes = Object.fromEntries(pod.volumes.map((v: Json) => [v.name, v]));
    expect(mounts.outputs).toEqual({ name: 'outputs', mountPath: '/outputs', readOnly: true });
    expect(volumes.outputs.configMap).toEqual({ name: configMap.metadata.name, items: [{ key: 'tenant.json', path: 'tenant.json' }] });
    const text = configMap.data['tenant.json'] as string;
    const parsed = JSON.parse(referencesAsStrings(text));
    expect(Object.keys(parsed)).toEqual([`tenant-${t.slug}`]);
    expect(Object.keys(parsed[`tenant-${t.slug}`]).sort()).toEqual(Object.keys(json.output).sort());
    expect(parsed).toEqual(stackOutputs(t, json));
    // Numbers stay numbers once Terraform has interpolated the reference.
    if (t.model === 'silo') expect(text).toMatch(/"db_port": \$\{aws_db_instance\.[^}]+\.port\},\n/);
    // Literal outputs need no Terraform: they are valid JSON already.
    expect(parsed[`tenant-${t.slug}`]).toMatchObject({ tenant_id: t.id, slug: t.slug, model: t.model, plan: t.plan, region: t.region, k8s_namespace: `tenant-${t.slug}` });
  });

  test('the platform outputs ConfigMap is mounted read-only, key outputs.json', () => {
    const mounts = Object.fromEntries(container.volumeMounts.map((m: Json) => [m.name, m]));
    const volumes = Object.fromEntries(pod.volumes.map((v: Json) => [v.name, v]));
    expect(mounts['platform-outputs']).toEqual({ name: 'platform-outputs', mountPath: '/platform', readOnly: true });
    expect(volumes['platform-outputs'].configMap).toEqual({ name: 'tenancy-platform-outputs', items: [{ key: 'outputs.json', path: 'outputs.json' }] });
    // The only writable path is a small /tmp.
    expect(mounts.tmp).toEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(volumes.tmp).toEqual({ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } });
    expect(pod.volumes.map((v: Json) => v.name).sort()).toEqual(['outputs', 'platform-outputs', 'tmp']);
  });

  test('a restricted pod: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, no API token, bounded resources', () => {
    expect(restrictedViolations(pod)).toEqual([]);
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    // IRSA still works: the EKS pod identity webhook adds its own projected token volume.
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } });
    expect((pod.tolerations ?? []).length > 0).toBe(t.compliance.pci);
  });

  test('the tenant namespace gets nothing of the hook: its objects are the same as without the Job, and none names the hook', () => {
    const without = renderPlatformRelease(synth(t, off));
    const inRelease = rendered.manifests.filter((m) => m.metadata.namespace === RELEASE_NS);
    expect(inRelease.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([`ConfigMap/${jobName}-outputs`, `Job/${jobName}`]);
    const rest = rendered.manifests.filter((m) => m.metadata.namespace !== RELEASE_NS);
    expect(rest).toEqual(without.manifests);
    expect(JSON.stringify(rest)).not.toMatch(/tenancy-hooks|post-apply|tenancy-platform-outputs/);
  });

  test('only the platform release changes: the workload release and every other resource are as without the Job', () => {
    const base = synth(t, off);
    const platformId = (j: Json) => Object.entries(j.resource.helm_release).find(([, r]: [string, any]) => r.name === `tenant-${t.slug}`)![0];
    expect(platformId(json)).toBe(platformId(base));
    const strip = (j: Json) => {
      const copy = JSON.parse(JSON.stringify(j));
      delete copy.resource.helm_release[platformId(j)];
      return copy;
    };
    // The workload release (and its depends_on on the platform release) is unchanged: it does not depend on the Job.
    expect(strip(json)).toEqual(strip(base));
    const [withValues, baseValues] = [json, base].map((j) => JSON.parse(platformRelease(j).values[0]));
    const { postApplyJob, ...rest } = withValues;
    expect(rest).toEqual(baseValues);
    expect(postApplyJob).toMatchObject({ enabled: true, image: IMAGE, serviceAccount: 'tenancy-hooks', platformOutputsConfigMap: 'tenancy-platform-outputs', controlPlaneSecret: '' });
    const { values: _a, timeout: _b, ...releaseRest } = platformRelease(json);
    const { values: _c, timeout: _d, ...baseReleaseRest } = platformRelease(base);
    expect(releaseRest).toEqual(baseReleaseRest);
  });
});

describe('without kubernetes.postApplyJob (the default)', () => {
  test.each(live.map((t) => [t.slug, t] as const))('%s: no Job, nothing in the release namespace, no postApplyJob value', (_slug, t) => {
    expect(registry.platform.kubernetes.postApplyJob).toBeUndefined();
    const json = synth(t, off);
    const rendered = renderPlatformRelease(json);
    expect(ofKind(rendered, 'Job')).toEqual([]);
    expect(rendered.manifests.filter((m) => m.metadata.namespace === RELEASE_NS)).toEqual([]);
    expect(Object.keys(JSON.parse(platformRelease(json).values[0]))).not.toContain('postApplyJob');
    expect(platformRelease(json).timeout).toBe(300);
    // An explicit undefined is the same as leaving it out.
    const explicit: PlatformConfig = { ...off, kubernetes: { ...off.kubernetes, postApplyJob: undefined } };
    expect(Testing.synth(new TenantStack(Testing.app(), { tenant: t, platform: explicit }))).toBe(Testing.synth(new TenantStack(Testing.app(), { tenant: t, platform: off })));
  });
});

describe('post-apply Job settings', () => {
  const t = live.find((x) => x.model === 'bridge')!;

  test('the control-plane URL comes from the configured Secret\'s url key', () => {
    const job = named(renderPlatformRelease(synth(t, withJob({ image: IMAGE, controlPlaneSecret: 'tenancy-control-plane' }))), 'Job', `tenant-${t.slug}-post-apply`);
    const env = podOf(job).containers[0].env;
    expect(env).toContainEqual({ name: 'TENANCY_CONTROL_PLANE_URL', valueFrom: { secretKeyRef: { name: 'tenancy-control-plane', key: 'url' } } });
  });

  test('the ServiceAccount, platform outputs ConfigMap and a digest-pinned image are taken as given', () => {
    const image = `registry.example.com:5000/platform/tenancy@sha256:${'0'.repeat(64)}`;
    const rendered = renderPlatformRelease(synth(t, withJob({ image, serviceAccount: 'hooks', platformOutputsConfigMap: 'platform-outputs' })));
    const pod = podOf(named(rendered, 'Job', `tenant-${t.slug}-post-apply`));
    expect(pod.serviceAccountName).toBe('hooks');
    expect(pod.containers[0].image).toBe(image);
    expect(pod.volumes.find((v: Json) => v.name === 'platform-outputs').configMap.name).toBe('platform-outputs');
  });

  test('a custom release namespace holds the Job and its ConfigMap', () => {
    const platform: PlatformConfig = { ...on, kubernetes: { ...on.kubernetes, releaseNamespace: 'platform-releases' } };
    const rendered = renderPlatformRelease(synth(t, platform));
    expect(named(rendered, 'Job', `tenant-${t.slug}-post-apply`).metadata.namespace).toBe('platform-releases');
    expect(named(rendered, 'ConfigMap', `tenant-${t.slug}-post-apply-outputs`).metadata.namespace).toBe('platform-releases');
  });

  test('PCI tenants\' hook pods run on the dedicated nodes', () => {
    const pci = live.find((x) => x.compliance.pci)!;
    const pod = podOf(named(renderPlatformRelease(synth(pci, on)), 'Job', `tenant-${pci.slug}-post-apply`));
    expect(pod.tolerations).toEqual([{ key: 'tenancy.io/dedicated', operator: 'Equal', value: 'pci', effect: 'NoSchedule' }]);
    expect(JSON.stringify(pod.affinity)).toContain('tenancy.io/dedicated');
  });
});

describe('TenantNamespace.addPostApplyJob rejects', () => {
  const JOB: NamespacePostApplyJob = {
    image: IMAGE, serviceAccount: 'tenancy-hooks', platformOutputsConfigMap: 'tenancy-platform-outputs', stackName: 'tenant-acme', outputs: { slug: 'acme' },
  };
  const namespace = () =>
    new TenantNamespace(new TerraformStack(Testing.app(), 'ns'), 'namespace', {
      tenantId: '00000000-0000-4000-8000-000000000001', slug: 'acme', plan: 'pro', model: 'pool', databaseEgress: [{ cidr: '10.0.32.0/20', ports: [5432] }],
    });
  test.each<[string, Partial<NamespacePostApplyJob>, RegExp]>([
    ['an untagged image', { image: 'ghcr.io/acme/tenancy' }, /image "ghcr.io\/acme\/tenancy" must be pinned/],
    ['the latest tag', { image: 'ghcr.io/acme/tenancy:latest' }, /must be pinned: "latest" moves/],
    ['a malformed image', { image: 'ghcr.io/acme/tenancy:1.0 ; rm' }, /must be an image reference/],
    ['a bad ServiceAccount name', { serviceAccount: 'Tenancy_Hooks' }, /serviceAccount "Tenancy_Hooks" is not a Kubernetes name/],
    ['a bad ConfigMap name', { platformOutputsConfigMap: '../outputs' }, /platformOutputsConfigMap .* is not a Kubernetes name/],
    ['a bad Secret name', { controlPlaneSecret: 'cp secret' }, /controlPlaneSecret .* is not a Kubernetes name/],
    ['no outputs', { outputs: {} }, /outputs are empty/],
  ])('%s', (_n, change, message) => {
    expect(() => namespace().addPostApplyJob({ ...JOB, ...change })).toThrow(message);
  });

  test('a second Job', () => {
    const ns = namespace();
    ns.addPostApplyJob(JOB);
    expect(() => ns.addPostApplyJob(JOB)).toThrow(/post-apply Job: added twice/);
  });
});

describe('charts/tenant-platform refuses an incomplete post-apply Job', () => {
  const ns = new TenantNamespace(new TerraformStack(Testing.app(), 'ns'), 'namespace', {
    tenantId: '00000000-0000-4000-8000-000000000001', slug: 'acme', plan: 'pro', model: 'pool', databaseEgress: [{ cidr: '10.0.32.0/20', ports: [5432] }],
  });
  test.each<[string, Json, RegExp]>([
    ['no image', { enabled: true, outputs: '{}' }, /postApplyJob.image is required/],
    ['no outputs', { enabled: true, image: IMAGE }, /postApplyJob.outputs is required/],
    ['no ServiceAccount', { enabled: true, image: IMAGE, outputs: '{}', serviceAccount: '' }, /postApplyJob.serviceAccount is required/],
  ])('%s', (_n, postApplyJob, message) => {
    expect(() => renderPlatform({ ...JSON.parse(JSON.stringify(ns.values)), postApplyJob })).toThrow(message);
  });
});
