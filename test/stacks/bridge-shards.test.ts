import { Testing } from 'cdktf';
import type { Registry } from '../../lib/registry/load-registry';
import type { PlatformConfig } from '../../lib/registry/platform-schema';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { PlatformStack } from '../../stacks/platform-stack';
import { TenantStack } from '../../stacks/tenant-stack';
import { loadSampleRegistry } from '../support/sample-registry';
import { planOffline } from '../support/terraform';

/**
 * Bridge shards in the stacks: the platform stack builds one Aurora cluster per shard of its
 * region (the default shard exactly as the single cluster of earlier versions), and a tenant's
 * stack points at the shard of its placement.
 */
const registry: Registry = loadSampleRegistry();
const sharded: PlatformConfig = {
  ...registry.platform,
  regions: {
    ...registry.platform.regions,
    'us-east-1': { ...registry.platform.regions['us-east-1'], bridgeShards: [{ id: 'default', capacity: 2 }, { id: 'b', capacity: 2 }, { id: 'eu-only', capacity: 5, residency: ['eu'] }] },
  },
};
const globex = (): Tenant => registry.tenants.find((t) => t.slug === 'globex')!;

const synthPlatform = (platform: PlatformConfig) => JSON.parse(Testing.synth(new PlatformStack(Testing.app(), { platform, region: 'us-east-1' }), true));
const synthTenant = (tenant: Tenant, platform: PlatformConfig) => JSON.parse(Testing.synth(new TenantStack(Testing.app(), { tenant, platform }), true));

describe('the platform stack builds every bridge shard', () => {
  test('one cluster per shard; the default shard keeps the single cluster\'s names and output keys', () => {
    const json = synthPlatform(sharded);
    const clusters = Object.values<any>(json.resource.aws_rds_cluster).map((c) => [c.cluster_identifier, c.database_name]);
    expect(clusters).toEqual(expect.arrayContaining([['tenancy-bridge', 'tenants'], ['tenancy-bridge-b', 'tenants_b'], ['tenancy-bridge-eu-only', 'tenants_eu_only'], ['tenancy-pool', 'pool']]));
    expect(clusters).toHaveLength(5); // and the control plane
    expect(Object.keys(json.output)).toEqual(expect.arrayContaining([
      'bridge_endpoint', 'bridge_database', 'bridge_master_secret_arn',
      'bridge_shard_b_endpoint', 'bridge_shard_b_database', 'bridge_shard_b_master_secret_arn', 'bridge_shard_b_cluster_identifier',
      'bridge_shard_eu_only_endpoint',
    ]));
    // The private DNS name each shard's tenants connect to.
    const records = Object.values<any>(json.resource.aws_route53_record).map((r) => r.name).sort();
    expect(records).toEqual(['bridge-b.db.tenancy.internal', 'bridge-eu-only.db.tenancy.internal', 'bridge.db.tenancy.internal', 'control-plane.db.tenancy.internal', 'pool.db.tenancy.internal']);
  });

  test('a region without bridgeShards synthesizes exactly as one listing only the default shard', () => {
    const listed: PlatformConfig = { ...registry.platform, regions: { ...registry.platform.regions, 'us-east-1': { ...registry.platform.regions['us-east-1'], bridgeShards: [{ id: 'default', capacity: 10 }] } } };
    expect(synthPlatform(listed)).toEqual(synthPlatform(registry.platform));
  });

  test('terraform validates and plans the sharded platform stack offline', () => {
    const plan = planOffline(synthPlatform({ ...sharded, kubernetes: { ...sharded.kubernetes, enabled: false } }));
    expect(plan.warnings).toEqual([]);
    const clusters = plan.resources.filter((r) => r.type === 'aws_rds_cluster').map((r) => r.values.cluster_identifier).sort();
    expect(clusters).toEqual(['tenancy-bridge', 'tenancy-bridge-b', 'tenancy-bridge-eu-only', 'tenancy-control-plane', 'tenancy-pool']);
    expect(plan.resources.filter((r) => r.type === 'aws_rds_cluster_instance')).toHaveLength(10);
  });
});

describe('a bridge tenant\'s stack follows its placement', () => {
  test('on shard b: its cluster, database, host and a bridge_shard output', () => {
    const json = synthTenant({ ...globex(), placement: { bridgeShard: 'b' } }, sharded);
    expect(json.output.cluster_identifier.value).toBe('tenancy-bridge-b');
    expect(json.output.db_name.value).toBe('tenants_b');
    expect(json.output.bridge_shard.value).toBe('b');
    const release = Object.values<any>(json.resource.helm_release).find((r) => r.name === 'tenant-app');
    const values = release.values.join('\n');
    expect(values).toContain('bridge-b.db.tenancy.internal');
    expect(values).not.toContain('bridge.db.tenancy.internal');
  });

  test('without a placement (or on "default"): the single cluster, as before shards, and no bridge_shard output', () => {
    const before = synthTenant(globex(), registry.platform);
    expect(before.output.cluster_identifier.value).toBe('tenancy-bridge');
    expect(before.output.bridge_shard).toBeUndefined();
    expect(synthTenant({ ...globex(), placement: { bridgeShard: 'default' } }, sharded)).toEqual(before);
  });
});
