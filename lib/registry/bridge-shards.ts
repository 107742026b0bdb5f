import type { Registry } from './load-registry';
import type { PlatformConfig } from './platform-schema';
import { DEFAULT_BRIDGE_SHARD, type DataResidency, type Tenant } from './tenant-schema';

/**
 * Bridge shards: the bridge clusters of a region (platform.yaml `regions.<region>.bridgeShards`).
 * A region that lists none has one, `default`, without a capacity limit: the single bridge cluster
 * of earlier versions, which tenants without a placement are on.
 */
export interface BridgeShard {
  readonly region: string;
  readonly id: string;
  /** Bridge tenants the shard takes; undefined: no limit (the implicit default shard). */
  readonly capacity?: number;
  /** Residencies it may hold; undefined: any the region allows. */
  readonly residency?: readonly DataResidency[];
}

/** The bridge shards of `region`, in platform.yaml order. */
export function bridgeShardsOf(platform: PlatformConfig, region: string): BridgeShard[] {
  const network = platform.regions[region];
  if (!network) return [];
  if (!network.bridgeShards) return [{ region, id: DEFAULT_BRIDGE_SHARD }];
  return network.bridgeShards.map((s) => ({ region, id: s.id, capacity: s.capacity, residency: s.residency }));
}

/** The shard a bridge tenant is on: its recorded placement, or the default shard. */
export function bridgeShardOf(tenant: Pick<Tenant, 'placement'>): string {
  return tenant.placement?.bridgeShard ?? DEFAULT_BRIDGE_SHARD;
}

/**
 * The shard a control-plane placement (tenancy.tenants.placement) records: its `bridge_shard`, the
 * default shard for a registered placement without one, undefined for a tenant not placed yet.
 */
export function recordedBridgeShard(placement: Record<string, unknown> | null | undefined): string | undefined {
  if (typeof placement?.bridge_shard === 'string' && placement.bridge_shard) return placement.bridge_shard;
  return typeof placement?.host === 'string' ? DEFAULT_BRIDGE_SHARD : undefined;
}

/** Whether `shard` may hold a tenant of `residency`. */
export function shardAcceptsResidency(shard: BridgeShard, residency: DataResidency): boolean {
  return !shard.residency || shard.residency.includes(residency);
}

/** A region and residency for which every matching bridge shard is at capacity (or none matches). */
export class BridgeFleetFullError extends Error {
  constructor(readonly region: string, readonly residency: DataResidency, readonly fill: readonly { shard: string; tenants: number; capacity?: number }[]) {
    super(
      fill.length === 0
        ? `no bridge shard of region ${region} accepts data residency "${residency}" (platform.yaml regions.${region}.bridgeShards[].residency)`
        : `every bridge shard of region ${region} for data residency "${residency}" is full (${fill.map((f) => `${f.shard} ${f.tenants}/${f.capacity ?? '∞'}`).join(', ')}): ` +
            `add a shard to platform.yaml regions.${region}.bridgeShards (and deploy platform-${region}) or raise a capacity`,
    );
    this.name = 'BridgeFleetFullError';
  }
}

/**
 * Among the shards of the tenant's region that accept its residency and have room: the least-full
 * (tenants / capacity; the lower count, then platform.yaml order, on a tie), or with the region's
 * `bridgePlacement: fill-first` the first listed. `fill` counts
 * the bridge tenants of each shard id of the region. Throws {@link BridgeFleetFullError}.
 */
export function chooseBridgeShard(platform: PlatformConfig, tenant: Pick<Tenant, 'region' | 'dataResidency'>, fill: ReadonlyMap<string, number>): BridgeShard {
  const matching = bridgeShardsOf(platform, tenant.region).filter((s) => shardAcceptsResidency(s, tenant.dataResidency));
  const ratio = (s: BridgeShard) => (s.capacity === undefined ? 0 : (fill.get(s.id) ?? 0) / s.capacity);
  const open = matching.filter((s) => s.capacity === undefined || (fill.get(s.id) ?? 0) < s.capacity);
  let best: BridgeShard | undefined;
  if (platform.regions[tenant.region]?.bridgePlacement === 'fill-first') best = open[0];
  else for (const s of open) if (!best || ratio(s) < ratio(best) || (ratio(s) === ratio(best) && (fill.get(s.id) ?? 0) < (fill.get(best.id) ?? 0))) best = s;
  if (!best) throw new BridgeFleetFullError(tenant.region, tenant.dataResidency, matching.map((s) => ({ shard: s.id, tenants: fill.get(s.id) ?? 0, capacity: s.capacity })));
  return best;
}

/** Bridge tenants per shard id of `region`, from the registry (tenants not offboarded). */
export function registryBridgeFill(tenants: readonly Tenant[], region: string): Map<string, number> {
  const fill = new Map<string, number>();
  for (const t of tenants) if (t.model === 'bridge' && t.region === region && t.status !== 'offboarded') fill.set(bridgeShardOf(t), (fill.get(bridgeShardOf(t)) ?? 0) + 1);
  return fill;
}

/**
 * One line per bridge shard of every region the registry's bridge tenants or platform.yaml's
 * shard lists use (`npm start`): `bridge shard us-east-1/a: 3/500 tenants (60%)`, from the registry.
 */
export function bridgeShardFillLines(registry: Registry): string[] {
  const regions = Object.keys(registry.platform.regions).filter((r) => registry.platform.regions[r].bridgeShards || registry.tenants.some((t) => t.model === 'bridge' && t.region === r));
  return regions.flatMap((region) => {
    const fill = registryBridgeFill(registry.tenants, region);
    return bridgeShardsOf(registry.platform, region).map((s) => {
      const n = fill.get(s.id) ?? 0;
      const residency = s.residency ? `, residency ${s.residency.join('/')}` : '';
      return s.capacity === undefined
        ? `bridge shard ${region}/${s.id}: ${n} tenant${n === 1 ? '' : 's'} (no capacity limit${residency})`
        : `bridge shard ${region}/${s.id}: ${n}/${s.capacity} tenants (${Math.round((100 * n) / s.capacity)}%${residency})${n >= s.capacity ? ' full' : ''}`;
    });
  });
}
