import { Construct } from 'constructs';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { BridgeTenant } from '../lib/bridge-tenant';
import { bridgeShardNames, platformNames, tenantNames, tenantStateKey } from '../lib/naming';
import { bridgeShardOf } from '../lib/registry/bridge-shards';
import type { PolicyAspect } from '../lib/policy/policy-aspect';
import { applyCompliance } from '../lib/policy/packs';
import { PoolTenant } from '../lib/pool-tenant';
import type { PlatformConfig } from '../lib/registry/platform-schema';
import { DEFAULT_BRIDGE_SHARD, type Tenant } from '../lib/registry/tenant-schema';
import { SiloTenant } from '../lib/silo-tenant';
import { tenantTags } from '../lib/tenant-tags';
import { terraformLiteral } from '../lib/terraform-literal';
import type { SiloPgbouncer } from '../lib/kubernetes/silo-pgbouncer';
import type { TenantAppRelease } from '../lib/kubernetes/tenant-app-release';
import type { TenantNamespace } from '../lib/kubernetes/tenant-namespace';
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
      case 'bridge': {
        // The shard its placement names (the default shard without one): registry validation checked it is the region's.
        const shard = bridgeShardNames(platform.name, bridgeShardOf(tenant));
        this.tenancy = new BridgeTenant(this, 'bridge', {
          ...common,
          clusterIdentifier: shard.cluster,
          databaseName: shard.database,
          secretsKmsKeyId: shared.tenantSecretsKeyAlias,
        });
        break;
      }
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

    if (platform.kubernetes.enabled) {
      // Loaded only when used: the Kubernetes and Helm bindings cost ~150 ms and ~26 MB to load.
      const { buildTenantKubernetesSide } = require('./tenant-kubernetes-side') as typeof import('./tenant-kubernetes-side');
      Object.assign(this, buildTenantKubernetesSide(this, tenant, platform));
    }

    // The tenant's fields as Terraform reads them literally; the hook outputs are the platform's references.
    const outputs: Record<string, string | number> = {
      tenant_id: terraformLiteral(tenant.id),
      slug: terraformLiteral(tenant.slug),
      model: terraformLiteral(tenant.model),
      plan: terraformLiteral(tenant.plan),
      region: terraformLiteral(tenant.region),
      ...(this.namespace ? { k8s_namespace: this.namespace.name } : {}),
      ...this.tenancy.hookOutputs,
      // The hooks find the shard's cluster by it; a tenant on the default shard has none (as before shards).
      ...(tenant.model === 'bridge' && bridgeShardOf(tenant) !== DEFAULT_BRIDGE_SHARD ? { bridge_shard: terraformLiteral(bridgeShardOf(tenant)) } : {}),
    };
    for (const [name, value] of Object.entries(outputs)) new TerraformOutput(this, name, { value });
    // The same outputs, for the hooks run as a Job of the platform release (platform.yaml kubernetes.postApplyJob).
    const job = platform.kubernetes.postApplyJob;
    if (this.namespace && job) this.namespace.addPostApplyJob({ ...job, stackName: this.node.id, outputs });

    // Compliance packs by the tenant's flags (tenancy and soc2 for everyone), with its suppressions.
    this.policy = applyCompliance(this, { tenant, suppressions: tenant.compliance.suppressions });
  }
}
