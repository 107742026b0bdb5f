/**
 * Top-level values of charts/tenant-app that only the platform sets: tenant identity, database
 * connection, service account, security contexts and placement. A tenant's own values may not
 * set them, so an override can neither impersonate another tenant nor leave dedicated nodes.
 * The registry's allowlist of tenant values (lib/registry/workload-values.ts) names them in its
 * message; every other key outside that allowlist is refused too.
 * (Kept free of provider imports: the registry loader checks against it.)
 */
export const PLATFORM_ENFORCED_VALUES: readonly string[] = [
  'tenant', 'database', 'serviceAccount', 'podSecurityContext', 'securityContext', 'affinity', 'tolerations', 'nodeSelector',
];
