import { Construct } from 'constructs';
import { LimitRangeV1 } from '@cdktf/provider-kubernetes/lib/limit-range-v1';
import { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1';
import { NetworkPolicyV1, type NetworkPolicyV1SpecEgress } from '@cdktf/provider-kubernetes/lib/network-policy-v1';
import { ResourceQuotaV1 } from '@cdktf/provider-kubernetes/lib/resource-quota-v1';
import { RoleBindingV1 } from '@cdktf/provider-kubernetes/lib/role-binding-v1';
import { RoleV1 } from '@cdktf/provider-kubernetes/lib/role-v1';
import { ServiceAccountV1 } from '@cdktf/provider-kubernetes/lib/service-account-v1';
import { PLAN_PROFILES, parseQuantity, type NamespaceQuota } from '../plans';
import { tenantNames } from '../naming';
import { CIDR_PATTERN, type Plan, type TenancyModel } from '../registry/tenant-schema';

/** Label keys on every tenant object; NetworkPolicies and admission policies select on them. */
export const K8S_LABELS = {
  tenantId: 'tenancy.io/tenant-id',
  tenantSlug: 'tenancy.io/tenant-slug',
  plan: 'tenancy.io/plan',
  model: 'tenancy.io/model',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

/** Kinds the platform owns in a tenant namespace: no tenant role may write them. */
export const PLATFORM_OWNED_RESOURCES = ['resourcequotas', 'limitranges', 'networkpolicies', 'roles', 'rolebindings'] as const;

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
  /** Namespace of the ingress controller, the only outside source of traffic. @default "ingress-nginx" */
  readonly ingressControllerNamespace?: string;
  /** Quota overrides; each must stay within the plan ceiling. @default the plan's quota */
  readonly quota?: Partial<Pick<NamespaceQuota, 'cpu' | 'memory' | 'storage' | 'pods'>>;
  /** Schedule every pod on dedicated nodes (PCI scope). @default undefined: shared nodes */
  readonly dedicatedNodes?: DedicatedNodes;
  /** Regulated data (HIPAA, PCI): no extra egress beyond the database and DNS. @default false */
  readonly regulated?: boolean;
}

const DNS = { namespace: 'kube-system', podLabel: { 'k8s-app': 'kube-dns' } };
const NAMESPACE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A tenant's namespace with isolation that is enforced, not just declared: Pod Security
 * `restricted`, default-deny NetworkPolicies in both directions with narrow exceptions, a
 * ResourceQuota over compute, storage and object counts, a LimitRange so every container is
 * counted, and a workload ServiceAccount whose Role cannot touch what the platform owns.
 */
export class TenantNamespace extends Construct {
  readonly namespace: NamespaceV1;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly serviceAccountName = 'tenant-app';
  /** The quota actually applied. */
  readonly quota: NamespaceQuota;

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
    const extraEgress = props.extraEgress ?? [];
    if (props.databaseEgress.length === 0) fail('databaseEgress is empty: the workload could not reach its database');
    for (const dest of [...props.databaseEgress, ...extraEgress]) {
      if (!CIDR_PATTERN.test(dest.cidr)) fail(`egress CIDR ${JSON.stringify(dest.cidr)} is not an IPv4 CIDR`);
      if (dest.cidr.endsWith('/0')) fail(`egress to ${dest.cidr} would allow the whole internet; list the destinations`);
      if (dest.ports.length === 0 || dest.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) fail(`egress to ${dest.cidr} needs ports 1-65535`);
    }
    if (props.regulated && extraEgress.length > 0) fail('regulated (HIPAA/PCI) tenants may reach only their database and DNS; extraEgress must be empty');

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
      [K8S_LABELS.managedBy]: 'cdktf-tenancy',
    };
    const metadata = (name: string) => ({ name, namespace: this.name, labels: this.labels });

    this.namespace = new NamespaceV1(this, 'namespace', {
      metadata: {
        name: this.name,
        labels: {
          ...this.labels,
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
      },
    });
    const inNamespace = { dependsOn: [this.namespace] };

    // Default deny both ways for every pod; the policies below add the only exceptions.
    new NetworkPolicyV1(this, 'default-deny', {
      ...inNamespace,
      metadata: metadata('default-deny-all'),
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    });
    new NetworkPolicyV1(this, 'allow-same-namespace', {
      ...inNamespace,
      metadata: metadata('allow-same-namespace'),
      spec: {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ podSelector: {} }] }],
        egress: [{ to: [{ podSelector: {} }] }],
      },
    });
    new NetworkPolicyV1(this, 'allow-ingress-controller', {
      ...inNamespace,
      metadata: metadata('allow-ingress-controller'),
      spec: {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ingressNs } } }] }],
      },
    });
    new NetworkPolicyV1(this, 'allow-dns', {
      ...inNamespace,
      metadata: metadata('allow-dns'),
      spec: {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': DNS.namespace } }, podSelector: { matchLabels: DNS.podLabel } }],
          ports: [{ port: '53', protocol: 'UDP' }, { port: '53', protocol: 'TCP' }],
        }],
      },
    });
    new NetworkPolicyV1(this, 'allow-egress', {
      ...inNamespace,
      metadata: metadata('allow-database-egress'),
      spec: {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [...props.databaseEgress, ...extraEgress].map(egressRule),
      },
    });

    new ResourceQuotaV1(this, 'quota', {
      ...inNamespace,
      metadata: metadata('tenant-quota'),
      spec: {
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
    });
    const limits = profile.containerLimits;
    new LimitRangeV1(this, 'limits', {
      ...inNamespace,
      metadata: metadata('tenant-limits'),
      spec: {
        limit: [{
          type: 'Container',
          defaultRequest: { ...limits.defaultRequest },
          default: { ...limits.defaultLimit },
          max: { ...limits.max },
        }],
      },
    });

    new ServiceAccountV1(this, 'service-account', {
      ...inNamespace,
      metadata: metadata(this.serviceAccountName),
      automountServiceAccountToken: false,
    });
    // Read-only access to the workload's own configuration; nothing on platform-owned kinds,
    // no secrets listing, and no ClusterRole or ClusterRoleBinding at all.
    new RoleV1(this, 'role', {
      ...inNamespace,
      metadata: metadata('tenant-app'),
      rule: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }],
    });
    new RoleBindingV1(this, 'role-binding', {
      ...inNamespace,
      metadata: metadata('tenant-app'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant-app' },
      subject: [{ kind: 'ServiceAccount', name: this.serviceAccountName, namespace: this.name }],
    });

    this.dedicatedNodes = props.dedicatedNodes;
  }

  readonly dedicatedNodes?: DedicatedNodes;

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

function egressRule(dest: EgressDestination): NetworkPolicyV1SpecEgress {
  return {
    to: [{ ipBlock: { cidr: dest.cidr } }],
    ports: dest.ports.map((port) => ({ port: String(port), protocol: 'TCP' })),
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
