import { stringify } from 'yaml';
import type { LocalNetwork } from './aws-api';

export interface LocalPlatformOptions {
  /** The platform.yaml to start from (parsed): name, baseDomain, regions' other settings are kept. */
  readonly base: Record<string, any>;
  /** The local network of each region (createNetworkFixture); regions without one are dropped. */
  readonly networks: readonly LocalNetwork[];
  /** The S3 state bucket (created in the local API). */
  readonly stateBucket: string;
  /** @default "tenancy" */
  readonly stateKeyPrefix?: string;
}

/**
 * A platform.yaml for a deploy against a local AWS API: the base file with each region's network
 * ids replaced by the fixture's (EC2 ids cannot be chosen), state in the S3 bucket of the local
 * API, and the Kubernetes side off — the provider mirror holds hashicorp/aws only (no helm or
 * kubernetes providers) and there is no cluster to deploy to.
 */
export function localPlatformYaml(options: LocalPlatformOptions): string {
  const base = options.base;
  const regions: Record<string, unknown> = {};
  for (const n of options.networks) {
    const original = (base.regions ?? {})[n.region] ?? {};
    regions[n.region] = {
      clusterName: original.clusterName ?? `tenancy-${n.region}`,
      oidcProviderArn: original.oidcProviderArn ?? `arn:aws:iam::123456789012:oidc-provider/oidc.eks.${n.region}.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9`,
      vpcId: n.vpcId,
      privateSubnetIds: [...n.privateSubnetIds],
      workloadSecurityGroupId: n.workloadSecurityGroupId,
      databaseSubnetCidrs: [...n.databaseSubnetCidrs],
      clusterCidrs: { pods: ['10.200.0.0/16'], services: ['172.20.0.0/16'], nodes: [n.vpcCidr] },
    };
  }
  const platform = {
    ...base,
    regions,
    state: { backend: 's3', bucket: options.stateBucket, region: options.networks[0]?.region ?? 'us-east-1', keyPrefix: options.stateKeyPrefix ?? 'tenancy' },
    kubernetes: { ...(base.kubernetes ?? {}), enabled: false },
  };
  return `# Generated for a deploy against a local AWS API (moto): network ids of the local fixture.\n${stringify(platform)}`;
}
