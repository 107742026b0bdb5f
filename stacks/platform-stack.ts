import { Construct } from 'constructs';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { Route53Zone } from '@cdktf/provider-aws/lib/route53-zone';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { bridgeShardNames, platformNames, platformStateKey } from '../lib/naming';
import { bridgeShardsOf } from '../lib/registry/bridge-shards';
import type { PolicyAspect } from '../lib/policy/policy-aspect';
import { applyCompliance } from '../lib/policy/packs';
import type { PlatformConfig } from '../lib/registry/platform-schema';
import { SharedPostgresCluster } from '../lib/shared-postgres-cluster';
import { POSTGRES_PORT } from '../lib/silo-database';
import { TAG_KEYS } from '../lib/tenant-tags';
import { useStateBackend } from './state-backend';

export interface PlatformStackProps {
  readonly platform: PlatformConfig;
  /** Region this stack builds; one platform stack per region the registry uses. */
  readonly region: string;
}

/**
 * The shared side of one region, `platform-<region>`: the bridge (one per shard) and pool Aurora clusters,
 * the key that encrypts tenants' credentials, and in the control-plane region the control-plane
 * database. The VPC, subnets and EKS cluster are inputs (platform.yaml): they outlive tenants
 * and are usually owned by another team's stack.
 */
export class PlatformStack extends TerraformStack {
  readonly aws: AwsProvider;
  readonly clusters: Record<string, SharedPostgresCluster> = {};
  readonly policy: PolicyAspect;

  constructor(scope: Construct, props: PlatformStackProps) {
    const { platform, region } = props;
    super(scope, `platform-${region}`);
    const network = platform.regions[region];
    if (!network) throw new Error(`platform: region ${region} is not configured in platform.yaml`);
    const names = platformNames(platform.name);

    useStateBackend(this, platform.state, platformStateKey(region));
    this.aws = new AwsProvider(this, 'aws', {
      region,
      defaultTags: [{ tags: { [TAG_KEYS.managedBy]: 'cdktf-tenancy', 'tenancy:platform': platform.name } }],
    });

    const dataKey = new KmsKey(this, 'data-key', { description: `${platform.name} shared clusters in ${region}`, enableKeyRotation: true, deletionWindowInDays: 30 });
    new KmsAlias(this, 'data-key-alias', { name: `alias/${platform.name}/shared-data`, targetKeyId: dataKey.keyId });
    const secretsKey = new KmsKey(this, 'tenant-secrets-key', { description: `${platform.name} tenant credentials in ${region}`, enableKeyRotation: true, deletionWindowInDays: 30 });
    new KmsAlias(this, 'tenant-secrets-key-alias', { name: names.tenantSecretsKeyAlias, targetKeyId: secretsKey.keyId });

    const subnets = new DbSubnetGroup(this, 'db-subnets', { name: `${platform.name}-shared`, subnetIds: [...network.privateSubnetIds] });
    const sg = new SecurityGroup(this, 'db-security-group', {
      name: `${platform.name}-shared-db`,
      description: 'Shared PostgreSQL clusters: only the cluster workloads',
      vpcId: network.vpcId,
      ingress: [{ description: 'PostgreSQL from cluster workloads', protocol: 'tcp', fromPort: POSTGRES_PORT, toPort: POSTGRES_PORT, securityGroups: [network.workloadSecurityGroupId] }],
      egress: [],
      revokeRulesOnDelete: true,
    });

    // Stable private names for the shared clusters: tenant workloads connect by name, so tenant
    // stacks never read the platform's state.
    const zone = platform.kubernetes.enabled
      ? new Route53Zone(this, 'database-zone', { name: names.databaseZone, comment: 'Shared tenant databases', vpc: [{ vpcId: network.vpcId }] })
      : undefined;

    const shared = { kmsKeyArn: dataKey.arn, dbSubnetGroupName: subnets.name, securityGroupIds: [sg.id] };
    // One bridge cluster per shard; the default shard keeps the construct ids, names and output keys of the single cluster.
    const clusters: [key: string, constructId: string, identifier: string, database: string, host: string][] = [
      ...bridgeShardsOf(platform, region).map((s): [string, string, string, string, string] => {
        const n = bridgeShardNames(platform.name, s.id);
        return [n.outputPrefix, n.constructId, n.cluster, n.database, n.host];
      }),
      ['pool', 'pool', names.poolCluster, names.poolDatabase, names.poolHost],
    ];
    if (region === platform.controlPlaneRegion) clusters.push(['control_plane', 'control-plane', names.controlPlaneCluster, names.controlPlaneDatabase, names.controlPlaneHost]);
    for (const [key, constructId, identifier, databaseName, host] of clusters) {
      const c = (this.clusters[key] = new SharedPostgresCluster(this, constructId, { ...shared, identifier, databaseName }));
      if (zone) new Route53Record(this, `${constructId}-dns`, { zoneId: zone.zoneId, name: host, type: 'CNAME', ttl: 60, records: [c.cluster.endpoint] });
      new TerraformOutput(this, `${key}_cluster_identifier`, { value: identifier });
      new TerraformOutput(this, `${key}_endpoint`, { value: c.cluster.endpoint });
      new TerraformOutput(this, `${key}_reader_endpoint`, { value: c.cluster.readerEndpoint });
      new TerraformOutput(this, `${key}_database`, { value: databaseName });
      new TerraformOutput(this, `${key}_master_secret_arn`, { value: c.cluster.masterUserSecret.get(0).secretArn });
    }
    new TerraformOutput(this, 'tenant_secrets_key_arn', { value: secretsKey.arn });

    this.policy = applyCompliance(this, { scope: 'platform' });
  }
}
