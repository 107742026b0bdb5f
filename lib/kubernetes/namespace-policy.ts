/**
 * What the platform enforces in every tenant namespace, as the values of charts/tenant-platform
 * that TenantNamespace computes and the chart turns into objects: Pod Security Admission labels,
 * the default-deny NetworkPolicy and the tenant Role's rules. Kept free of provider imports: the
 * policy rules (lib/policy) check the synthesized values against these.
 */

/** Kinds the platform owns in a tenant namespace: no tenant role may have any verb on them. */
export const PLATFORM_OWNED_RESOURCES = ['resourcequotas', 'limitranges', 'networkpolicies', 'roles', 'rolebindings'] as const;

/**
 * Cluster-scoped resources (and RBAC's cluster kinds): a tenant's RBAC never names them. A Role
 * cannot grant them anyway; naming them means someone is trying.
 */
export const CLUSTER_SCOPED_RESOURCES = [
  'namespaces', 'nodes', 'persistentvolumes', 'clusterroles', 'clusterrolebindings', 'customresourcedefinitions',
  'storageclasses', 'priorityclasses', 'runtimeclasses', 'ingressclasses', 'csidrivers', 'csinodes', 'volumeattachments',
  'validatingwebhookconfigurations', 'mutatingwebhookconfigurations', 'validatingadmissionpolicies', 'validatingadmissionpolicybindings',
  'apiservices', 'certificatesigningrequests', 'podsecuritypolicies', 'tokenreviews', 'subjectaccessreviews', 'selfsubjectreviews',
] as const;

/** Verbs that let a role grow its own power or act as someone else. */
export const ESCALATING_VERBS = ['escalate', 'bind', 'impersonate'] as const;

/** Pod Security Admission level of every tenant namespace, in enforce, audit and warn mode. */
export const TENANT_POD_SECURITY = { enforce: 'restricted', audit: 'restricted', warn: 'restricted' } as const;

/** Default deny of the namespace's NetworkPolicies: every pod, both directions. */
export const TENANT_DEFAULT_DENY = { ingress: true, egress: true } as const;

/** A rule of an RBAC Role. */
export interface RoleRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/** The tenant workload's Role: read its own configuration, nothing else. */
export const TENANT_ROLE_RULES: readonly RoleRule[] = [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }];
