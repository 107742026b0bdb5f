import { Construct } from 'constructs';
import { Lazy, Token } from 'cdktf';
import { Release } from '@cdktf/provider-helm/lib/release';
import { PLAN_PROFILES, parseQuantity, type NamespaceQuota } from '../plans';
import { tenantNames } from '../naming';
import { BASE_EGRESS_POLICY, egressRuleProblems, type EgressPolicy } from '../registry/egress-policy';
import { unpinnedImageProblem } from '../registry/platform-schema';
import { CIDR_PATTERN, type Plan, type TenancyModel } from '../registry/tenant-schema';
import { TENANT_DEFAULT_DENY, TENANT_POD_SECURITY, TENANT_ROLE_RULES } from './namespace-policy';

/** Version of charts/tenant-platform that this code computes values for (a test keeps it equal to Chart.yaml). */
export const TENANT_PLATFORM_CHART_VERSION = '0.1.0';

/** Label keys on every tenant object; NetworkPolicies and admission policies select on them. */
export const K8S_LABELS = {
  tenantId: 'tenancy.io/tenant-id',
  tenantSlug: 'tenancy.io/tenant-slug',
  plan: 'tenancy.io/plan',
  model: 'tenancy.io/model',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

export { PLATFORM_OWNED_RESOURCES } from './namespace-policy';

/** An egress destination outside the namespace. */
export interface EgressDestination {
  /** CIDR block, e.g. the database subnets or a partner API. */
  readonly cidr: string;
  /** TCP ports allowed to it. */
  readonly ports: readonly number[];
}

/** Dedicated nodes for tenants that must not share a node (PCI). */
export interface DedicatedNodes {
  /** Node label key and value the pods require. */
  readonly labelKey: string;
  readonly labelValue: string;
  /** Taint key on those nodes (effect NoSchedule) that the pods tolerate. */
  readonly taintKey: string;
}

/** Properties of a tenant's Kubernetes namespace. */
export interface TenantNamespaceProps {
  /** Immutable tenant id (UUID). */
  readonly tenantId: string;
  /** Tenant slug; the namespace is tenant-<slug>. */
  readonly slug: string;
  /** Plan that sizes the quota and container limits. */
  readonly plan: Plan;
  /** Data isolation model, as a label. */
  readonly model: TenancyModel;
  /** Where the tenant's database is (the database subnets): its workloads may open connections there and nowhere else outside the namespace. */
  readonly databaseEgress: readonly EgressDestination[];
  /** Further destinations the tenant's workloads may reach. @default none */
  readonly extraEgress?: readonly EgressDestination[];
  /**
   * Destinations extraEgress may not overlap and ports it may not use, with the platform's explicit
   * exceptions (egressPolicyFor(platform, region)). @default link-local and metadata addresses,
   * loopback, 0.0.0.0/8 and the control-plane ports, without exceptions
   */
  readonly egressPolicy?: EgressPolicy;
  /** Namespace of the ingress controller, the only outside source of traffic. @default "ingress-nginx" */
  readonly ingressControllerNamespace?: string;
  /** Quota overrides; each must stay within the plan ceiling. @default the plan's quota */
  readonly quota?: Partial<Pick<NamespaceQuota, 'cpu' | 'memory' | 'storage' | 'pods'>>;
  /** Schedule every pod on dedicated nodes (PCI scope). @default undefined: shared nodes */
  readonly dedicatedNodes?: DedicatedNodes;
  /** Regulated data (HIPAA, PCI): no extra egress beyond the database and DNS. @default false */
  readonly regulated?: boolean;
  /** Namespace that records the platform release (it must exist; a release cannot live in the namespace it creates). @default "tenancy-system" */
  readonly releaseNamespace?: string;
  /** Repository of charts/tenant-platform (https:// or oci://). @default none: the chart in charts/tenant-platform */
  readonly chartRepository?: string;
}

/** A Secrets Manager secret copied into a Kubernetes Secret of the namespace (see TenantSecretSync). */
export interface NamespaceSecretSync {
  /** Name of the Kubernetes Secret; its reader ServiceAccount is <name>-reader. */
  readonly name: string;
  readonly region: string;
  /** IAM role the reader ServiceAccount assumes (IRSA). */
  readonly roleArn: string;
  /** Name or ARN External Secrets looks the secret up by. */
  readonly key: string;
  /** Keys of the target Secret as External Secrets templates over the secret's JSON keys. */
  readonly template: Record<string, string>;
}

/** PgBouncer in the namespace (see SiloPgbouncer). */
export interface NamespacePgbouncer {
  readonly image: string;
  readonly replicas: number;
  readonly port: number;
  /** The rendered pgbouncer.ini. */
  readonly ini: string;
  /** Secret holding userlist.txt. */
  readonly authSecret: string;
  /** ConfigMap with the RDS CA bundle as ca.pem, or "" for TLS without server verification. */
  readonly caConfigMap: string;
}

/**
 * The tenant's post-apply hooks as a Helm hook Job of the platform release (post-install and
 * post-upgrade), in the release namespace: the Job's ServiceAccount can read database
 * credentials, so it never runs in, or is visible from, the tenant namespace.
 */
export interface NamespacePostApplyJob {
  /** Image with the `tenancy` CLI on its PATH, pinned by a version tag or a digest. */
  readonly image: string;
  /** ServiceAccount in the release namespace the Job runs as (bound to an IAM role by IRSA). */
  readonly serviceAccount: string;
  /** ConfigMap in the release namespace whose key outputs.json holds the platform stacks' outputs. */
  readonly platformOutputsConfigMap: string;
  /** Secret in the release namespace whose key url is the control-plane URL. @default none */
  readonly controlPlaneSecret?: string;
  /** Stack name the outputs are filed under in the outputs file (`tenant-<slug>`). */
  readonly stackName: string;
  /** The stack's outputs by name, as its TerraformOutputs; Terraform references are resolved at apply. */
  readonly outputs: Readonly<Record<string, string | number>>;
}

/** How long one run of the hooks may take (the Job's activeDeadlineSeconds). */
export const POST_APPLY_JOB_DEADLINE_SECONDS = 600;
/**
 * Timeout of the platform release when it has the hook Job: Helm waits for hook Jobs up to the
 * release timeout, which must outlast the Job's deadline (plus scheduling and image pull).
 */
export const POST_APPLY_RELEASE_TIMEOUT_SECONDS = POST_APPLY_JOB_DEADLINE_SECONDS + 300;

const NAMESPACE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A tenant's namespace with isolation that is enforced, not just declared: Pod Security
 * `restricted`, default-deny NetworkPolicies in both directions with narrow exceptions, a
 * ResourceQuota over compute, storage and object counts, a LimitRange so every container is
 * counted, and a workload ServiceAccount whose Role cannot touch what the platform owns.
 *
 * All of it is one Helm release of charts/tenant-platform (named tenant-<slug>, recorded in the
 * platform's namespace) whose values this construct computes: one Terraform resource per tenant
 * instead of a dozen deep Kubernetes structs keeps a fleet of 10,000 stacks fast to synthesize
 * (docs/BENCHMARKS.md), and uninstalling the release removes the namespace with everything in it.
 * PgBouncer and secret syncs add their objects to the same release (addPgbouncer, addSecretSync);
 * so does the optional post-apply hook Job (addPostApplyJob), in the release namespace.
 */
export class TenantNamespace extends Construct {
  /** The platform release; the tenant's own releases depend on it. */
  readonly release: Release;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly serviceAccountName = 'tenant-app';
  /** The quota actually applied. */
  readonly quota: NamespaceQuota;
  /** Dedicated nodes every pod of the namespace is placed on, if any. */
  readonly dedicatedNodes?: DedicatedNodes;
  private readonly baseValues: Record<string, unknown>;
  private readonly secretSyncs: NamespaceSecretSync[] = [];
  private pgbouncer?: NamespacePgbouncer;
  private postApplyJob?: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: TenantNamespaceProps) {
    super(scope, id);
    const names = tenantNames(props.slug);
    const profile = PLAN_PROFILES[props.plan];
    if (!profile) throw new Error(`TenantNamespace ${props.slug}: unknown plan ${JSON.stringify(props.plan)}`);
    const fail = (msg: string): never => {
      throw new Error(`TenantNamespace ${props.slug}: ${msg}`);
    };
    const ingressNs = props.ingressControllerNamespace ?? 'ingress-nginx';
    if (!NAMESPACE_NAME.test(ingressNs)) fail(`ingressControllerNamespace ${JSON.stringify(ingressNs)} is not a namespace name`);
    if (ingressNs === names.namespace) fail('ingressControllerNamespace cannot be the tenant namespace');
    const releaseNs = props.releaseNamespace ?? 'tenancy-system';
    if (!NAMESPACE_NAME.test(releaseNs)) fail(`releaseNamespace ${JSON.stringify(releaseNs)} is not a namespace name`);
    if (releaseNs.startsWith('tenant-')) fail(`releaseNamespace ${releaseNs} looks like a tenant namespace; use the platform's own`);
    const extraEgress = props.extraEgress ?? [];
    if (props.databaseEgress.length === 0) fail('databaseEgress is empty: the workload could not reach its database');
    for (const dest of [...props.databaseEgress, ...extraEgress]) {
      if (!CIDR_PATTERN.test(dest.cidr)) fail(`egress CIDR ${JSON.stringify(dest.cidr)} is not an IPv4 CIDR`);
      if (dest.cidr.endsWith('/0')) fail(`egress to ${dest.cidr} would allow the whole internet; list the destinations`);
      if (dest.ports.length === 0 || dest.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) fail(`egress to ${dest.cidr} needs ports 1-65535`);
    }
    if (props.regulated && extraEgress.length > 0) fail('regulated (HIPAA/PCI) tenants may reach only their database and DNS; extraEgress must be empty');
    // The platform's own database egress is not checked: the database subnets are reserved for tenants, not for it.
    for (const p of egressRuleProblems(extraEgress, props.egressPolicy ?? BASE_EGRESS_POLICY)) fail(`egress to ${extraEgress[p.path[0] as number].cidr} ${p.message}`);

    this.quota = { ...profile.quota, ...definedOnly(props.quota ?? {}) };
    for (const key of ['cpu', 'memory', 'storage'] as const) {
      if (parseQuantity(this.quota[key]) > parseQuantity(profile.quotaCeiling[key])) fail(`quota ${key} ${this.quota[key]} exceeds the ${props.plan} plan ceiling of ${profile.quotaCeiling[key]}`);
    }
    if (this.quota.pods > profile.quotaCeiling.pods) fail(`quota pods ${this.quota.pods} exceeds the ${props.plan} plan ceiling of ${profile.quotaCeiling.pods}`);

    this.name = names.namespace;
    this.labels = {
      [K8S_LABELS.tenantId]: props.tenantId,
      [K8S_LABELS.tenantSlug]: props.slug,
      [K8S_LABELS.plan]: props.plan,
      [K8S_LABELS.model]: props.model,
    };
    this.dedicatedNodes = props.dedicatedNodes;
    const limits = profile.containerLimits;
    this.baseValues = {
      tenant: { id: props.tenantId, slug: props.slug, plan: props.plan, model: props.model },
      namespace: this.name,
      ingressControllerNamespace: ingressNs,
      egress: [...props.databaseEgress, ...extraEgress].map((d) => ({ cidr: d.cidr, ports: [...d.ports] })),
      quota: {
        hard: {
          'requests.cpu': this.quota.cpu,
          'limits.cpu': this.quota.cpu,
          'requests.memory': this.quota.memory,
          'limits.memory': this.quota.memory,
          'requests.storage': this.quota.storage,
          persistentvolumeclaims: String(this.quota.persistentVolumeClaims),
          pods: String(this.quota.pods),
          services: String(this.quota.services),
          'services.loadbalancers': '0',
          'services.nodeports': '0',
          configmaps: String(this.quota.configMaps),
          secrets: String(this.quota.secrets),
        },
      },
      limits: { defaultRequest: { ...limits.defaultRequest }, default: { ...limits.defaultLimit }, max: { ...limits.max } },
      workload: { serviceAccount: this.serviceAccountName },
      placement: this.placement,
      // Rendered by the chart as they are; the policy rules (TENANCY-K8S-*) check them at synth.
      podSecurity: { ...TENANT_POD_SECURITY },
      networkPolicy: { defaultDeny: { ...TENANT_DEFAULT_DENY } },
      rbac: { rules: TENANT_ROLE_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })) },
    };

    this.release = new Release(this, 'release', {
      name: `tenant-${props.slug}`,
      namespace: releaseNs,
      chart: props.chartRepository ? 'tenant-platform' : '../../../charts/tenant-platform',
      repository: props.chartRepository,
      version: TENANT_PLATFORM_CHART_VERSION,
      // Computed at synth, after PgBouncer and secret syncs were added; JSON is YAML to Helm.
      values: [Lazy.stringValue({ produce: () => JSON.stringify(this.values, null, 2) })],
      atomic: true,
      cleanupOnFail: true,
      maxHistory: 10,
      timeout: 300,
    });
  }

  /** The values of the platform release. */
  get values(): Record<string, unknown> {
    return {
      ...this.baseValues,
      secretSyncs: this.secretSyncs.map((s) => ({ ...s, refreshInterval: '1h' })),
      pgbouncer: this.pgbouncer ? { enabled: true, ...this.pgbouncer } : { enabled: false },
      // Only when there is a Job: without one the values (and so the synthesized JSON) stay as they were.
      ...(this.postApplyJob ? { postApplyJob: this.postApplyJob } : {}),
    };
  }

  /** Adds a Secrets Manager → Kubernetes Secret copy to the namespace. */
  addSecretSync(sync: NamespaceSecretSync): void {
    if (!NAMESPACE_NAME.test(sync.name) || sync.name.length > 56) throw new Error(`TenantNamespace ${this.name}: secret sync name ${JSON.stringify(sync.name)} is not a Secret name`);
    if (this.secretSyncs.some((s) => s.name === sync.name)) throw new Error(`TenantNamespace ${this.name}: secret sync ${sync.name} is added twice`);
    this.secretSyncs.push(sync);
  }

  /** Adds PgBouncer to the namespace (silo tenants). */
  addPgbouncer(pgbouncer: NamespacePgbouncer): void {
    if (this.pgbouncer) throw new Error(`TenantNamespace ${this.name}: PgBouncer is added twice`);
    this.pgbouncer = pgbouncer;
  }

  /**
   * Adds the post-apply hook Job (and the ConfigMap with the stack's outputs it reads) to the
   * platform release, in the release namespace. The Job runs after every install and upgrade of
   * the release; Helm waits for it, and a failed run fails the release.
   */
  addPostApplyJob(job: NamespacePostApplyJob): void {
    const fail = (msg: string): never => {
      throw new Error(`TenantNamespace ${this.name}: post-apply Job: ${msg}`);
    };
    if (this.postApplyJob) fail('added twice');
    const imageProblem = unpinnedImageProblem(job.image);
    if (imageProblem) fail(`image ${JSON.stringify(job.image)} ${imageProblem}`);
    for (const [field, name] of [['serviceAccount', job.serviceAccount], ['platformOutputsConfigMap', job.platformOutputsConfigMap], ['controlPlaneSecret', job.controlPlaneSecret]] as const) {
      if (name !== undefined && !NAMESPACE_NAME.test(name)) fail(`${field} ${JSON.stringify(name)} is not a Kubernetes name`);
    }
    if (Object.keys(job.outputs).length === 0) fail('outputs are empty: the hooks would have nothing to act on');
    this.postApplyJob = {
      enabled: true,
      image: job.image,
      serviceAccount: job.serviceAccount,
      platformOutputsConfigMap: job.platformOutputsConfigMap,
      controlPlaneSecret: job.controlPlaneSecret ?? '',
      activeDeadlineSeconds: POST_APPLY_JOB_DEADLINE_SECONDS,
      outputs: outputsFile(job.stackName, job.outputs),
    };
    this.release.timeout = POST_APPLY_RELEASE_TIMEOUT_SECONDS;
  }

  /** Pod scheduling for the namespace's workloads (Helm values shape): required node affinity and a toleration on dedicated nodes. */
  get placement(): { affinity: Record<string, unknown>; tolerations: Record<string, string>[] } {
    const d = this.dedicatedNodes;
    if (!d) return { affinity: {}, tolerations: [] };
    return {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: d.labelKey, operator: 'In', values: [d.labelValue] }] }],
          },
        },
      },
      tolerations: [{ key: d.taintKey, operator: 'Equal', value: d.labelValue, effect: 'NoSchedule' }],
    };
  }
}

/**
 * The outputs file of one stack, as `cdktf deploy --outputs-file` writes it:
 * `{ "<stack>": { "<output>": value } }`. Terraform references are interpolated when Terraform
 * applies the release: a string reference inside quotes (tenant outputs are AWS identifiers, host
 * names and ARNs, which never hold a quote or a backslash), a number reference bare, so it stays
 * a number. (`jsonencode()` cannot be used: its quotes would land unescaped in the JSON string
 * that carries this text inside the release values.)
 */
export function outputsFile(stackName: string, outputs: Readonly<Record<string, string | number>>): string {
  const json = (value: string | number) => (typeof value === 'number' && Token.isUnresolved(value) ? Token.asString(value) : JSON.stringify(value));
  const entries = Object.entries(outputs).map(([name, value]) => `    ${JSON.stringify(name)}: ${json(value)}`);
  return `{\n  ${JSON.stringify(stackName)}: {\n${entries.join(',\n')}\n  }\n}\n`;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
