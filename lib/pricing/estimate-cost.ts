import { bridgeShardNames, platformNames } from '../naming';
import { bridgeShardOf } from '../registry/bridge-shards';
import type { Registry } from '../registry/load-registry';
import type { Tenant } from '../registry/tenant-schema';
import { SiloDatabase } from '../silo-database';
import { PRICES } from './price-table';

export interface CostEstimate {
  /** USD per month. */
  readonly monthlyUsd: number;
  /** How it was reached, for the summary and for people checking it. */
  readonly basis: string;
}

/** Monthly cost of one shared Aurora cluster as the platform stack builds it (2 × db.r6g.large). */
export function sharedClusterMonthlyUsd(instanceClass = 'db.r6g.large', instances = 2): number {
  return instances * price(PRICES.auroraInstance, instanceClass) + PRICES.auroraStoragePerGb * PRICES.auroraAssumedStorageGb;
}

/**
 * Estimated monthly cost of a tenant: silo tenants pay for their instance, storage, key,
 * Performance Insights and their application role's credentials secret; bridge and pool tenants
 * pay an equal share of their region's shared cluster, a bridge tenant of its shard's (plus the bridge credentials secret).
 */
export function estimateMonthlyCost(tenant: Tenant, registry: Registry): CostEstimate {
  if (tenant.status === 'offboarded') return { monthlyUsd: 0, basis: 'offboarded' };
  if (tenant.model === 'silo') {
    const network = registry.platform.regions[tenant.region];
    const s = SiloDatabase.resolve({
      slug: tenant.slug,
      tenantId: tenant.id,
      plan: tenant.plan,
      vpcId: network?.vpcId ?? 'vpc-0',
      subnetIds: network?.privateSubnetIds ?? ['a', 'b'],
      allowedSecurityGroupIds: ['sg'],
      regulated: tenant.compliance.hipaa || tenant.compliance.pci,
    });
    const az = s.multiAz ? 2 : 1;
    const instance = price(PRICES.rdsInstance, s.instanceClass) * az;
    const storage = s.allocatedStorageGb * PRICES.gp3PerGb * az;
    const pi = s.performanceInsightsRetentionDays > 7 ? (PRICES.vcpus[s.instanceClass] ?? 2) * PRICES.performanceInsightsLongTermPerVcpu : 0;
    return {
      monthlyUsd: round(instance + storage + PRICES.kmsKey + pi + PRICES.secret),
      basis: `${s.instanceClass}${s.multiAz ? ' multi-AZ' : ''}, ${s.allocatedStorageGb} GiB`,
    };
  }
  // A bridge tenant shares its own shard's cluster (bridge shards: lib/registry/bridge-shards.ts).
  const sameCluster = (t: Tenant) => tenant.model !== 'bridge' || bridgeShardOf(t) === bridgeShardOf(tenant);
  const sharers = registry.tenants.filter((t) => t.status !== 'offboarded' && t.model === tenant.model && t.region === tenant.region && sameCluster(t)).length;
  const share = sharedClusterMonthlyUsd() / Math.max(1, sharers);
  const extra = tenant.model === 'bridge' ? PRICES.secret : 0;
  const cluster = tenant.model === 'bridge' ? bridgeShardNames(registry.platform.name, bridgeShardOf(tenant)).cluster : platformNames(registry.platform.name).poolCluster;
  return {
    monthlyUsd: round(share + extra),
    basis: `1/${sharers} of ${cluster} (${tenant.region})`,
  };
}

function price(table: Record<string, number>, instanceClass: string): number {
  const p = table[instanceClass];
  if (p === undefined) throw new Error(`no price for ${instanceClass} in lib/pricing/price-table.ts; add it there`);
  return p;
}

const round = (usd: number) => Math.round(usd * 100) / 100;
