import { Construct } from 'constructs';
import { Release } from '@cdktf/provider-helm/lib/release';
import { PLAN_PROFILES } from '../plans';
import { terraformLiteral } from '../terraform-literal';
import type { Plan, TenancyModel } from '../registry/tenant-schema';
import { WorkloadValuesSchema, workloadValuesProblems } from '../registry/workload-values';
import { formatPath } from '../registry/yaml-file';
import type { TenantNamespace } from './tenant-namespace';


/** How the tenant workload reaches its database. */
export interface TenantDatabaseConnection {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly sslmode: 'disable' | 'require' | 'verify-full';
  /** Secret in the namespace with username and password keys. */
  readonly credentialsSecret: string;
  /** bridge: the tenant's schema. @default "" */
  readonly schema?: string;
  /** pool: the transaction-local setting carrying the tenant id. @default "" */
  readonly tenantSetting?: string;
}

/** Properties of a tenant's Helm release of charts/tenant-app. */
export interface TenantAppReleaseProps {
  readonly namespace: TenantNamespace;
  readonly tenantId: string;
  readonly slug: string;
  readonly plan: Plan;
  readonly model: TenancyModel;
  /** Image of the workload, "repository:tag" or "repository@sha256:…". */
  readonly image: string;
  /** Host name of the tenant (<subdomain>.<baseDomain>); the ingress serves it. */
  readonly host: string;
  /** The tenant's custom domain, served by the same ingress. @default none */
  readonly customDomain?: string;
  readonly database: TenantDatabaseConnection;
  /** Chart version the release is pinned to; a fleet rolls forward when this changes. */
  readonly chartVersion: string;
  /** Chart repository (https:// or oci://). @default none: the chart in charts/tenant-app */
  readonly chartRepository?: string;
  /** Replica count. @default the plan's */
  readonly replicas?: number;
  /**
   * The tenant's own values (registry workload.values), merged over the plan values. Only what
   * WorkloadValuesSchema allows, with hosts, annotations and images the platform allows below.
   * @default none
   */
  readonly values?: Record<string, unknown>;
  /** IngressClass of the tenant's Ingress (platform.yaml kubernetes.ingress.className). @default the cluster's default class */
  readonly ingressClassName?: string;
  /** Annotations the platform puts on the Ingress; they win over the tenant's. @default none */
  readonly ingressAnnotations?: Readonly<Record<string, string>>;
  /** Ingress annotation keys the tenant's values may set. @default none */
  readonly allowedIngressAnnotations?: readonly string[];
  /** Registries (host[/path] prefixes) the tenant's values may take images from, besides the repository of `image`. @default none */
  readonly allowedImageRegistries?: readonly string[];
}

/**
 * The tenant workload: one Helm release of charts/tenant-app per tenant, pinned to a chart
 * version. Values are merged by Helm in this order: chart defaults ← plan values ← the
 * tenant's values ← values the platform enforces (identity, database, service account,
 * security contexts, placement, its ingress class and annotations, zero replicas when scaled to
 * zero), so a tenant override cannot impersonate another tenant or leave its dedicated nodes.
 * The tenant's values are an allowlist (lib/registry/workload-values.ts) checked here as well as
 * in the registry: hosts only its own, annotations and image registries only what the platform
 * allows; the chart puts the platform's variables after extraEnv, so they win any duplicate.
 */
export class TenantAppRelease extends Construct {
  readonly release: Release;
  /** The value layers in merge order, as objects (for tests and reports). */
  readonly layers: { readonly plan: Record<string, unknown>; readonly tenant: Record<string, unknown>; readonly enforced: Record<string, unknown> };

  constructor(scope: Construct, id: string, props: TenantAppReleaseProps) {
    super(scope, id);
    const ns = props.namespace;
    const profile = PLAN_PROFILES[props.plan];
    const tenantValues = props.values ?? {};
    const image = /^(.+?)(?::([^:/@]+))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(props.image);
    if (!image) throw new Error(`TenantAppRelease ${props.slug}: image ${JSON.stringify(props.image)} is not an image reference`);
    // The registry checks the same (with file and line); this holds for every other source of values too.
    const parsed = WorkloadValuesSchema.safeParse(tenantValues);
    const valueProblems = parsed.success
      ? workloadValuesProblems(tenantValues, {
          hosts: [props.host, ...(props.customDomain ? [props.customDomain] : [])],
          allowedIngressAnnotations: props.allowedIngressAnnotations ?? [],
          allowedImageRegistries: props.allowedImageRegistries ?? [],
          platformImageRepository: image[1],
          platformImageOnly: props.model === 'pool',
        })
      : parsed.error.issues;
    if (valueProblems.length > 0) {
      throw new Error(`TenantAppRelease ${props.slug}: values ${valueProblems.map((p) => `${formatPath(p.path as PropertyKey[])}: ${p.message}`).join('; ')}`);
    }
    const replicas = props.replicas ?? profile.replicas;

    const plan = {
      replicaCount: replicas,
      resources: {
        requests: { ...profile.containerLimits.defaultRequest },
        limits: { ...profile.containerLimits.defaultLimit },
      },
      autoscaling: { enabled: props.plan !== 'free' && replicas > 0, minReplicas: Math.max(1, replicas), maxReplicas: Math.max(1, replicas) * 3, targetCPUUtilizationPercentage: 70 },
      podDisruptionBudget: { enabled: replicas > 1, minAvailable: Math.max(1, replicas - 1) },
      ingress: { enabled: true, host: props.host, extraHosts: props.customDomain ? [props.customDomain] : [], tlsSecretName: `${ns.name}-tls` },
      image: { repository: image[1], tag: image[2] ?? '', ...(image[3] ? { digest: image[3] } : {}) },
    };
    // The platform's ingress class and annotations, after the tenant's values (only when set, so the values stay as they were without them).
    const ingress = {
      ...(props.ingressClassName ? { className: props.ingressClassName } : {}),
      ...(props.ingressAnnotations && Object.keys(props.ingressAnnotations).length > 0 ? { annotations: { ...props.ingressAnnotations } } : {}),
    };
    const placement = ns.placement;
    const enforced = {
      tenant: { id: props.tenantId, slug: props.slug, plan: props.plan, model: props.model },
      database: { schema: '', tenantSetting: '', ...props.database },
      serviceAccount: { name: ns.serviceAccountName, automountToken: false },
      affinity: placement.affinity,
      tolerations: placement.tolerations,
      nodeSelector: {},
      ...(Object.keys(ingress).length > 0 ? { ingress } : {}),
      // Scaled to zero (a suspended tenant): its own replicaCount or autoscaling cannot start it again.
      ...(replicas === 0 ? { replicaCount: 0, autoscaling: { enabled: false }, podDisruptionBudget: { enabled: false } } : {}),
    };
    this.layers = { plan, tenant: tenantValues, enforced };

    this.release = new Release(this, 'release', {
      name: 'tenant-app',
      namespace: ns.name,
      chart: props.chartRepository ? 'tenant-app' : '../../../charts/tenant-app',
      repository: props.chartRepository,
      version: props.chartVersion,
      // JSON is YAML to Helm, and ~10x cheaper to produce than YAML for 10,000 stacks. The plan and
      // tenant layers hold the tenant's text, which Terraform must not evaluate; the enforced layer
      // holds the platform's references (and identifiers the registry keeps free of template syntax).
      values: [terraformLiteral(JSON.stringify(plan, null, 2)), terraformLiteral(JSON.stringify(tenantValues, null, 2)), JSON.stringify(enforced, null, 2)],
      atomic: true,
      cleanupOnFail: true,
      maxHistory: 10,
      timeout: 600,
      dependsOn: [ns.release],
    });
  }
}
