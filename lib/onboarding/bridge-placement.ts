import type { ClientBase } from 'pg';
import { bridgeShardOf, chooseBridgeShard, recordedBridgeShard } from '../registry/bridge-shards';
import type { Registry } from '../registry/load-registry';
import { DEFAULT_BRIDGE_SHARD, type Tenant } from '../registry/tenant-schema';

/**
 * The placement decision of a new bridge tenant, made once, in the transaction that records the
 * tenant in the control plane (LifecycleStore.createOnboarding): the transaction takes the
 * placement lock, counts each shard's tenants, picks the least-full matching shard and records it
 * (`tenancy.tenants.placement.bridge_shard`) before it commits, so two concurrent onboardings never
 * both take a shard's last place. The count is the control plane's bridge tenants (each on the
 * shard its placement names, the default shard when it names none) plus registry entries the
 * control plane does not know yet (written by hand, not deployed). The registry entry gets the
 * same shard (`placement.bridgeShard`) from the job's request; a resubmission returns that job.
 */

/**
 * Key of the transaction-level advisory lock that serializes placement decisions. The control
 * plane is the platform's own database (no tenant role connects to it), so an advisory lock is
 * safe here, unlike in the shared tenant databases (lib/db/platform-locks.ts).
 */
const PLACEMENT_LOCK_KEY = 7_316_002_214_001; // arbitrary, fixed

/** Bridge tenants per shard of `region`: the control plane's (not offboarded), and registry entries it does not know. */
export async function bridgeFillIn(c: Pick<ClientBase, 'query'>, registryTenants: readonly Tenant[], region: string): Promise<Map<string, number>> {
  const rows = (await c.query<{ id: string; status: string; shard: string }>(
    `SELECT id::text, status, coalesce(placement->>'bridge_shard', $2) AS shard FROM tenancy.tenants WHERE model = 'bridge' AND region = $1`,
    [region, DEFAULT_BRIDGE_SHARD],
  )).rows;
  const known = new Set(rows.map((r) => r.id.toLowerCase()));
  const fill = new Map<string, number>();
  const add = (shard: string) => fill.set(shard, (fill.get(shard) ?? 0) + 1);
  for (const r of rows) if (r.status !== 'offboarded') add(r.shard);
  for (const t of registryTenants) if (t.model === 'bridge' && t.region === region && t.status !== 'offboarded' && !known.has(t.id)) add(bridgeShardOf(t));
  return fill;
}

/**
 * Inside the recording transaction: the shard of a new bridge tenant in a region with listed
 * shards (undefined otherwise: the default shard, nothing recorded, as before shards). Throws
 * BridgeFleetFullError (the transaction then writes nothing).
 */
export async function placeBridgeTenantIn(c: Pick<ClientBase, 'query'>, registry: Registry, tenant: Tenant): Promise<string | undefined> {
  if (tenant.model !== 'bridge' || !registry.platform.regions[tenant.region]?.bridgeShards) return undefined;
  await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [PLACEMENT_LOCK_KEY]);
  const fill = await bridgeFillIn(c, registry.tenants, tenant.region);
  return chooseBridgeShard(registry.platform, tenant, fill).id;
}

/**
 * Registry bridge tenants whose shard is not the one the control plane records, one message each:
 * an edit of `placement` (or its removal) would deploy the tenant's workload against an empty schema
 * on another cluster, its data left behind. A deploy pipeline checks this before it applies; the
 * post-apply register hook refuses the same (assertSameBridgeShard).
 */
export async function bridgeShardMoves(db: Pick<ClientBase, 'query'>, tenants: readonly Tenant[]): Promise<string[]> {
  const bridge = tenants.filter((t) => t.model === 'bridge' && t.status !== 'offboarded');
  if (bridge.length === 0) return [];
  const rows = (await db.query<{ id: string; placement: Record<string, unknown> }>(
    `SELECT id::text, placement FROM tenancy.tenants WHERE model = 'bridge' AND status <> 'offboarded' AND id = ANY($1::uuid[])`,
    [bridge.map((t) => t.id)],
  )).rows;
  const recorded = new Map(rows.map((r) => [r.id.toLowerCase(), recordedBridgeShard(r.placement)]));
  return bridge.flatMap((t) => {
    const was = recorded.get(t.id);
    const now = bridgeShardOf(t);
    return was !== undefined && was !== now
      ? [`tenant ${t.slug}: placement.bridgeShard is "${now}", but its data is on bridge shard "${was}" (control plane); a placement is never changed by an edit: restore placement.bridgeShard: ${was}`]
      : [];
  });
}
