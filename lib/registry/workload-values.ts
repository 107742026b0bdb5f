import { z } from 'zod';
import { PLATFORM_ENFORCED_VALUES } from '../kubernetes/enforced-values';

/**
 * What a tenant's own Helm values (registry `workload.values` and `tenants/<slug>.values.yaml`)
 * may set in charts/tenant-app: an allowlist, so a value path the chart grows later, or one a
 * tenant invents (envFrom, initContainers, a probe's httpGet.host), is refused until someone
 * decides it is the tenant's. The checks that need the platform and the tenant's own registry
 * entry (hosts, annotations, image registries) are in workloadValuesProblems.
 */

/** Variables the chart sets from platform values (charts/tenant-app/templates/deployment.yaml). */
export const PLATFORM_ENV = [
  'TENANT_ID', 'TENANT_SLUG', 'TENANT_PLAN', 'TENANT_MODEL',
  'DATABASE_HOST', 'DATABASE_PORT', 'DATABASE_NAME', 'DATABASE_SSLMODE', 'DATABASE_SCHEMA', 'DATABASE_TENANT_SETTING', 'DATABASE_USER', 'DATABASE_PASSWORD',
] as const;
/**
 * Name prefixes reserved for what the platform injects: its own variables (today's and any it adds
 * later) and the kubelet's KUBERNETES_SERVICE_*. The chart also puts its variables last, so a
 * duplicate would lose anyway (Kubernetes takes the last of duplicate names).
 */
export const PLATFORM_ENV_PREFIXES = ['TENANT_', 'DATABASE_', 'KUBERNETES_'] as const;

/**
 * Ingress annotations that make the shared ingress controller run configuration, call out, read
 * secrets or serve names on a tenant's behalf: never a tenant's, and platform.yaml cannot allow
 * them (there is no safe way to share them; CVE-2021-25742 and CVE-2023-5044 were snippets).
 * Matched on the name after the prefix, for any controller.
 */
const CONTROLLER_ANNOTATION_NAMES = new Set([
  'auth-url', 'auth-signin', 'auth-signin-redirect-param', 'auth-secret', 'auth-secret-type', 'auth-tls-secret', 'auth-proxy-set-headers', 'auth-response-headers',
  'auth-cache-key', 'server-alias', 'mirror-target', 'mirror-host', 'mirror-uri', 'mirror-request-body', 'proxy-ssl-secret', 'proxy-ssl-name', 'upstream-vhost',
  'custom-headers', 'proxy-set-headers', 'default-backend', 'global-auth-url', 'enable-global-auth', 'router.middlewares', 'lua-resty-waf-extra-rules',
]);

/** Why an ingress annotation key may never be a tenant's, or undefined. */
export function controllerAnnotationProblem(key: string): string | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1).toLowerCase();
  if (name.includes('snippet') || CONTROLLER_ANNOTATION_NAMES.has(name)) {
    return 'runs in the shared ingress controller (configuration snippets, external auth, secrets, aliases and mirrors reach beyond one tenant): never a tenant\'s to set, and platform.yaml cannot allow it';
  }
  return undefined;
}

/** An annotation key: an optional DNS prefix, then a name (Kubernetes' rules). */
export const ANNOTATION_KEY = /^(?:(?=[a-z0-9.-]{1,253}\/)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
/** A key without a prefix: prefixed keys (k8s.v1.cni.cncf.io/…, sidecar.istio.io/…) are read by the cluster's controllers. */
const UNPREFIXED_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const UNPREFIXED_MESSAGE = 'must be a name without a prefix (prefixed keys such as "example.com/x" are read by the cluster\'s controllers and belong to the platform)';
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
const K8S_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(?:\.[0-9]+)?(?:m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
/** A URL path without anything a controller or kubelet could read as more than a path. */
const HTTP_PATH = /^\/[A-Za-z0-9._~\/-]{0,255}$/;
const HOST = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
/** The repository part of an image reference (https://github.com/distribution/reference), lowercase. */
export const IMAGE_REPOSITORY = /^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$|^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const IMAGE_DIGEST = /^sha256:[a-f0-9]{64}$/;
/** Characters that could end an annotation's value inside controller configuration. */
const UNSAFE_ANNOTATION_VALUE = /[\p{Cc};{}"'`\\$]/u;

const seconds = (max: number) => z.int().min(0).max(max);
const quantity = z.string().regex(QUANTITY, { message: 'must be a Kubernetes quantity such as "500m" or "512Mi"' });

/**
 * An object whose keys are an allowlist: unknown keys are refused, each on its key, and keys the
 * platform sets say so (with where the platform sets them).
 */
function allowlist<S extends z.ZodRawShape>(shape: S, platformOwned: Readonly<Record<string, string>> = {}) {
  const allowed = Object.keys(shape).join(', ');
  return z.looseObject(shape).superRefine(
    (value, ctx) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      for (const key of Object.keys(value)) {
        if (Object.hasOwn(shape, key)) continue;
        const owner = Object.hasOwn(platformOwned, key) ? platformOwned[key] : undefined;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          params: { onKey: true },
          message: owner ? `is set by the platform (${owner}) and cannot be overridden` : `is not a value a tenant may set (allowed here: ${allowed})`,
        });
      }
    },
    // Report unknown keys even when a known one is also wrong: one run shows every problem.
    { when: () => true },
  );
}

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { message: 'must be an environment variable name: letters, digits and "_", not starting with a digit' })
  .refine((n) => !PLATFORM_ENV_PREFIXES.some((p) => n.toUpperCase().startsWith(p)), {
    message: `is set by the platform: ${PLATFORM_ENV_PREFIXES.map((p) => `${p}*`).join(', ')} are reserved for the variables it injects (${PLATFORM_ENV.join(', ')}, …)`,
  });

const keyRef = allowlist({
  name: z.string().regex(K8S_NAME, { message: 'must be the name of a Secret or ConfigMap in the namespace' }),
  key: z.string().regex(/^[A-Za-z0-9._-]{1,253}$/, { message: 'must be a key of the Secret or ConfigMap' }),
  optional: z.boolean().optional(),
});
const envSource = allowlist({
  secretKeyRef: keyRef.optional(),
  configMapKeyRef: keyRef.optional(),
  fieldRef: allowlist({ fieldPath: z.string().regex(/^[A-Za-z0-9.[\]'/_-]{1,256}$/), apiVersion: z.literal('v1').optional() }).optional(),
  resourceFieldRef: allowlist({ resource: z.enum(['limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage']), divisor: quantity.optional() }).optional(),
}).refine((s) => Object.keys(s).length === 1, { message: 'needs exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef' });

const envVar = allowlist({ name: envName, value: z.string().max(32 * 1024).optional(), valueFrom: envSource.optional() }).refine((e) => (e.value === undefined) !== (e.valueFrom === undefined), {
  message: 'needs either value or valueFrom (exactly one of them)',
});

const resourceList = allowlist({ cpu: quantity.optional(), memory: quantity.optional(), 'ephemeral-storage': quantity.optional() });
const probeTiming = allowlist({
  initialDelaySeconds: seconds(3600).optional(),
  periodSeconds: seconds(3600).min(1).optional(),
  timeoutSeconds: seconds(600).min(1).optional(),
  failureThreshold: z.int().min(1).max(100).optional(),
  successThreshold: z.int().min(1).max(100).optional(),
});

const unprefixedMap = (value: z.ZodString) => z.record(z.string().regex(UNPREFIXED_KEY, { message: UNPREFIXED_MESSAGE }), value);

export const WorkloadValuesSchema = allowlist(
  {
    replicaCount: z.int().min(0).max(100).optional(),
    containerPort: z.int().min(1).max(65535).optional(),
    image: allowlist({
      repository: z.string().regex(IMAGE_REPOSITORY, { message: 'must be an image repository such as "ghcr.io/acme/app" (lowercase)' }).optional(),
      tag: z
        .string()
        .regex(IMAGE_TAG, { message: 'must be pinned: an image tag such as "1.4.2"' })
        .refine((t) => t !== 'latest', { message: 'must be pinned: "latest" moves; use a version tag or a digest' })
        .optional(),
      digest: z.string().regex(IMAGE_DIGEST, { message: 'must be a digest "sha256:<64 hex digits>"' }).optional(),
      pullPolicy: z.enum(['IfNotPresent', 'Always', 'Never']).optional(),
    }).optional(),
    podAnnotations: unprefixedMap(z.string().max(4096)).optional(),
    podLabels: unprefixedMap(z.string().regex(LABEL_VALUE, { message: 'must be a label value: at most 63 letters, digits, "-", "_" and "."' })).optional(),
    resources: allowlist({ requests: resourceList.optional(), limits: resourceList.optional() }).optional(),
    probes: allowlist({
      path: z.string().regex(HTTP_PATH, { message: 'must be a URL path such as "/healthz"' }).optional(),
      readiness: probeTiming.optional(),
      liveness: probeTiming.optional(),
    }).optional(),
    autoscaling: allowlist({
      enabled: z.boolean().optional(),
      minReplicas: z.int().min(1).max(100).optional(),
      maxReplicas: z.int().min(1).max(100).optional(),
      targetCPUUtilizationPercentage: z.int().min(1).max(100).optional(),
    }).optional(),
    podDisruptionBudget: allowlist({ enabled: z.boolean().optional(), minAvailable: z.int().min(0).max(100).optional() }).optional(),
    tmpDir: allowlist({ sizeLimit: quantity.optional() }).optional(),
    service: allowlist({ port: z.int().min(1).max(65535).optional() }).optional(),
    ingress: allowlist(
      {
        enabled: z.boolean().optional(),
        host: z.string().regex(HOST, { message: 'must be a host name (no wildcard)' }).optional(),
        extraHosts: z.array(z.string().regex(HOST, { message: 'must be a host name (no wildcard)' })).max(10).optional(),
        path: z.string().regex(HTTP_PATH, { message: 'must be a URL path such as "/" or "/app"' }).optional(),
        // No ImplementationSpecific: it lets a controller read the path as a regular expression.
        pathType: z.enum(['Prefix', 'Exact']).optional(),
        annotations: z
          .record(
            z
              .string()
              .regex(ANNOTATION_KEY, { message: 'must be an annotation key such as "nginx.ingress.kubernetes.io/proxy-body-size"' })
              .superRefine((key, ctx) => {
                const problem = controllerAnnotationProblem(key);
                if (problem) ctx.addIssue({ code: 'custom', message: problem });
              }),
            z.string().max(4096).refine((v) => !UNSAFE_ANNOTATION_VALUE.test(v), { message: 'must not contain control characters or any of ; { } " \' ` \\ $ (they could end the value inside controller configuration)' }),
          )
          .optional(),
      },
      { className: 'platform.yaml kubernetes.ingress.className', tlsSecretName: 'the platform names the certificate Secret' },
    ).optional(),
    extraEnv: z.array(envVar).max(100).optional(),
  },
  Object.fromEntries(PLATFORM_ENFORCED_VALUES.map((k) => [k, 'identity, database, security and placement'])),
);

export type WorkloadValues = z.output<typeof WorkloadValuesSchema>;

/** What one tenant's values may claim, from platform.yaml and its registry entry. */
export interface WorkloadValuesPolicy {
  /** Host names the tenant owns: <subdomain>.<baseDomain> and its custom domain. */
  readonly hosts: readonly string[];
  /** Ingress annotation keys tenants may set (platform.yaml kubernetes.ingress.allowedAnnotations). */
  readonly allowedIngressAnnotations: readonly string[];
  /** Registries (host[/path] prefixes) tenants may take images from (platform.yaml kubernetes.allowedImageRegistries). */
  readonly allowedImageRegistries: readonly string[];
  /** Repository of the platform's workload image (kubernetes.appImage), always allowed. */
  readonly platformImageRepository: string;
  /**
   * Only the platform's image repository: pool tenants share one database role, and the
   * platform's code is what sets the tenant id on each transaction.
   */
  readonly platformImageOnly: boolean;
}

/** One problem, with its path below the values mapping; `onKey` points at the key rather than the value. */
export interface ValuesProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly onKey?: boolean;
}

/**
 * A repository spelt out in full, as a container runtime reads it: Docker Hub's implicit
 * "docker.io/" and "library/" added, so "nginx" and "docker.io/library/nginx" compare equal.
 */
export function canonicalRepository(repository: string): string {
  const first = repository.split('/')[0];
  const hasRegistry = repository.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return repository;
  return repository.includes('/') ? `docker.io/${repository}` : `docker.io/library/${repository}`;
}

/** The repository part of an image reference ("ghcr.io/acme/app:1.0@sha256:…" → "ghcr.io/acme/app"). */
export function imageRepositoryOf(image: string): string {
  const noDigest = image.split('@')[0];
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.indexOf(':', lastSlash + 1);
  return colon < 0 ? noDigest : noDigest.slice(0, colon);
}

/** Whether `repository` is inside `registry` (a host or host/path prefix), on a path boundary. */
export function inRegistry(repository: string, registry: string): boolean {
  const repo = canonicalRepository(repository);
  const prefix = registry.includes('/') || registry.includes('.') || registry.includes(':') || registry === 'localhost' ? registry : `docker.io/${registry}`;
  return repo === prefix || repo.startsWith(`${prefix}/`);
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The problems of one layer of a tenant's values (structurally valid: WorkloadValuesSchema) under
 * `policy`. Each layer is checked on its own, and every rule holds for any merge of layers that
 * each pass: hosts and annotation keys are sets, and a layer that names a repository pins it.
 */
export function workloadValuesProblems(values: Record<string, unknown>, policy: WorkloadValuesPolicy): ValuesProblem[] {
  const problems: ValuesProblem[] = [];
  const ingress = isMap(values.ingress) ? values.ingress : {};
  const hostProblem = (host: unknown) =>
    `${JSON.stringify(host)} is not a host of this tenant; it may serve only ${policy.hosts.join(', ')} (domain.subdomain and domain.custom of its registry entry)`;
  if (ingress.host !== undefined && !policy.hosts.includes(String(ingress.host))) problems.push({ path: ['ingress', 'host'], message: hostProblem(ingress.host) });
  if (Array.isArray(ingress.extraHosts)) {
    ingress.extraHosts.forEach((h, i) => {
      if (!policy.hosts.includes(String(h))) problems.push({ path: ['ingress', 'extraHosts', i], message: hostProblem(h) });
    });
  }
  for (const key of Object.keys(isMap(ingress.annotations) ? ingress.annotations : {})) {
    const path = ['ingress', 'annotations', key];
    if (!policy.allowedIngressAnnotations.includes(key)) {
      const allowed = policy.allowedIngressAnnotations.length ? policy.allowedIngressAnnotations.join(', ') : 'none';
      problems.push({ path, onKey: true, message: `is not in platform.yaml kubernetes.ingress.allowedAnnotations (allowed: ${allowed}); ingress annotations configure the shared controller, so the platform decides them` });
    }
  }

  const image = isMap(values.image) ? values.image : {};
  if (typeof image.repository === 'string') {
    const repo = image.repository;
    const platformRepo = canonicalRepository(policy.platformImageRepository) === canonicalRepository(repo);
    if (policy.platformImageOnly && !platformRepo) {
      problems.push({ path: ['image', 'repository'], message: `pool tenants run the platform's image (${policy.platformImageRepository}): they share one database role, and the platform's code sets the tenant id on every transaction; set image.tag or image.digest only` });
    } else if (!platformRepo && !policy.allowedImageRegistries.some((r) => inRegistry(repo, r))) {
      const allowed = [policy.platformImageRepository, ...policy.allowedImageRegistries].join(', ');
      problems.push({ path: ['image', 'repository'], message: `${repo} is not in a registry platform.yaml allows (kubernetes.allowedImageRegistries; allowed: ${allowed})` });
    }
    if (image.tag === undefined && image.digest === undefined) {
      problems.push({ path: ['image'], onKey: true, message: 'must be pinned: a repository needs a tag (e.g. "1.4.2") or a digest ("sha256:…") next to it, or the chart falls back to a tag nobody chose' });
    }
  }
  return problems;
}
