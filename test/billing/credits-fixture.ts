/**
 * A control plane for the credits tests and bench/billing-debits.ts: migrated (migrations/control-plane,
 * through 0009) by an RDS-style master role (CREATEROLE, not superuser), used by a runtime login
 * role that is only a member of tenancy_control_plane, as the CLI, worker and runtime run.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Pool, type PoolConfig } from 'pg';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import type { PostgresCluster } from '../support/postgres';
import { repoRoot } from '../support/pool-db';

export const CREDITS_MASTER = { user: 'credits_master', password: 'credits-master-pw (test only)' };
export const CREDITS_RUNTIME = { user: 'credits_runtime', password: 'credits-runtime-pw (test only)' };
/** Where a pool tenant's data would live (the router resolves tenants only with a usable placement; never connected to here). */
const POOL_PLACEMENT = { host: 'pool.internal', port: 5432, database: 'app', role: 'app_pool', secret_ref: 'pool-app' };
/** The last migration the credits need. */
export const CREDITS_MIGRATION = 9;

const rolesMade = new WeakSet<PostgresCluster>();

/** A new control-plane database migrated through 0009; `runtime(max)` opens pools as the runtime role. */
export async function creditsControlPlane(cluster: PostgresCluster, database: string) {
  if (!rolesMade.has(cluster)) {
    await cluster.createRole(CREDITS_MASTER.user, { password: CREDITS_MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
    await cluster.createRole(CREDITS_RUNTIME.user, { password: CREDITS_RUNTIME.password });
    rolesMade.add(cluster);
  }
  await cluster.createDatabase(database, { owner: CREDITS_MASTER.user });
  const run = await migrateTargets({
    targets: [controlPlaneTarget({ connection: cluster.clientConfig({ ...CREDITS_MASTER, database }) })],
    migrations: loadMigrationSets(join(repoRoot(), 'migrations')),
    toVersion: CREDITS_MIGRATION,
  });
  const failed = run.results.filter((r) => r.error);
  if (failed.length) throw new Error(`control-plane migration failed: ${failed.map((r) => r.error).join('; ')}`);
  // What an operator does once (README): the runtime login role gets the runtime privileges.
  await cluster.query(`GRANT tenancy_control_plane TO ${CREDITS_RUNTIME.user}`);
  const runtimeConfig = (max: number): PoolConfig => ({ ...cluster.clientConfig({ ...CREDITS_RUNTIME, database }), max });
  const pools: Pool[] = [];
  const runtime = (max = 4): Pool => {
    const pool = new Pool(runtimeConfig(max));
    pools.push(pool);
    return pool;
  };
  const pool = runtime(8);
  const controlPlane = new ControlPlane(pool, 'credits-test');
  let n = 0;
  return {
    pool,
    runtime,
    /** A tenant registered in the control plane (status active). */
    async tenant(): Promise<{ id: string; slug: string }> {
      const t = { id: randomUUID(), slug: `credits-${++n}-${randomUUID().slice(0, 6)}` };
      await controlPlane.upsertTenant({ ...t, model: 'pool', plan: 'pro', status: 'active', region: 'us-east-1', placement: POOL_PLACEMENT });
      return t;
    },
    async close(): Promise<void> {
      await Promise.all(pools.splice(0).filter((p) => !p.ended).map((p) => p.end()));
    },
  };
}

export type CreditsControlPlane = Awaited<ReturnType<typeof creditsControlPlane>>;
