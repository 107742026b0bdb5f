/**
 * Top-level values of charts/tenant-app that only the platform sets: tenant identity, database
 * connection, service account, security contexts and placement. A tenant's own values may not
 * set them, so an override can neither impersonate another tenant nor leave dedicated nodes.
 * (Kept free of provider imports: the registry loader checks against it.)
 */
export const PLATFORM_ENFORCED_VALUES: readonly string[] = [
  'tenant', 'database', 'serviceAccount', 'podSecurityContext', 'securityContext', 'affinity', 'tolerations', 'nodeSelector',
];
