import { Fn } from 'cdktf';
import { DataAwsEksCluster } from '@cdktf/provider-aws/lib/data-aws-eks-cluster';
import { DataAwsEksClusterAuth } from '@cdktf/provider-aws/lib/data-aws-eks-cluster-auth';
import { HelmProvider } from '@cdktf/provider-helm/lib/provider';
import { BridgeTenant } from '../lib/bridge-tenant';
import { SiloPgbouncer } from '../lib/kubernetes/silo-pgbouncer';
import { TenantAppRelease, type TenantDatabaseConnection } from '../lib/kubernetes/tenant-app-release';
import { TenantNamespace } from '../lib/kubernetes/tenant-namespace';
import { TenantSecretSync } from '../lib/kubernetes/tenant-secret-sync';
import { bridgeShardNames, platformNames } from '../lib/naming';
import { bridgeShardOf } from '../lib/registry/bridge-shards';
import { egressPolicyFor } from '../lib/registry/egress-policy';
import type { PlatformConfig } from '../lib/registry/platform-schema';
import type { Tenant } from '../lib/registry/tenant-schema';
import { POSTGRES_PORT } from '../lib/silo-database';
import { SiloTenant } from '../lib/silo-tenant';
import type { TenantStack } from './tenant-stack';

/**
 * A tenant's Kubernetes side, added to its stack when platform.yaml enables it: namespace
 * isolation, PgBouncer (silo), the credentials sync and the Helm release of the workload.
 */
export function buildTenantKubernetesSide(stack: TenantStack, tenant: Tenant, platform: PlatformConfig): { namespace: TenantNamespace; app: TenantAppRelease; pgbouncer?: SiloPgbouncer } {
  const network = platform.regions[tenant.region];
  const shared = platformNames(platform.name);
  const common = { tenantId: tenant.id, slug: tenant.slug };
  // Helm talks to the cluster the platform names, with a short-lived token from the AWS
  // credentials of the deployment, never a local kubeconfig. (Every Kubernetes object is in a
  // Helm release, so there is no kubernetes provider.)
  const cluster = new DataAwsEksCluster(stack, 'eks', { name: network.clusterName });
  const auth = new DataAwsEksClusterAuth(stack, 'eks-auth', { name: network.clusterName });
  const kube = { host: cluster.endpoint, clusterCaCertificate: Fn.base64decode(cluster.certificateAuthority.get(0).data), token: auth.token };
  new HelmProvider(stack, 'helm', { kubernetes: kube });

  const k8s = platform.kubernetes;
  const regulated = tenant.compliance.hipaa || tenant.compliance.pci;
  const namespace = new TenantNamespace(stack, 'namespace', {
    ...common,
    plan: tenant.plan,
    model: tenant.model,
    databaseEgress: network.databaseSubnetCidrs.map((cidr) => ({ cidr, ports: [POSTGRES_PORT] })),
    extraEgress: tenant.workload.egress,
    egressPolicy: egressPolicyFor(platform, tenant.region),
    ingressControllerNamespace: k8s.ingressControllerNamespace,
    quota: tenant.quotas,
    regulated,
    dedicatedNodes: tenant.compliance.pci ? k8s.dedicatedNodes : undefined,
    releaseNamespace: k8s.releaseNamespace,
    chartRepository: k8s.chartRepository,
  });

  let pgbouncer: SiloPgbouncer | undefined;
  let database: TenantDatabaseConnection;
  if (stack.tenancy instanceof SiloTenant) {
    pgbouncer = new SiloPgbouncer(stack, 'pgbouncer', {
      namespace: namespace,
      database: stack.tenancy.database,
      appCredentialsSecretArn: stack.tenancy.appCredentials.arn,
      region: tenant.region,
      oidcProviderArn: network.oidcProviderArn,
      image: k8s.pgbouncerImage,
      caConfigMap: k8s.rdsCaConfigMap,
    });
    // Inside the namespace to PgBouncer; PgBouncer to RDS is TLS. Both log in as the tenant's application role.
    database = { host: pgbouncer.host, port: pgbouncer.port, name: stack.tenancy.database.settings.databaseName, sslmode: 'disable', credentialsSecret: pgbouncer.credentialsSecret };
  } else {
    const bridge = stack.tenancy instanceof BridgeTenant ? stack.tenancy : undefined;
    const secret = new TenantSecretSync(stack, 'database-credentials', {
      namespace: namespace,
      region: tenant.region,
      oidcProviderArn: network.oidcProviderArn,
      secretArn: bridge ? bridge.credentials.arn : `arn:aws:secretsmanager:${tenant.region}:*:secret:${shared.poolAppSecretName}-*`,
      secretKey: bridge ? undefined : shared.poolAppSecretName,
      targetSecret: 'database-credentials',
      template: { username: '{{ .username }}', password: '{{ .password }}' },
    });
    const shard = bridge ? bridgeShardNames(platform.name, bridgeShardOf(tenant)) : undefined;
    database = {
      host: shard ? shard.host : shared.poolHost,
      port: POSTGRES_PORT,
      name: shard ? shard.database : shared.poolDatabase,
      sslmode: 'require',
      credentialsSecret: secret.targetSecret,
      schema: bridge?.schemaName ?? '',
      tenantSetting: bridge ? '' : shared.poolTenantSetting,
    };
  }

  const app = new TenantAppRelease(stack, 'app', {
    ...common,
    namespace: namespace,
    plan: tenant.plan,
    model: tenant.model,
    image: k8s.appImage,
    host: `${tenant.domain.subdomain ?? tenant.slug}.${platform.baseDomain}`,
    customDomain: tenant.domain.custom,
    database,
    chartVersion: k8s.chartVersion,
    chartRepository: k8s.chartRepository,
    replicas: tenant.status === 'suspended' ? 0 : tenant.workload.replicas,
    values: tenant.workload.values,
    ingressClassName: k8s.ingress.className,
    ingressAnnotations: k8s.ingress.annotations,
    allowedIngressAnnotations: k8s.ingress.allowedAnnotations,
    allowedImageRegistries: k8s.allowedImageRegistries,
  });

  return { namespace, app, pgbouncer };
}
