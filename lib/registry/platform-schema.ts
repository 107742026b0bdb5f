import { z } from 'zod';
import { BRIDGE_SHARD_ID, BRIDGE_SHARD_ID_MESSAGE, CIDR_PATTERN, REGION_PATTERN, RESIDENCIES, SLUG_PATTERN } from './tenant-schema';
import { DEFAULT_WAVE_PERCENTS, parseMaxFailures, parseWavePercents, WaveSpecError } from '../fleet/waves';
import { ANNOTATION_KEY, controllerAnnotationProblem } from './workload-values';

/** An IPv4 CIDR other than the whole internet. */
const Ipv4Cidr = z
  .string()
  .regex(CIDR_PATTERN, { message: 'must be an IPv4 CIDR such as "10.0.32.0/20"' })
  .refine((c) => !c.endsWith('/0'), { message: 'must not be the whole internet' });

/**
 * The cluster's own address ranges. Tenant egress may not overlap any of them (a tenant reaching
 * another tenant's pods, the services or the nodes directly would bypass every other policy).
 */
export const ClusterCidrsSchema = z
  .strictObject({
    pods: z.array(Ipv4Cidr).min(1).describe('Pod CIDRs of the cluster (with the VPC CNI: the subnets pods take addresses from).'),
    services: z.array(Ipv4Cidr).min(1).describe('Service CIDR of the cluster (EKS: 10.100.0.0/16 or 172.20.0.0/16 unless set).'),
    nodes: z.array(Ipv4Cidr).min(1).describe('Node CIDRs: the VPC or its node subnets (this also covers the private API server endpoint and the VPC resolver).'),
    apiServer: z.array(Ipv4Cidr).default([]).describe('Addresses of the API server endpoint outside the node ranges (the public endpoint, if enabled): refused on every port.'),
  })
  .describe("The cluster's address ranges, refused as tenant egress destinations. Unset: every private range (RFC 1918 and 100.64.0.0/10) counts as the cluster's.");

const ID = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}-[0-9a-f]{8,17}$`), { message: `must be an AWS id such as "${prefix}-0123456789abcdef0"` });

export const BridgeShardSchema = z
  .strictObject({
    id: z.string().regex(BRIDGE_SHARD_ID, { message: BRIDGE_SHARD_ID_MESSAGE }).describe('Shard id, fixed for its life: "default" is the bridge cluster of a single-shard region (<name>-bridge); another id gets <name>-bridge-<id>, database tenants_<id>.'),
    capacity: z.int().min(1).max(100_000).describe('Bridge tenants (schemas) the shard takes; onboarding places no tenant beyond it.'),
    residency: z
      .array(z.enum(RESIDENCIES))
      .min(1)
      .optional()
      .describe('Data residencies of the tenants the shard may take (e.g. [eu]); unset: any residency the region allows.'),
  })
  .describe('One bridge cluster of a region.');

export const RegionNetworkSchema = z
  .strictObject({
    vpcId: ID('vpc').describe('VPC the databases live in (the cluster VPC).'),
    privateSubnetIds: z.array(ID('subnet')).min(2, { message: 'needs at least two subnets in different AZs (RDS requires it)' }),
    workloadSecurityGroupId: ID('sg').describe("Security group of the cluster's workloads; only it may reach tenant databases."),
    clusterName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/).describe('EKS cluster the tenant namespaces live in.'),
    databaseSubnetCidrs: z
      .array(Ipv4Cidr)
      .min(1, { message: 'needs the CIDR of every private subnet that holds databases' })
      .describe("CIDRs of the database subnets: the only place tenant namespaces may open connections to (NetworkPolicy egress)."),
    oidcProviderArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider\/oidc\.eks\.[a-z0-9-]+\.amazonaws\.com\/id\/[A-Za-z0-9]+$/, { message: 'must be the ARN of the EKS cluster\'s IAM OIDC provider' })
      .describe("IAM OIDC provider of the EKS cluster, for the per-tenant roles that read a tenant's secrets (IRSA)."),
    clusterCidrs: ClusterCidrsSchema.optional(),
    bridgeShards: z
      .array(BridgeShardSchema)
      .min(1)
      .max(50)
      .superRefine((shards, ctx) => {
        const seen = new Set<string>();
        shards.forEach((s, i) => {
          if (seen.has(s.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `bridge shard ${JSON.stringify(s.id)} is listed twice` });
          seen.add(s.id);
        });
      })
      .optional()
      .describe('Bridge clusters of the region; a new bridge tenant goes to a matching shard (bridgePlacement) with room and takes its residency, and stays there. Unset: one shard, "default", without a capacity limit. Keep "default" listed while tenants without a placement use it.'),
    bridgePlacement: z
      .enum(['least-full', 'fill-first'])
      .default('least-full')
      .describe('How a new bridge tenant picks among the matching bridge shards with room: least-full (lowest fill ratio, ties to the first listed: spreads load over every cluster) or fill-first (the first listed with room: a shard takes tenants only once the ones before it are full, so a spare cluster stays empty until needed).'),
  })
  .describe('Network and cluster inputs of one region (created outside this project).');

export const StateSchema = z
  .discriminatedUnion('backend', [
    z.strictObject({
      backend: z.literal('local'),
      directory: z
        .string()
        .regex(/^(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9_][A-Za-z0-9_./-]*$/, { message: 'must be a relative path inside the project (no "..", not absolute)' })
        .default('state')
        .describe('Directory (relative to the project) for state files.'),
    }),
    z.strictObject({
      backend: z.literal('s3'),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'must be an S3 bucket name' }),
      region: z.string().min(1),
      keyPrefix: z.string().regex(/^[A-Za-z0-9/_.-]*$/).default('tenancy'),
      kmsKeyId: z.string().optional().describe('KMS key for state encryption; SSE-S3 otherwise.'),
    }),
  ])
  .describe('Where Terraform state lives. The S3 backend locks with a lock file (use_lockfile).');

/** A Kubernetes object name that is also a DNS label (ServiceAccount, ConfigMap, Secret names here). */
const K8S_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const K8S_NAME_MESSAGE = 'must be a Kubernetes name: 1-63 lowercase letters, digits and inner hyphens';

/**
 * An image reference: [registry[:port]/]path[:tag][@sha256:digest], lowercase path
 * (https://github.com/distribution/reference).
 */
const IMAGE_REF = /^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5}(?=\/))?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(@sha256:[a-f0-9]{64})?$/;

const IMAGE_REF_MESSAGE = 'must be an image reference such as "ghcr.io/acme/tenancy:1.4.2" or "ghcr.io/acme/tenancy@sha256:<64 hex digits>"';

/** Why `ref` is not a pinned image reference (a tag other than "latest", or a digest), or undefined when it is. */
export function unpinnedImageProblem(ref: string): string | undefined {
  const m = IMAGE_REF.exec(ref);
  if (!m) return IMAGE_REF_MESSAGE;
  const [, tag, digest] = m;
  if (digest) return undefined;
  if (!tag) return 'must be pinned: add a tag (e.g. ":1.4.2") or a digest ("@sha256:…"); an untagged image means "latest"';
  if (tag === 'latest') return 'must be pinned: "latest" moves; use a version tag or a digest';
  return undefined;
}

/** The shape as a pattern (also in platform.schema.json for editors), then the pin. */
const PinnedImage = z
  .string()
  .regex(IMAGE_REF, { message: IMAGE_REF_MESSAGE })
  .superRefine((ref, ctx) => {
    const problem = IMAGE_REF.test(ref) ? unpinnedImageProblem(ref) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const PostApplyJobSchema = z
  .strictObject({
    image: PinnedImage.describe('Image with the `tenancy` CLI on its PATH; pinned by a version tag or a digest.'),
    serviceAccount: z
      .string()
      .regex(K8S_NAME, { message: K8S_NAME_MESSAGE })
      .default('tenancy-hooks')
      .describe('ServiceAccount (in kubernetes.releaseNamespace, created by the platform team) the Job runs as; bind it to an IAM role (IRSA) that may read the tenants\' and the platform\'s database secrets.'),
    platformOutputsConfigMap: z
      .string()
      .regex(K8S_NAME, { message: K8S_NAME_MESSAGE })
      .default('tenancy-platform-outputs')
      .describe('ConfigMap (in kubernetes.releaseNamespace) whose key outputs.json holds the platform stacks\' outputs (`cdktf output --outputs-file`).'),
    controlPlaneSecret: z
      .string()
      .regex(K8S_NAME, { message: K8S_NAME_MESSAGE })
      .optional()
      .describe('Secret (in kubernetes.releaseNamespace) whose key url is the control-plane database URL (TENANCY_CONTROL_PLANE_URL); unset: the hooks use the home region\'s control-plane outputs.'),
  })
  .describe('Run each tenant\'s post-apply hooks as a Helm hook Job of its platform release, in kubernetes.releaseNamespace (never in the tenant namespace). Unset: no Job; run `tenancy post-apply` from the pipeline host.');

const AnnotationKey = z.string().regex(ANNOTATION_KEY, { message: 'must be an annotation key such as "nginx.ingress.kubernetes.io/proxy-body-size"' });

export const IngressSchema = z
  .strictObject({
    className: z.string().regex(K8S_NAME, { message: K8S_NAME_MESSAGE }).optional().describe("IngressClass of every tenant Ingress; unset: the cluster's default class. Tenants cannot choose another."),
    annotations: z
      .record(AnnotationKey, z.string().max(4096).refine((v) => !/[$%]\{/.test(v), { message: 'must not contain "${" or "%{" (the values reach Terraform in the platform\'s layer, which is not escaped)' }))
      .default({}).describe('Annotations the platform puts on every tenant Ingress (e.g. a cert-manager issuer); they win over a tenant\'s.'),
    allowedAnnotations: z
      .array(
        AnnotationKey.superRefine((key, ctx) => {
          const problem = controllerAnnotationProblem(key);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .max(50)
      .default([])
      .describe('Annotation keys tenants may set on their Ingress (exact keys, e.g. "nginx.ingress.kubernetes.io/proxy-body-size"). Snippets, external auth, aliases, mirrors and secret references are refused here: they run in the shared controller.'),
  })
  .describe('The ingress side of every tenant: class and annotations come from here, never from tenant values.');

/** A registry, or a path prefix in one, tenant images may come from: "ghcr.io/acme", "123456789012.dkr.ecr.us-east-1.amazonaws.com". */
const REGISTRY_PREFIX = /^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export const EgressExceptionSchema = z
  .strictObject({
    cidr: Ipv4Cidr.describe('Destination tenants may reach although it is reserved (a block inside it is allowed too).'),
    ports: z.array(z.int().min(1).max(65535)).min(1).max(20).describe('TCP ports the exception covers.'),
    reason: z.string().trim().min(10, { message: 'must say why tenants may reach it (at least 10 characters)' }).max(500).describe('Why tenants may reach it, for the reviewer.'),
  })
  .describe('An explicit exception to the reserved egress destinations.');

export const KubernetesSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Build each tenant\'s Kubernetes side (namespace isolation, PgBouncer, secret sync, the workload release). Set false for an AWS-only platform without a cluster.'),
    ingressControllerNamespace: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/).default('ingress-nginx').describe('Namespace of the ingress controller, the only outside source of traffic into tenant namespaces.'),
    dedicatedNodes: z
      .strictObject({
        labelKey: z.string().regex(/^[a-z0-9.\/-]+$/).default('tenancy.io/dedicated'),
        labelValue: z.string().regex(/^[a-z0-9-]+$/).default('pci'),
        taintKey: z.string().regex(/^[a-z0-9.\/-]+$/).default('tenancy.io/dedicated'),
      })
      .default({ labelKey: 'tenancy.io/dedicated', labelValue: 'pci', taintKey: 'tenancy.io/dedicated' })
      .describe('Nodes reserved for PCI tenants: label (node affinity) and NoSchedule taint (toleration).'),
    pgbouncerImage: PinnedImage.default('edoburu/pgbouncer:v1.23.1-p3').describe('PgBouncer image of silo tenants; pinned by a version tag or a digest.'),
    appImage: PinnedImage.default('ghcr.io/cdktf-tenancy/tenant-app:0.1.0').describe("Image of the tenant workload, pinned by a version tag or a digest; tenants may change only its tag or digest unless allowedImageRegistries lets them use another repository."),
    allowedImageRegistries: z
      .array(z.string().regex(REGISTRY_PREFIX, { message: 'must be a registry host or host/path prefix such as "ghcr.io/acme"' }))
      .max(50)
      .default([])
      .describe("Registries (or path prefixes in them) tenant values may take images from, besides appImage's repository; images are always pinned. Pool tenants run appImage's repository only."),
    ingress: IngressSchema.default({ annotations: {}, allowedAnnotations: [] }),
    egress: z
      .strictObject({
        allow: z.array(EgressExceptionSchema).max(50).default([]).describe('Reserved destinations tenants may reach anyway (e.g. a NodeLocal DNS cache on 169.254.20.10:53).'),
      })
      .default({ allow: [] })
      .describe('Tenant egress (workload.egress) never reaches link-local and metadata addresses, loopback, the cluster ranges, the database subnets or control-plane ports, except what is listed here.'),
    chartVersion: z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?$/).default('0.2.0').describe('Version of the tenant-app chart every tenant release is pinned to.'),
    chartRepository: z.string().regex(/^(?:https|oci):\/\/[^\s]+$/).optional().describe('Chart repository holding tenant-app and tenant-platform; unset: the charts in charts/.'),
    releaseNamespace: z.string().regex(/^(?!tenant-)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, { message: 'must be a namespace name that does not start with "tenant-"' }).default('tenancy-system').describe('Namespace (created with the cluster) that records each tenant\'s platform release; the release creates the tenant namespace itself.'),
    rdsCaConfigMap: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/).optional().describe('ConfigMap (in each tenant namespace) with the RDS CA bundle as ca.pem; set it to verify the server certificate (verify-full), otherwise PgBouncer encrypts with sslmode require.'),
    postApplyJob: PostApplyJobSchema.optional(),
  })
  .describe('Kubernetes side of every tenant.');

const BillingSchema = z
  .strictObject({
    pastDueGraceDays: z
      .int()
      .min(0)
      .max(90)
      .default(7)
      .describe('Days a tenant whose payment failed (Stripe invoice.payment_failed) stays served as past_due before it is suspended; a paid invoice makes it active again. 0: suspended at the next sweep.'),
  })
  .describe('Billing reactions to Stripe webhooks (`tenancy webhooks serve`).');

export const FleetCanarySchema = z
  .strictObject({
    tenants: z
      .array(z.string().regex(SLUG_PATTERN, { message: 'must be a tenant slug' }))
      .max(1000)
      .default([])
      .describe('Slugs of tenants deployed first, in the canary wave, besides those marked `canary: true` in their registry entry.'),
    perModel: z
      .int()
      .min(0)
      .max(100)
      .default(0)
      .describe('Also this many tenants of each model (silo, bridge, pool) among the stacks to deploy join the canary wave, chosen by a stable hash of the stack name (the same on every run).'),
  })
  .describe('Which tenants a rollout deploys first, in a wave of their own.');

/** Rollout defaults of `tenancy fleet deploy` (its options override them). */
export const FleetSchema = z
  .strictObject({
    waves: z
      .array(z.number())
      .default([...DEFAULT_WAVE_PERCENTS])
      .superRefine((waves, ctx) => {
        try {
          parseWavePercents(waves.join(','), 'waves');
        } catch (e) {
          if (!(e instanceof WaveSpecError)) throw e;
          ctx.addIssue({ code: 'custom', message: e.message.replace(/^waves: /, '') });
        }
      })
      .describe('Cumulative percentages of the non-canary tenant stacks deployed by each wave, ascending, the last 100 (e.g. [1, 10, 50, 100]).'),
    parallel: z.int().min(1).max(10_000).default(10).describe('Stacks of a rollout queued or applying at once, over all workers.'),
    maxFailures: z
      .union([z.int().min(0), z.string()])
      .default(0)
      .superRefine((value, ctx) => {
        try {
          parseMaxFailures(String(value), 'maxFailures');
        } catch (e) {
          if (!(e instanceof WaveSpecError)) throw e;
          ctx.addIssue({ code: 'custom', message: e.message.replace(/^maxFailures: /, '') });
        }
      })
      .describe('Failed stacks a wave tolerates before the rollout stops, a count (0: the first failure stops it) or a percentage of the wave ("5%").'),
    canary: FleetCanarySchema.default({ tenants: [], perModel: 0 }),
  })
  .describe('Rollout defaults of `tenancy fleet deploy`: waves, parallelism, failure threshold, canary tenants.');

export const PlatformSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,20}$/, { message: 'must be 2-21 lowercase letters and digits with single inner hyphens, starting with a letter' }).default('tenancy').describe('Prefix of shared resource names.'),
    baseDomain: z.string().regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/).describe('Tenants get <subdomain>.<baseDomain>.'),
    controlPlaneRegion: z.string().min(1).describe('Region of the control-plane database.'),
    regions: z.record(z.string().regex(REGION_PATTERN, { message: 'must be an AWS region such as "us-east-1"' }), RegionNetworkSchema).refine((r) => Object.keys(r).length > 0, { message: 'needs at least one region' }),
    state: StateSchema.default({ backend: 'local', directory: 'state' }),
    kubernetes: KubernetesSchema.default(KubernetesSchema.parse({})),
    billing: BillingSchema.default({ pastDueGraceDays: 7 }),
    fleet: FleetSchema.default(FleetSchema.parse({})),
  })
  .describe('Shared platform settings (platform.yaml).');

export type PlatformConfig = z.output<typeof PlatformSchema>;
export type RegionNetwork = z.output<typeof RegionNetworkSchema>;
export type BridgeShardConfig = z.output<typeof BridgeShardSchema>;
export type StateConfig = z.output<typeof StateSchema>;
export type KubernetesConfig = z.output<typeof KubernetesSchema>;
export type PostApplyJobConfig = z.output<typeof PostApplyJobSchema>;
export type BillingConfig = z.output<typeof BillingSchema>;
export type FleetConfig = z.output<typeof FleetSchema>;
