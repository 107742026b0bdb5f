import { Construct } from 'constructs';
import { Fn, TerraformOutput, TerraformStack } from 'cdktf';
import { DataAwsEksCluster } from '@cdktf/provider-aws/lib/data-aws-eks-cluster';
import { DataAwsEksClusterAuth } from '@cdktf/provider-aws/lib/data-aws-eks-cluster-auth';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { HelmProvider } from '@cdktf/provider-helm/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { SiloPgbouncer } from '../lib/kubernetes/silo-pgbouncer';
import { TenantAppRelease, type TenantDatabaseConnection } from '../lib/kubernetes/tenant-app-release';
import { TenantNamespace } from '../lib/kubernetes/tenant-namespace';
import { TenantSecretSync } from '../lib/kubernetes/tenant-secret-sync';
import { POSTGRES_PORT } from '../lib/silo-database';
import { BridgeTenant } from '../lib/bridge-tenant';
import { platformNames, tenantNames, tenantStateKey } from '../lib/naming';
import { PolicyAspect } from '../lib/policy/policy-aspect';
import { TENANT_RULES } from '../lib/policy/packs';
import { PoolTenant } from '../lib/pool-tenant';
import type { PlatformConfig } from '../lib/registry/platform-schema';
import type { Tenant } from '../lib/registry/tenant-schema';
import { SiloTenant } from '../lib/silo-tenant';
import { tenantTags } from '../lib/tenant-tags';
import { useStateBackend } from './state-backend';

export interface TenantStackProps {
  readonly tenant: Tenant;
  readonly platform: PlatformConfig;
}

/**
 * One tenant's stack, `tenant-<slug>`: the constructs of its model, its own state (keyed by
 * the tenant id), the tenant's tags on every AWS resource, and the outputs the post-apply
 * hooks read. It references the shared platform by name only, so it plans and deploys on
 * its own: a pipeline can deploy one new tenant without touching any other stack.
 */
export class TenantStack extends TerraformStack {
  readonly tenant: Tenant;
  readonly aws: AwsProvider;
  readonly tenancy: SiloTenant | BridgeTenant | PoolTenant;
  /** The Kubernetes side, when platform.yaml enables it. */
  namespace?: TenantNamespace;
  app?: TenantAppRelease;
  pgbouncer?: SiloPgbouncer;
  readonly policy: PolicyAspect;

  constructor(scope: Construct, props: TenantStackProps) {
    const { tenant, platform } = props;
    super(scope, tenantNames(tenant.slug).stack);
    this.tenant = tenant;
    const network = platform.regions[tenant.region];
    if (!network) throw new Error(`tenant ${tenant.slug}: region ${tenant.region} is not configured in platform.yaml`);
    const shared = platformNames(platform.name);

    useStateBackend(this, platform.state, tenantStateKey(tenant.id));
    this.aws = new AwsProvider(this, 'aws', { region: tenant.region, defaultTags: [{ tags: tenantTags(tenant) }] });

    const common = { tenantId: tenant.id, slug: tenant.slug };
    switch (tenant.model) {
      case 'silo':
        this.tenancy = new SiloTenant(this, 'silo', {
          ...common,
          plan: tenant.plan,
          vpcId: network.vpcId,
          subnetIds: network.privateSubnetIds,
          workloadSecurityGroupId: network.workloadSecurityGroupId,
          regulated: tenant.compliance.hipaa || tenant.compliance.pci,
        });
        break;
      case 'bridge':
        this.tenancy = new BridgeTenant(this, 'bridge', {
          ...common,
          clusterIdentifier: shared.bridgeCluster,
          databaseName: shared.bridgeDatabase,
          secretsKmsKeyId: shared.tenantSecretsKeyAlias,
        });
        break;
      case 'pool':
        this.tenancy = new PoolTenant(this, 'pool', {
          ...common,
          clusterIdentifier: shared.poolCluster,
          databaseName: shared.poolDatabase,
          appRole: shared.poolAppRole,
          tenantSetting: shared.poolTenantSetting,
        });
        break;
    }

    if (platform.kubernetes.enabled) this.buildKubernetesSide(tenant, platform);

    const outputs: Record<string, string | number> = {
      tenant_id: tenant.id,
      slug: tenant.slug,
      model: tenant.model,
      plan: tenant.plan,
      region: tenant.region,
      ...(this.namespace ? { k8s_namespace: this.namespace.name } : {}),
      ...this.tenancy.hookOutputs,
    };
    for (const [name, value] of Object.entries(outputs)) new TerraformOutput(this, name, { value });

    this.policy = PolicyAspect.applyTo(this, TENANT_RULES);
  }

  /** Namespace isolation, PgBouncer (silo), credentials sync and the Helm release of the workload. */
  private buildKubernetesSide(tenant: Tenant, platform: PlatformConfig): void {
    const network = platform.regions[tenant.region];
    const shared = platformNames(platform.name);
    const common = { tenantId: tenant.id, slug: tenant.slug };
    // Kubernetes and Helm talk to the cluster the platform names, with a short-lived token from
    // the AWS credentials of the deployment, never a local kubeconfig.
    const cluster = new DataAwsEksCluster(this, 'eks', { name: network.clusterName });
    const auth = new DataAwsEksClusterAuth(this, 'eks-auth', { name: network.clusterName });
    const kube = { host: cluster.endpoint, clusterCaCertificate: Fn.base64decode(cluster.certificateAuthority.get(0).data), token: auth.token };
    new KubernetesProvider(this, 'kubernetes', kube);
    new HelmProvider(this, 'helm', { kubernetes: kube });

    const k8s = platform.kubernetes;
    const regulated = tenant.compliance.hipaa || tenant.compliance.pci;
    this.namespace = new TenantNamespace(this, 'namespace', {
      ...common,
      plan: tenant.plan,
      model: tenant.model,
      databaseEgress: network.databaseSubnetCidrs.map((cidr) => ({ cidr, ports: [POSTGRES_PORT] })),
      extraEgress: tenant.workload.egress,
      ingressControllerNamespace: k8s.ingressControllerNamespace,
      quota: tenant.quotas,
      regulated,
      dedicatedNodes: tenant.compliance.pci ? k8s.dedicatedNodes : undefined,
    });

    let database: TenantDatabaseConnection;
    if (this.tenancy instanceof SiloTenant) {
      this.pgbouncer = new SiloPgbouncer(this, 'pgbouncer', {
        namespace: this.namespace,
        database: this.tenancy.database,
        region: tenant.region,
        oidcProviderArn: network.oidcProviderArn,
        image: k8s.pgbouncerImage,
        caConfigMap: k8s.rdsCaConfigMap,
      });
      // Inside the namespace to PgBouncer; PgBouncer to RDS is TLS.
      database = { host: this.pgbouncer.host, port: this.pgbouncer.port, name: this.tenancy.database.settings.databaseName, sslmode: 'disable', credentialsSecret: this.pgbouncer.credentialsSecret };
    } else {
      const bridge = this.tenancy instanceof BridgeTenant ? this.tenancy : undefined;
      const secret = new TenantSecretSync(this, 'database-credentials', {
        namespace: this.namespace,
        region: tenant.region,
        oidcProviderArn: network.oidcProviderArn,
        secretArn: bridge ? bridge.credentials.arn : `arn:aws:secretsmanager:${tenant.region}:*:secret:${shared.poolAppSecretName}-*`,
        secretKey: bridge ? undefined : shared.poolAppSecretName,
        targetSecret: 'database-credentials',
        template: { username: '{{ .username }}', password: '{{ .password }}' },
      });
      database = {
        host: bridge ? shared.bridgeHost : shared.poolHost,
        port: POSTGRES_PORT,
        name: bridge ? shared.bridgeDatabase : shared.poolDatabase,
        sslmode: 'require',
        credentialsSecret: secret.targetSecret,
        schema: bridge?.schemaName ?? '',
        tenantSetting: bridge ? '' : shared.poolTenantSetting,
      };
    }

    this.app = new TenantAppRelease(this, 'app', {
      ...common,
      namespace: this.namespace,
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
    });
  }
}
